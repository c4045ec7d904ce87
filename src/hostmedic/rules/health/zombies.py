"""Rule: no parent leaves a pile of zombies.

Seed 004 "进程过多 … 资源耗尽": a zombie holds a pid until its parent reaps it; a parent
that never does fills the pid table. Only the parent can fix it (or its death, which
hands the zombies to init).
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.health import CpuFacts
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.health.common import failed
from hostmedic.settings import Settings

RULE = "health.zombies"


@rule(RULE, category="health", runbook_ref="004 §启动机器能否登陆 (进程过多，资源耗尽)")
def zombies(health_cpu: CpuFacts, settings: Settings) -> Iterator[Finding]:
    """No parent has ``zombies_per_parent_warning`` or more unreaped children."""
    s = settings.health
    critical = health_cpu.zombies_total >= s.zombies_total_critical
    for parent in health_cpu.zombie_parents:
        if parent.count < s.zombies_per_parent_warning:
            continue
        yield failed(
            RULE,
            Severity.CRITICAL if critical else Severity.WARNING,
            "finding.health.zombies.title",
            {
                "count": parent.count,
                "parent_pid": parent.ppid,
                "parent": parent.name,
                "total": health_cpu.zombies_total,
            },
            (
                Evidence(
                    "/proc/<pid>/stat (state Z, ppid)",
                    f"parent pid={parent.ppid} name={parent.name} exe={parent.exe or '-'} "
                    f"user={parent.user or '?'} zombies={parent.count} "
                    f"e.g. pids={','.join(map(str, parent.sample_pids))} "
                    f"zombies_total={health_cpu.zombies_total}",
                    health_cpu.read_at,
                ),
            ),
            "remedy.health.zombies",
        )

"""Rule: processes are not created at a storm's rate.

Seed 004 "启动机器，看能否登陆 → 进程过多或者不断创建，资源耗尽": the kernel's fork counter
over the window gives the rate even when the children live a few milliseconds; the
parent that spawned most of the children seen at a tick is named.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.health import CpuFacts
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.health.common import failed
from hostmedic.settings import Settings

RULE = "health.fork_storm"


@rule(RULE, category="health", runbook_ref="004 §启动机器能否登陆 (进程过多或者不断创建)")
def fork_storm(health_cpu: CpuFacts, settings: Settings) -> Iterator[Finding]:
    """Fewer than ``fork_rate_warning_per_s`` forks per second, and the process count
    does not grow by ``process_growth_warning`` within the window."""
    s = settings.health
    growth = health_cpu.processes_end - health_cpu.processes_start
    rate = health_cpu.forks_per_s
    if rate < s.fork_rate_warning_per_s and growth < s.process_growth_warning:
        return
    top = health_cpu.spawners[0] if health_cpu.spawners else None
    evidence = [
        Evidence(
            "/proc/stat (processes), /proc/<pid>/stat",
            f"forks_per_s={rate} processes={health_cpu.processes_start}->"
            f"{health_cpu.processes_end} window_s={health_cpu.window_s}",
            health_cpu.read_at,
        )
    ]
    evidence += [
        Evidence(
            "/proc/<pid>/stat (ppid)",
            f"parent pid={p.ppid} name={p.name} exe={p.exe or '-'} user={p.user or '?'} "
            f"children_born_in_window={p.count} e.g. pids={','.join(map(str, p.sample_pids))}",
            health_cpu.read_at,
        )
        for p in health_cpu.spawners[:3]
    ]
    yield failed(
        RULE,
        Severity.CRITICAL if rate >= s.fork_rate_critical_per_s else Severity.WARNING,
        "finding.health.fork_storm.title",
        {
            "forks_per_s": round(rate),
            "start": health_cpu.processes_start,
            "end": health_cpu.processes_end,
            "parent_pid": top.ppid if top else "?",
            "parent": top.name if top else "?",
        },
        tuple(evidence),
        "remedy.health.fork_storm",
    )

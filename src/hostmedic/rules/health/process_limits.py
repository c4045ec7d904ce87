"""Rule: the number of tasks stays well below the kernel's limits.

Seed 004 "进程过多或者不断创建，资源耗尽": past ``kernel.pid_max`` or ``kernel.threads-max``
no process can start — not even the shell of someone trying to log in.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.health import CpuFacts
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.health.common import failed, percent_of
from hostmedic.settings import Settings

RULE = "health.process_limits"


@rule(RULE, category="health", runbook_ref="004 §启动机器能否登陆 (资源耗尽)")
def process_limits(health_cpu: CpuFacts, settings: Settings) -> Iterator[Finding]:
    """Tasks (threads included) stay below ``tasks_limit_warning_share`` of the limit."""
    s = settings.health
    limits = [x for x in (health_cpu.pid_max, health_cpu.threads_max) if x > 0]
    if not limits:
        return
    limit = min(limits)
    share = health_cpu.tasks_end / limit
    if share < s.tasks_limit_warning_share:
        return
    yield failed(
        RULE,
        Severity.CRITICAL if share >= s.tasks_limit_critical_share else Severity.WARNING,
        "finding.health.process_limits.title",
        {"tasks": health_cpu.tasks_end, "limit": limit, "percent": percent_of(share, 1)},
        (
            Evidence(
                "/proc/sys/kernel/pid_max, /proc/sys/kernel/threads-max, /proc/<pid>/stat",
                f"tasks={health_cpu.tasks_end} processes={health_cpu.processes_end} "
                f"pid_max={health_cpu.pid_max} threads_max={health_cpu.threads_max}",
                health_cpu.read_at,
            ),
        ),
        "remedy.health.process_limits",
    )

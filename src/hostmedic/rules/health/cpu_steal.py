"""Rule: the hypervisor gives this VM the CPU time it asks for (low steal).

Seed 004 "机器的配置" (the machine's own capacity) and "CPU 跑满": on a cloud server, time
stolen by the hypervisor (a burstable instance out of credits, a crowded host) makes
everything slow although no process inside is to blame.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.health import CpuFacts
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.health.common import failed
from hostmedic.settings import Settings

RULE = "health.cpu_steal"


@rule(RULE, category="health", runbook_ref="004 §网站访问慢 机器的配置; 004 §CPU 跑满")
def cpu_steal(health_cpu: CpuFacts, settings: Settings) -> Iterator[Finding]:
    """CPU steal time stays below ``steal_warning_percent`` over the window."""
    s = settings.health
    steal = health_cpu.steal_percent
    if steal < s.steal_warning_percent:
        return
    yield failed(
        RULE,
        Severity.CRITICAL if steal >= s.steal_critical_percent else Severity.WARNING,
        "finding.health.cpu_steal.title",
        {"steal_percent": steal, "window_s": health_cpu.window_s},
        (
            Evidence(
                "/proc/stat",
                f"steal={steal}% busy={health_cpu.busy_percent}% cores={health_cpu.cores} "
                f"window_s={health_cpu.window_s}",
                health_cpu.read_at,
            ),
        ),
        "remedy.health.cpu_steal",
    )

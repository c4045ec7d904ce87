"""Rule: the load average stays below twice the number of cores.

Seed 004 "无法访问网站 → 检查服务器 CPU、I/O … 是否有异常" and "启动机器，看能否登陆"
(a server too loaded to log in). Load counts runnable tasks *and* tasks blocked in the
kernel (state D: disk, NFS), so the evidence shows both, and the CPU's own I/O wait.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.health import CpuFacts
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.health.common import failed
from hostmedic.settings import Settings

RULE = "health.cpu_load"


@rule(RULE, category="health", runbook_ref="004 §无法访问网站 (CPU、I/O); 004 §启动机器能否登陆")
def cpu_load(health_cpu: CpuFacts, settings: Settings) -> Iterator[Finding]:
    """Load average (1 and 5 min) per core stays below ``load_per_core_warning``."""
    s = settings.health
    cores = max(health_cpu.cores, 1)
    per_core = min(health_cpu.load_1, health_cpu.load_5) / cores  # sustained, not a blip
    if per_core < s.load_per_core_warning:
        return
    io_bound = health_cpu.blocked_tasks > cores or health_cpu.iowait_percent >= 20
    yield failed(
        RULE,
        Severity.CRITICAL if per_core >= s.load_per_core_critical else Severity.WARNING,
        "finding.health.cpu_load.title",
        {
            "load_1": health_cpu.load_1,
            "load_5": health_cpu.load_5,
            "cores": cores,
            "per_core": round(per_core, 1),
            "blocked": health_cpu.blocked_tasks,
            "iowait_percent": health_cpu.iowait_percent,
        },
        (
            Evidence(
                "/proc/loadavg, /proc/stat",
                f"load={health_cpu.load_1}/{health_cpu.load_5}/{health_cpu.load_15} "
                f"cores={cores} busy={health_cpu.busy_percent}% "
                f"iowait={health_cpu.iowait_percent}% blocked_tasks(D)="
                f"{health_cpu.blocked_tasks} window_s={health_cpu.window_s}",
                health_cpu.read_at,
            ),
        ),
        "remedy.health.cpu_load.io" if io_bound else "remedy.health.cpu_load.cpu",
    )

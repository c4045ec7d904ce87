"""Rule: the kernel has memory to hand out without stalling tasks.

Seed 004 "检查服务器 … 内存使用性能是否有异常" and "应用程序导致内存溢出或泄露": little
MemAvailable, or tasks stalled waiting for memory (PSI, Linux ≥ 4.20), precede the OOM
killer and make a server too slow to log in.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.health import MemoryFacts
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.health.common import failed, percent_of
from hostmedic.settings import Settings

RULE = "health.memory_pressure"


RUNBOOK = "004 §无法访问网站 (内存); 004 §启动机器能否登陆 (内存溢出)"


@rule(RULE, category="health", runbook_ref=RUNBOOK)
def memory_pressure(health_memory: MemoryFacts, settings: Settings) -> Iterator[Finding]:
    """MemAvailable stays above ``mem_available_warning_percent`` of RAM and tasks are
    not stalled on memory (PSI)."""
    s = settings.health
    m = health_memory
    available = percent_of(m.available_bytes, m.total_bytes)
    some, full = m.psi_some_avg10 or 0.0, m.psi_full_avg10 or 0.0
    if available <= s.mem_available_critical_percent or full >= s.psi_full_avg10_critical:
        severity = Severity.CRITICAL
    elif available <= s.mem_available_warning_percent or some >= s.psi_some_avg10_warning:
        severity = Severity.WARNING
    else:
        return
    users = ", ".join(f"{u.name}(pid {u.pid}) rss_bytes={u.rss_bytes}" for u in m.top_rss)
    yield failed(
        RULE,
        severity,
        "finding.health.memory_pressure.title",
        {
            "available_bytes": m.available_bytes,
            "total_bytes": m.total_bytes,
            "available_percent": available,
            "psi_some": some,
            "psi_full": full,
            "top": m.top_rss[0].name if m.top_rss else "?",
            "top_pid": m.top_rss[0].pid if m.top_rss else "?",
        },
        (
            Evidence(
                "/proc/meminfo, /proc/pressure/memory",
                f"MemTotal={m.total_bytes} MemAvailable={m.available_bytes} "
                f"psi_some_avg10={m.psi_some_avg10} psi_full_avg10={m.psi_full_avg10}",
                m.read_at,
            ),
            Evidence("/proc/<pid>/stat (rss)", f"largest: {users}", m.read_at),
        ),
        "remedy.health.memory_pressure",
    )

"""Rule: the machine is not swapping actively.

Seed 004 "内存使用性能是否有异常" / "网站访问慢": pages moving to and from swap during the
window (not merely sitting there) mean RAM is short and every access may wait on disk.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.health import MemoryFacts
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.health.common import failed, percent_of
from hostmedic.settings import Settings

RULE = "health.swap"


@rule(RULE, category="health", runbook_ref="004 §无法访问网站 (内存); 004 §网站访问慢")
def swap(health_memory: MemoryFacts, settings: Settings) -> Iterator[Finding]:
    """Swap-in plus swap-out stays below ``swap_io_warning_pages_per_s``."""
    s = settings.health
    m = health_memory
    rate = m.swap_in_pages_per_s + m.swap_out_pages_per_s
    if rate < s.swap_io_warning_pages_per_s:
        return
    used = m.swap_total_bytes - m.swap_free_bytes
    used_percent = percent_of(used, m.swap_total_bytes)
    yield failed(
        RULE,
        Severity.CRITICAL if used_percent >= s.swap_used_warning_percent else Severity.WARNING,
        "finding.health.swap.title",
        {
            "pages_per_s": round(rate),
            "used_bytes": used,
            "swap_bytes": m.swap_total_bytes,
            "used_percent": used_percent,
        },
        (
            Evidence(
                "/proc/vmstat (pswpin, pswpout), /proc/meminfo",
                f"swap_in_pages_per_s={m.swap_in_pages_per_s} "
                f"swap_out_pages_per_s={m.swap_out_pages_per_s} SwapTotal={m.swap_total_bytes} "
                f"SwapFree={m.swap_free_bytes} MemAvailable={m.available_bytes}",
                m.read_at,
            ),
        ),
        "remedy.health.swap",
    )

"""Rule: no process's memory grows fast during the window (leak suspicion).

Seed 004 "应用程序导致内存溢出或泄露": a process whose resident memory keeps climbing is
the one the OOM killer will pick; the window is short, so only fast growth is flagged.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.health import MemoryFacts
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.health.common import failed
from hostmedic.settings import Settings

RULE = "health.memory_growth"


@rule(RULE, category="health", runbook_ref="004 §启动机器能否登陆 (内存泄露)")
def memory_growth(health_memory: MemoryFacts, settings: Settings) -> Iterator[Finding]:
    """No process's RSS grows by ``rss_growth_min_bytes`` and ``rss_growth_min_percent``
    within the window."""
    s = settings.health
    for g in health_memory.growing:
        grown = g.rss_end_bytes - g.rss_start_bytes
        percent = 100 * grown / max(g.rss_start_bytes, 1)
        if grown < s.rss_growth_min_bytes or percent < s.rss_growth_min_percent:
            continue
        yield failed(
            RULE,
            Severity.WARNING,
            "finding.health.memory_growth.title",
            {
                "pid": g.pid,
                "name": g.name,
                "grown_bytes": grown,
                "start_bytes": g.rss_start_bytes,
                "end_bytes": g.rss_end_bytes,
                "window_s": g.window_s,
                "rate_bytes": round(grown / max(g.window_s, 0.1)),
            },
            (
                Evidence(
                    "/proc/<pid>/stat (rss)",
                    f"pid={g.pid} name={g.name} exe={g.exe or '-'} user={g.user or '?'} "
                    f"rss_start_bytes={g.rss_start_bytes} rss_end_bytes={g.rss_end_bytes} "
                    f"window_s={g.window_s}",
                    health_memory.read_at,
                ),
            ),
            "remedy.health.memory_growth",
        )

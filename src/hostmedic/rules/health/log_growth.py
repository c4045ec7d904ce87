"""Rule: no log file grows fast enough to fill its disk soon.

Seed 004 "是否是磁盘空间占满了导致" before it happens: a log written at megabytes per
second (debug logging left on, an error loop, an attack in the access log) fills the
disk in hours; the time left is the filesystem's free space over the growth rate.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.health_storage import DiskFacts
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.health.common import failed
from hostmedic.settings import Settings

RULE = "health.log_growth"


@rule(RULE, category="health", runbook_ref="004 §无法访问网站 (磁盘空间占满)")
def log_growth(health_disk: DiskFacts, settings: Settings) -> Iterator[Finding]:
    """No file under the log directories grows faster than ``log_growth_warning_bytes_per_s``."""
    s = settings.health
    free = {fs.mount_point: fs.available_bytes for fs in health_disk.filesystems}
    for f in health_disk.logs:
        if f.window_s <= 0:
            continue
        rate = f.grown_bytes / f.window_s
        if rate < s.log_growth_warning_bytes_per_s:
            continue
        available = free.get(f.mount_point)
        hours = available / rate / 3600 if available is not None else None
        critical = hours is not None and hours <= s.fill_critical_hours
        yield failed(
            RULE,
            Severity.CRITICAL if critical else Severity.WARNING,
            "finding.health.log_growth.title",
            {
                "path": f.path,
                "rate_bytes": round(rate),
                "size_bytes": f.size_bytes,
                "mount_point": f.mount_point,
                "hours": round(hours, 2) if hours is not None else "?",
            },
            (
                Evidence(
                    "stat (start and end of the window)",
                    f"{f.path} size_bytes={f.size_bytes} grown_bytes={f.grown_bytes} "
                    f"window_s={f.window_s} filesystem={f.mount_point} "
                    f"available_bytes={available if available is not None else '?'}",
                    health_disk.read_at,
                ),
            ),
            "remedy.health.log_growth",
        )

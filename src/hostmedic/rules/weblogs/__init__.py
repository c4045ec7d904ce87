"""Rules over the access logs (seed 004: bandwidth-full and CPU-full causes — crawlers,
big downloads, hot-linking, CC attacks — and the HTTP 404/502/503/504 errors)."""

from hostmedic.rules.weblogs import (  # noqa: F401
    cc_attack,
    crawlers,
    heavy_downloads,
    hotlinking,
    http_errors,
    log_coverage,
)

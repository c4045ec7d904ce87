"""Rule: the site answers without many 404s and without server errors (5xx), over the
window and in its worst minute.

Seed 004 §故障处理: "check whether the site shows errors such as 404, 502, 503, 504; such
errors are mostly a problem inside the server's web stack". Each code gets its own
advice (remedy.weblogs.http_errors.<code>): 404 missing files or a scanner, 500 the
application, 502 the upstream (PHP-FPM, the app server) down, 503 overloaded or
rate-limited, 504 the upstream too slow (the seed's 大量数据库操作).
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.weblogs import StatusUsage, WeblogFacts
from hostmedic.model import Finding, Severity
from hostmedic.rules.weblogs.common import clock, percent, problem, top_list, window_evidence
from hostmedic.settings import Settings
from hostmedic.settings_weblogs import WeblogSettings

NAMED = {404, 500, 502, 503, 504}


def _judge(row: StatusUsage, total: int, minute_total: int, s: WeblogSettings) -> Severity | None:
    share = row.requests / max(total, 1)
    spike = (
        row.peak_minute_requests >= s.spike_minute_min_requests
        and row.peak_minute_requests >= s.spike_minute_share * max(minute_total, 1)
    )
    if row.status == 404:
        if row.requests >= s.not_found_min_requests and share >= s.not_found_share_warning:
            return Severity.WARNING
        return Severity.WARNING if spike else None
    if row.requests >= s.server_error_min_requests:
        if share >= s.server_error_share_critical:
            return Severity.CRITICAL
        if share >= s.server_error_share_warning:
            return Severity.WARNING
    return Severity.WARNING if spike else None


@rule("weblogs.http_errors", category="weblogs", runbook_ref="seed 004 §故障处理 (404/502/503/504)")
def http_errors(weblogs: WeblogFacts, settings: Settings) -> Iterator[Finding]:
    """Under 20 % of requests end in 404 and under 2 % in a server error (5xx), and no
    minute is mostly errors."""
    per_minute = {m.minute_s: m.requests for m in weblogs.minutes}
    for row in weblogs.statuses:
        if row.status != 404 and row.status < 500:
            continue
        minute_total = per_minute.get(row.peak_minute_s, 0)
        severity = _judge(row, weblogs.requests, minute_total, settings.weblogs)
        if severity is None:
            continue
        code = str(row.status) if row.status in NAMED else "5xx"
        params = {
            "status": row.status,
            "count": row.requests,
            "percent": percent(row.requests, weblogs.requests),
            "peak": row.peak_minute_requests,
            "peak_percent": percent(row.peak_minute_requests, minute_total),
            "at": clock(weblogs, row.peak_minute_s),
            "paths": top_list(row.top_paths),
        }
        excerpt = (
            f"status={row.status} requests={row.requests} of {weblogs.requests} "
            f"peak_minute={clock(weblogs, row.peak_minute_s)} "
            f"({row.peak_minute_requests} of {minute_total}) "
            f"top_paths=[{top_list(row.top_paths, 5)}] "
            f"top_addresses=[{top_list(row.top_ips, 5)}]"
        )
        yield problem(
            weblogs,
            settings,
            "weblogs.http_errors",
            severity,
            f"finding.weblogs.http_errors.{code}.title",
            params,
            window_evidence(weblogs, [excerpt]),
            f"remedy.weblogs.http_errors.{code}",
        )

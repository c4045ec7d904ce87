"""Rule: every access log found could be read, and nearly all its lines parsed.

Not a runbook step but what the log checks need to be trusted (like bandwidth.coverage):
a file in a format hostmedic does not know, an unreadable one, malformed lines (named by
number, with examples), counts approximated to bound memory, or a window with no
requests at all must be said, not hidden.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.weblogs import WeblogFacts
from hostmedic.model import Evidence, Finding, Severity, Status
from hostmedic.rules.weblogs.common import percent
from hostmedic.settings import Settings

MALFORMED_WARNING_SHARE = 0.05
REPORTED_SKIPS = ("reason.weblogs.unreadable", "reason.weblogs.unknown_format")  # not: empty, old


@rule("weblogs.log_coverage", category="weblogs", runbook_ref="seed 004 §爬虫 (分析访问日志)")
def log_coverage(weblogs: WeblogFacts, settings: Settings) -> Iterator[Finding]:
    """Every access log was read and parsed, and the window holds requests."""
    del settings
    for src in weblogs.sources:
        if src.skipped_key in REPORTED_SKIPS:
            yield Finding(
                rule_id="weblogs.log_coverage",
                severity=Severity.INFO,
                status=Status.FAILED,
                title_key="finding.weblogs.log_coverage.skipped.title",
                params={"path": src.path, "what_key": src.skipped_key},
                evidence=(Evidence(src.path, src.note or "-", weblogs.read_at),),
                remedy_key="remedy.weblogs.log_coverage.skipped",
            )
        bad = src.malformed_lines + src.too_long_lines
        if bad:
            examples = [m for m in weblogs.malformed_examples if m.path == src.path]
            share = bad / max(src.lines_total, 1)
            yield Finding(
                rule_id="weblogs.log_coverage",
                severity=Severity.WARNING if share >= MALFORMED_WARNING_SHARE else Severity.INFO,
                status=Status.FAILED,
                title_key="finding.weblogs.log_coverage.malformed.title",
                params={
                    "path": src.path,
                    "count": bad,
                    "percent": percent(bad, src.lines_total),
                    "format": src.format_name,
                    "lines": ", ".join(str(m.line) for m in examples[:5]) or "-",
                },
                evidence=tuple(
                    Evidence(f"{m.path}:{m.line}", m.excerpt, weblogs.read_at) for m in examples[:5]
                ),
                remedy_key="remedy.weblogs.log_coverage.malformed",
            )
    if weblogs.pruned_below:
        yield Finding(
            rule_id="weblogs.log_coverage",
            severity=Severity.INFO,
            status=Status.FAILED,
            title_key="finding.weblogs.log_coverage.pruned.title",
            params={"count": weblogs.pruned_below},
        )
    if weblogs.requests == 0 and any(not s.skipped_key for s in weblogs.sources):
        yield Finding(
            rule_id="weblogs.log_coverage",
            severity=Severity.INFO,
            status=Status.FAILED,
            title_key="finding.weblogs.log_coverage.empty_window.title",
            params={"window": weblogs.window_text()},
            remedy_key="remedy.weblogs.log_coverage.empty_window",
        )

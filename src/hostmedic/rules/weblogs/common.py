"""Helpers shared by the web-log rules: the log's own clock, evidence that names the file
and its lines, shares, and the cap on findings about an old window."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hostmedic.errors import FactUnavailable
from hostmedic.facts.weblogs import LineSpan, WeblogFacts, percent
from hostmedic.model import Evidence, Finding, Severity, Status
from hostmedic.settings import Settings


def clock(facts: WeblogFacts, seconds: int) -> str:
    return facts.clock(seconds)


def spans_text(spans: Iterable[LineSpan]) -> str:
    """``/var/log/nginx/access.log:1200-4500; …`` (file and line range)."""
    return "; ".join(f"{s.path}:{s.first_line}-{s.last_line}" for s in spans) or "-"


def window_spans(facts: WeblogFacts) -> tuple[LineSpan, ...]:
    """Every file's lines inside the window."""
    return tuple(s.window_lines for s in facts.sources if s.window_lines is not None)


def evidence(facts: WeblogFacts, spans: Iterable[LineSpan], excerpt: str) -> Evidence:
    return Evidence(spans_text(spans), excerpt, facts.read_at)


__all__ = [
    "cap",
    "clock",
    "evidence",
    "percent",
    "problem",
    "require",
    "spans_text",
    "top_list",
    "window_evidence",
    "window_spans",
]


def cap(severity: Severity, facts: WeblogFacts, settings: Settings) -> Severity:
    """A window that ended long before this run is history: at most a warning."""
    stale = facts.read_at - facts.until_s > settings.weblogs.stale_after_s
    return min(severity, Severity.WARNING) if stale else severity


def top_list(pairs: Iterable[tuple[str, int]], n: int = 3) -> str:
    return ", ".join(f"{k} ({v})" for k, v in list(pairs)[:n])


def window_evidence(facts: WeblogFacts, excerpts: Iterable[str]) -> tuple[Evidence, ...]:
    """Evidence drawn from the whole window: each file's window line range."""
    spans = window_spans(facts)
    return tuple(evidence(facts, spans, excerpt) for excerpt in excerpts)


def require(facts: WeblogFacts, field: str, reason_key: str) -> None:
    """Skip the rule when no readable log's format has ``field`` (has_bytes…)."""
    if not any(getattr(s, field) for s in facts.sources if not s.skipped_key):
        raise FactUnavailable(f"no {field} in the log format", key=reason_key)


def problem(
    facts: WeblogFacts,
    settings: Settings,
    rule_id: str,
    severity: Severity,
    title_key: str,
    params: dict[str, Any],
    found: tuple[Evidence, ...],
    remedy_key: str,
) -> Finding:
    """A failed web-log finding, capped when its window is old."""
    return Finding(
        rule_id=rule_id,
        severity=cap(severity, facts, settings),
        status=Status.FAILED,
        title_key=title_key,
        params=params,
        evidence=found,
        remedy_key=remedy_key,
    )

"""Helpers shared by the security rules: how to build a finding and cite a line."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from hostmedic.analysis.verdict import Clue
from hostmedic.facts.security import FileLine
from hostmedic.model import Evidence, Finding, Severity, Status

DAY_S = 86_400
RECENT_DAYS = 7  # "recently": created, changed or added within the last week


def stamp(t: float | None) -> str:
    """A time for evidence, in UTC so reports read the same wherever they are opened."""
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(t)) if t else "?"


def line_evidence(line: FileLine, read_at: float) -> Evidence:
    """``/etc/crontab:12`` and the line itself (line 0: the file as a whole)."""
    source = f"{line.path}:{line.line_no}" if line.line_no else line.path
    return Evidence(source, line.text, read_at)


def clue_list(clues: Iterable[Clue]) -> list[tuple[str, dict[str, str]]]:
    """Clues as the renderers expect them in ``params["clues"]``."""
    return [(c.key, dict(c.params)) for c in clues]


def failed(
    rule_id: str,
    severity: Severity,
    params: Mapping[str, Any],
    evidence: Iterable[Evidence],
    variant: str = "default",
    remedy: str | None = None,
) -> Finding:
    """A failed finding whose title and remedy keys follow the rule id and the variant
    (``finding.<rule_id>.<variant>.title``, ``remedy.<rule_id>.<remedy or variant>``)."""
    return Finding(
        rule_id=rule_id,
        severity=severity,
        status=Status.FAILED,
        title_key=f"finding.{rule_id}.{variant}.title",
        params=dict(params),
        evidence=tuple(evidence),
        remedy_key=f"remedy.{rule_id}.{remedy or variant}",
    )


def is_loopback(ip: str) -> bool:
    """127.0.0.0/8 or ::1: reachable from this machine only."""
    return ip.startswith("127.") or ip == "::1"

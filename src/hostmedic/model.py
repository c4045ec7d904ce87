"""The one finding model every check produces and every renderer consumes.

A finding holds message *keys* and parameters, never formatted prose: the renderer looks
the template up in the operator's language. Evidence items name where a fact was read,
the raw excerpt and when it was read, so an operator (or a test) can act on them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class Severity(enum.IntEnum):
    """How bad a failed check is; ordering drives ranking and the exit code."""

    INFO = 0
    WARNING = 1
    CRITICAL = 2


class Status(enum.Enum):
    """Whether a check found a problem, found none, or could not run."""

    FAILED = "failed"
    PASSED = "passed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Evidence:
    """One observed fact backing a finding: what was read, from where, and when."""

    source: str
    excerpt: str
    read_at: float


@dataclass(frozen=True, slots=True)
class Finding:
    """The result of one rule on one subject (a process, a remote address, an interface)."""

    rule_id: str
    severity: Severity
    status: Status
    title_key: str
    params: Mapping[str, Any] = field(default_factory=dict)
    evidence: tuple[Evidence, ...] = ()
    remedy_key: str | None = None
    runbook_ref: str = ""
    skip_reason: str | None = None

"""Rule registry and the engine that runs rules over collected facts.

A rule is a plain function that names the facts it needs (by parameter name) and yields
findings. Rules register with a stable id, a category (for ``--only``) and the runbook
step they implement. The engine hands each rule its facts; when a fact could not be
collected the rule is reported *skipped* with the collector's reason; a rule that raises
is a bug in hostmedic and is reported as such (never a traceback on the operator's screen).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from hostmedic.errors import FactUnavailable
from hostmedic.model import Finding, Severity, Status

log = logging.getLogger(__name__)

RuleFunction = Callable[..., Iterable[Finding]]


@dataclass(frozen=True, slots=True)
class Rule:
    """A registered check: its id, category, runbook step and the facts it needs."""

    rule_id: str
    category: str
    runbook_ref: str
    needs: tuple[str, ...]
    function: RuleFunction


_REGISTRY: dict[str, Rule] = {}


def rule(
    rule_id: str, *, category: str, runbook_ref: str
) -> Callable[[RuleFunction], RuleFunction]:
    """Register a rule function; the facts it needs are its parameter names."""

    def register(function: RuleFunction) -> RuleFunction:
        if rule_id in _REGISTRY:
            raise ValueError(f"duplicate rule id {rule_id}")
        needs = tuple(inspect.signature(function).parameters)
        _REGISTRY[rule_id] = Rule(rule_id, category, runbook_ref, needs, function)
        return function

    return register


def registered_rules(categories: Iterable[str] | None = None) -> list[Rule]:
    """All registered rules (importing the rule packages first), optionally filtered."""
    import hostmedic.rules  # noqa: F401  (registration happens on import)

    wanted = set(categories) if categories else None
    return [r for r in _REGISTRY.values() if wanted is None or r.category in wanted]


def _skipped(r: Rule, reason: FactUnavailable) -> Finding:
    return Finding(
        rule_id=r.rule_id,
        severity=Severity.INFO,
        status=Status.SKIPPED,
        title_key=f"rule.{r.rule_id}",
        params=dict(reason.params),
        runbook_ref=r.runbook_ref,
        skip_reason=reason.key,
    )


def run_rules(rules: Iterable[Rule], facts: Mapping[str, Any]) -> tuple[list[Finding], list[str]]:
    """Run rules over facts; returns (findings, internal errors).

    ``facts`` maps a fact name to its value, or to the :class:`FactUnavailable` raised when
    collecting it. A rule that yields nothing produces one *passed* finding so reports list
    what was checked, not only what failed.
    """
    findings: list[Finding] = []
    errors: list[str] = []
    for r in rules:
        missing = [n for n in r.needs if n not in facts]
        if missing:
            findings.append(
                _skipped(r, FactUnavailable(", ".join(missing), key="reason.not_collected"))
            )
            continue
        unavailable = next(
            (facts[n] for n in r.needs if isinstance(facts[n], FactUnavailable)), None
        )
        if unavailable is not None:
            findings.append(_skipped(r, unavailable))
            continue
        try:
            produced = [
                f if f.runbook_ref else replace(f, runbook_ref=r.runbook_ref)
                for f in r.function(**{n: facts[n] for n in r.needs})
            ]
        except FactUnavailable as exc:
            findings.append(_skipped(r, exc))
            continue
        except Exception as exc:  # a rule bug must not hide the other findings
            log.exception("rule %s failed", r.rule_id)
            errors.append(f"{r.rule_id}: {type(exc).__name__}: {exc}")
            continue
        findings.extend(produced or [_passed(r)])
    return sorted(findings, key=_rank), errors


def _passed(r: Rule) -> Finding:
    return Finding(
        rule_id=r.rule_id,
        severity=Severity.INFO,
        status=Status.PASSED,
        title_key=f"rule.{r.rule_id}",
        runbook_ref=r.runbook_ref,
    )


_STATUS_ORDER = {Status.FAILED: 0, Status.SKIPPED: 1, Status.PASSED: 2}


def _rank(f: Finding) -> tuple[int, int, str]:
    return (_STATUS_ORDER[f.status], -int(f.severity), f.rule_id)


def exit_code(findings: Iterator[Finding] | list[Finding], internal_errors: list[str]) -> int:
    """0 nothing wrong, 1 warnings, 2 critical findings, 3 the tool itself failed."""
    if internal_errors:
        return 3
    worst = max((f.severity for f in findings if f.status is Status.FAILED), default=None)
    if worst is None or worst is Severity.INFO:
        return 0
    return 1 if worst is Severity.WARNING else 2

"""Engine behaviour (skips, passes, rule bugs, exit codes) and fact bundles round-trip."""

import pytest

from hostmedic.engine import Rule, exit_code, run_rules
from hostmedic.errors import FactUnavailable, ParseError
from hostmedic.facts.bandwidth import BandwidthFacts, Traffic
from hostmedic.facts.bundle import from_jsonable, to_jsonable
from hostmedic.model import Finding, Severity, Status


def make_rule(rule_id, function):
    return Rule(
        rule_id,
        "test",
        "seed 000",
        tuple(function.__code__.co_varnames[: function.__code__.co_argcount]),
        function,
    )


def warns(x):
    yield Finding("t.warn", Severity.WARNING, Status.FAILED, "k")


def quiet(x):
    return []


def crashes(x):
    raise RuntimeError("boom")


def declines(x):
    raise FactUnavailable("capacity unknown", key="reason.capacity_unknown")


def test_skip_pass_fail_and_bug():
    rules = [
        make_rule("a", warns),
        make_rule("b", quiet),
        make_rule("c", crashes),
        make_rule("d", declines),
    ]
    findings, errors = run_rules(rules, {"x": 1})
    assert [(f.rule_id, f.status) for f in findings] == [
        ("t.warn", Status.FAILED),
        ("d", Status.SKIPPED),
        ("b", Status.PASSED),
    ]
    assert findings[0].runbook_ref == "seed 000"
    assert findings[1].skip_reason == "reason.capacity_unknown"
    assert errors and "boom" in errors[0]
    assert exit_code(findings, errors) == 3
    assert exit_code(findings, []) == 1


def test_unavailable_fact_skips_with_collector_reason():
    findings, _ = run_rules(
        [make_rule("a", warns)], {"x": FactUnavailable("no", key="reason.no_interfaces")}
    )
    assert (
        findings[0].status is Status.SKIPPED and findings[0].skip_reason == "reason.no_interfaces"
    )


def test_exit_codes():
    crit = Finding("c", Severity.CRITICAL, Status.FAILED, "k")
    info = Finding("i", Severity.INFO, Status.FAILED, "k")
    assert exit_code([info], []) == 0
    assert exit_code([info, crit], []) == 2


def test_bundle_round_trip_and_validation():
    facts = BandwidthFacts(
        1.5, (), (), (), (), Traffic(1, 2, 3, 4), (("uncounted.tcp", "x"),), "CN"
    )
    data = to_jsonable(facts)
    assert from_jsonable(BandwidthFacts, data) == facts
    data["duration_s"] = "soon"
    with pytest.raises(ParseError):
        from_jsonable(BandwidthFacts, data)

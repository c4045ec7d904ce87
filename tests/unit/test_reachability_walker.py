"""The tree walker and the cause ranking on hand-built evidence, one test per cause.

Each scenario comes in two forms (tests/unit/reach_world.py): what probes from outside
see, and the same with the separating evidence merged (inside facts of the target or the
source, the target's bandwidth facts, a console answer). The bars of issue 4: with the
separating evidence the right cause is first; from outside it is within the first two.
"""

import pytest

from hostmedic.analysis.reach_tree import CAUSES
from hostmedic.analysis.reachability import walk
from tests.unit import reach_world as w

# cause → (scenario, node reached with merged evidence)
SCENARIOS = {
    "none": (w.healthy, "0"),
    "service_down": (w.service_down, "2.1-A.1-A"),
    "target_host_internal": (w.target_host_internal, "2.1-A.1-B"),
    "target_security_group": (w.target_security_group, "2.1-A.1-B"),
    "ddos_waf_interception": (w.blackhole, "2.1-A.1-B"),
    "cloud_shield_zombie_shutdown": (w.zombie_shutdown, "2.1-A.1"),
    "target_arrears_stopped": (w.arrears, "2.1-A.1"),
    "green_net_block": (lambda: w.block_page("green_net_block", 403), "1.1-B.1-A.1-B"),
    "icp_filing": (lambda: w.block_page("icp_filing", 403), "1.1-B.1-A.1-B"),
    "local_dns_hijack": (w.dns_hijack, "1.1-A.1-B"),
    "isp_policy": (w.isp_port_block, "3.1-B.1-B"),
    "lb_whitelist": (w.lb_whitelist, "3.1-B.1-A"),
    "app_source_acl": (w.app_acl, "3.1-B.1-A"),
    "client_local_network": (w.client_local_network, "3.1-A"),
    "cloud_shield_source_blocked": (w.shield_source_block, "3.1-A"),
    "path_loss": (w.path_loss, "3.1-A"),
    "bandwidth_saturated": (w.bandwidth_saturated, "2.1-A.1-B"),
    "source_security_group": (w.source_security_group, "1-B.1-B.1-B.1-A"),
    "source_host_internal": (w.source_host_internal, "1-B.1-B.1-A"),
}


def test_every_cause_of_the_vocabulary_has_a_scenario():
    assert set(SCENARIOS) == set(CAUSES)


def _ids(verdict):
    return [c.id for c in verdict.causes]


@pytest.mark.parametrize("cause", sorted(SCENARIOS))
def test_merged_evidence_names_the_cause_first(cause):
    build, node = SCENARIOS[cause]
    _, merged = build()
    verdict = walk(merged)
    assert verdict.node == node, [(s.node, s.answer) for s in verdict.steps]
    assert _ids(verdict)[0] == cause, [(c.id, c.score) for c in verdict.causes]
    assert verdict.top.evidence_for


@pytest.mark.parametrize("cause", sorted(SCENARIOS))
def test_outside_evidence_alone_puts_the_cause_in_the_first_two(cause):
    build, _ = SCENARIOS[cause]
    outside, _ = build()
    verdict = walk(outside)
    assert cause in _ids(verdict)[:2], [(c.id, c.score) for c in verdict.causes]


def test_ranks_are_dense_and_ordered_by_score():
    _, merged = w.target_security_group()
    causes = walk(merged).causes
    assert [c.rank for c in causes] == list(range(1, len(causes) + 1))
    assert [c.score for c in causes] == sorted((c.score for c in causes), reverse=True)


def test_missing_inside_evidence_stops_at_the_question_and_names_the_test():
    outside, _ = w.service_down()
    verdict = walk(outside)
    assert (verdict.node, verdict.complete) == ("2.1-A.1", False)
    assert verdict.decide is not None and verdict.decide.key == "verdict.reach.test.inside"
    assert "hostmedic diagnose --only network" in verdict.decide.param_dict["command"]


def test_a_service_bound_to_loopback_is_down_for_clients():
    _, merged = w.service_on_loopback()
    verdict = walk(merged)
    assert verdict.node == "2.1-A.1-A" and verdict.top.id == "service_down"
    assert any(r.key.endswith("listener_loopback_only") for r in verdict.top.evidence_for)


def test_a_single_vantage_stops_at_do_all_networks_fail():
    outside = w.world(w.client(ports=w.ports(p3306="timeout")))
    verdict = walk(outside)
    assert verdict.node == "2.1" and not verdict.complete
    assert verdict.decide.key == "verdict.reach.test.other_vantage"
    assert "--port 3306" in verdict.decide.param_dict["command"]


def test_arrears_and_shield_shutdown_tie_from_outside_and_name_the_console():
    outside, _ = w.cut_off()
    verdict = walk(outside)
    top2 = {c.id for c in verdict.causes[:2]}
    assert top2 == {"target_arrears_stopped", "cloud_shield_zombie_shutdown"}
    assert all(c.console_only for c in verdict.causes[:2])
    assert verdict.causes[0].score == verdict.causes[1].score


def test_isp_injection_is_told_from_dns_hijack_by_the_resolvers():
    _, merged = w.isp_injection()
    verdict = walk(merged)
    assert verdict.node == "1.1-A.1-B" and verdict.top.id == "isp_policy"
    hijack = next(c for c in verdict.causes if c.id == "local_dns_hijack")
    assert any(r.key.endswith("dns_agrees") for r in hijack.evidence_against)


def test_waf_block_page_is_ddos_waf_interception():
    _, merged = w.block_page("waf_block")
    verdict = walk(merged)
    assert verdict.node == "1.1-B.1-A.1-B" and verdict.top.id == "ddos_waf_interception"


def test_private_target_security_group_and_path_loss():
    _, merged = w.private_target_security_group()
    verdict = walk(merged)
    assert (verdict.node, verdict.top.id) == ("1-B.1-B.1-B.1-A", "target_security_group")
    _, merged = w.private_path_loss()
    verdict = walk(merged)
    assert (verdict.node, verdict.top.id) == ("1-B.1-B.1-B.1-B", "path_loss")


def test_the_operator_probing_from_a_working_client_gets_the_failing_one():
    failing = w.client("customer", ports=w.ports(p3306="timeout"))
    verdict = walk(w.world(w.client("me"), failing))
    assert verdict.steps[0].node == "1.1"
    assert verdict.node == "3.1-B.1"  # the customer's network only; the block needs a test


def test_console_answers_decide_console_only_causes():
    outside, _ = w.target_security_group()
    told = w.merged(outside, console={"security_group": "blocks"})
    assert walk(told).top.id == "target_security_group"
    told = w.merged(outside, console={"security_group": "allows"}, target_inside=w.inside())
    assert walk(told).top.id != "target_security_group"

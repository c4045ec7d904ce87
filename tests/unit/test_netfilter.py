"""The firewall model and its evaluator, on rulesets recorded from the real tools
(tests/fixtures/netfilter/record.sh) and on hostile input."""

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hostmedic.analysis.netfilter import (
    ACCEPT,
    DROP,
    RESTRICTED,
    UNKNOWN,
    Probe,
    conntrack_helpers,
    evaluate,
    evaluate_ports,
)
from hostmedic.collectors.iptables_save import parse_iptables_save
from hostmedic.collectors.nft_json import parse_nft_json
from hostmedic.errors import ParseError
from hostmedic.facts import netfilter as nf
from hostmedic.facts.netfilter import FwChain, FwRule, Match, Ruleset

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "netfilter"


def nft_ruleset(name: str) -> Ruleset:
    chains, sets, skipped = parse_nft_json((FIXTURES / f"{name}.json").read_text())
    return Ruleset(tuple(chains), tuple(sets), ("nft",), tuple(skipped), 1.0)


def iptables_ruleset() -> Ruleset:
    v4, variant = parse_iptables_save((FIXTURES / "iptables-save.txt").read_text())
    v6, _ = parse_iptables_save((FIXTURES / "ip6tables-save.txt").read_text(), family="ip6")
    assert variant == "nf_tables"
    return Ruleset(tuple(v4 + v6), (), ("iptables-save",), (), 1.0)


def verdict(ruleset: Ruleset, port: int, family: str = "ip", state: str = "new") -> str:
    return evaluate(ruleset, Probe(family, "in", port, ct_state=state)).verdict


def test_nft_json_shapes_are_normalised():
    rs = nft_ruleset("basic")
    chain = rs.chain("inet", "filter", "input")
    assert chain is not None and chain.hook == "input" and chain.policy == "drop"
    texts = [r.text for r in chain.rules]
    assert "l4proto tcp dport {21,30000-30100} ct_state new accept" in texts  # named set resolved
    assert "ct_state vmap {invalid: drop, established: accept, related: accept}" in texts
    assert "syn l4proto tcp dport 990 accept" in texts  # tcp flags & (fin|syn|rst|ack) == syn
    blocklist = rs.named_set("inet", "filter", "blocklist")
    assert blocklist is not None and blocklist.elements == ("203.0.113.9",)


@pytest.mark.parametrize(
    ("port", "expected"),
    [
        (21, ACCEPT),  # dport @allowed_ports ct state new accept
        (22, ACCEPT),
        (443, ACCEPT),  # anonymous set
        (990, ACCEPT),  # only for a SYN: the probe is one
        (8080, RESTRICTED),  # ip saddr 198.51.100.0/24 only
        (5005, DROP),  # th dport 5000-5010 reject
        (6000, ACCEPT),  # jump services → accept
        (6001, DROP),  # jump services → goto deny → drop
        (7000, DROP),  # services returns → policy drop
        (30100, ACCEPT),
        (30101, DROP),
    ],
)
def test_nft_verdicts(port, expected):
    assert verdict(nft_ruleset("basic"), port) == expected


def test_restricted_names_the_rule_that_accepts_some_sources():
    reach = evaluate(nft_ruleset("basic"), Probe("ip", "in", 8080))
    assert reach.decided_by == "inet filter input: policy drop"
    assert reach.conditions == (
        "inet filter input: nfproto ip saddr 198.51.100.0/24 l4proto tcp dport 8080 accept",
    )


def test_established_replies_pass_the_vmap():
    assert verdict(nft_ruleset("basic"), 7000, state="established") == ACCEPT


def test_outbound_probe_from_port_20():
    reach = evaluate(nft_ruleset("basic"), Probe("ip", "out", None, sport=20))
    assert reach.verdict == DROP and "sport 20 drop" in reach.decided_by
    assert evaluate(nft_ruleset("basic"), Probe("ip", "out", None, sport=21)).verdict == ACCEPT


def test_port_spans_cost_one_evaluation_per_run():
    spans = evaluate_ports(nft_ruleset("basic"), Probe("ip", "in", None), 29990, 30110)
    assert [(s.first_port, s.last_port, s.reach.verdict) for s in spans] == [
        (29990, 29999, DROP),
        (30000, 30100, ACCEPT),
        (30101, 30110, DROP),
    ]


def test_fail2ban_blocks_are_conditional_not_closures():
    rs = nft_ruleset("fail2ban")
    assert verdict(rs, 21) == ACCEPT
    assert verdict(rs, 21, family="ip6") == ACCEPT


def test_iptables_save_verdicts_and_families():
    rs = iptables_ruleset()
    assert verdict(rs, 21) == ACCEPT  # the f2b chain returns for everyone else
    assert verdict(rs, 21, family="ip6") == DROP  # ip6tables rejects it
    assert verdict(rs, 30049) == ACCEPT and verdict(rs, 30050) == DROP
    assert verdict(rs, 3306) == DROP  # ! -s 10.0.0.0/8 … DROP, then policy for the rest
    assert verdict(rs, 8080) == RESTRICTED
    assert conntrack_helpers(rs) == {"ftp"}


def test_iptables_nft_view_of_the_same_rules_is_unknown_where_xt_hides_them():
    rs = nft_ruleset("iptables-nft")
    assert verdict(rs, 30000) == UNKNOWN  # "xt conntrack": why the collector prefers iptables-save
    assert verdict(rs, 21) == UNKNOWN  # the multiport jump is opaque


def test_no_base_chain_means_accept():
    assert verdict(Ruleset((), (), (), (), 0.0), 21) == ACCEPT


def _chain(*rules: FwRule, policy: str = "accept", name: str = "input", hook: str | None = "input"):
    return FwChain("nftables", "inet", "t", name, hook, 0, policy if hook else None, rules)


def _rule(verdict: str, *matches: Match) -> FwRule:
    return FwRule(matches, verdict, f"{verdict}", "handle 1")


def test_an_unknown_condition_that_could_drop_makes_the_verdict_unknown():
    rs = Ruleset((_chain(_rule("drop", Match(nf.OTHER, ("meta mark 0x1",)))),), (), (), (), 0.0)
    reach = evaluate(rs, Probe("ip", "in", 21))
    assert reach.verdict == UNKNOWN and reach.conditions == ("inet t input: drop",)


def test_a_jump_loop_is_unknown_not_a_hang():
    loop = _chain(_rule("jump:input"), name="input")
    rs = Ruleset((loop,), (), (), (), 0.0)
    assert evaluate(rs, Probe("ip", "in", 21)).verdict == UNKNOWN


def test_a_jump_to_a_missing_chain_is_unknown():
    rs = Ruleset((_chain(_rule("jump:nowhere")),), (), (), (), 0.0)
    assert evaluate(rs, Probe("ip", "in", 21)).verdict == UNKNOWN


def test_many_blocklist_rules_stay_cheap():
    rules = [_rule("drop", Match(nf.SADDR, (f"203.0.113.{i % 250}",))) for i in range(3000)]
    rs = Ruleset((_chain(*rules, policy="drop"),), (), (), (), 0.0)
    assert evaluate(rs, Probe("ip", "in", 21)).verdict == DROP


@pytest.mark.parametrize(
    "text",
    ["", "[]", '{"nftables": 3}', "{not json", '{"nftables": [{"rule": 5}]}'],
)
def test_hostile_nft_json(text):
    try:
        chains, _, _ = parse_nft_json(text)
    except ParseError:
        return
    assert chains == []


def test_garbage_expressions_become_unknown_conditions():
    doc = {
        "nftables": [
            {
                "chain": {
                    "family": "inet",
                    "table": "t",
                    "name": "c",
                    "hook": "input",
                    "prio": 0,
                    "policy": "drop",
                    "type": "filter",
                }
            },
            {
                "rule": {
                    "family": "inet",
                    "table": "t",
                    "chain": "c",
                    "handle": 2,
                    "expr": [{"weird": {"x": [1, 2]}}, 7, {"accept": None}],
                }
            },
        ]
    }
    chains, _, _ = parse_nft_json(json.dumps(doc))
    assert chains[0].rules[0].matches[0].field == nf.OTHER
    assert (
        evaluate(Ruleset(tuple(chains), (), (), (), 0.0), Probe("ip", "in", 21)).verdict == UNKNOWN
    )


@pytest.mark.parametrize(
    "text",
    [
        "-A INPUT -j ACCEPT",
        "*filter\n-A\nCOMMIT",
        "*filter\nbogus line\n",
        '*filter\n-A X "unclosed\n',
    ],
)
def test_hostile_iptables_save(text):
    with pytest.raises(ParseError):
        parse_iptables_save(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_iptables_save_never_crashes_on_junk_rules(junk):
    with contextlib.suppress(ParseError):
        parse_iptables_save("*filter\n:INPUT DROP [0:0]\n-A INPUT " + junk.replace("\n", " "))

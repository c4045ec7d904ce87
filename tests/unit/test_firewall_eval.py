"""The firewall model and its evaluator, on rulesets recorded from the real tools
(tests/fixtures/netfilter/record.sh) and on hostile input."""

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hostmedic.analysis.firewall import ACCEPT, DROP, Packet
from hostmedic.analysis.firewall_ports import (
    RESTRICTED,
    UNKNOWN,
    conntrack_helpers,
    evaluate_ports,
)
from hostmedic.analysis.firewall_ports import reach_verdict as evaluate
from hostmedic.collectors.iptables_save import parse_iptables_save
from hostmedic.collectors.nft_json import make_rule, match, parse_nft_json
from hostmedic.errors import ParseError
from hostmedic.facts import network as nf
from hostmedic.facts.network import FirewallChain, FirewallFacts, FirewallRule

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "netfilter"


def probe(  # the FTP checks' probes, as packets
    family: str, direction: str, dport: int | None, sport: int | None = None, ct_state="new"
) -> Packet:
    return Packet("tcp", family, dport, sport=sport, direction=direction, ct_state=ct_state)


def ruleset(chains, sets, sources, notes, read_at) -> FirewallFacts:
    return FirewallFacts(chains, sources, sets=sets, notes=notes, read_at=read_at)


def nft_ruleset(name: str) -> FirewallFacts:
    chains, sets, skipped = parse_nft_json((FIXTURES / f"{name}.json").read_text())
    return ruleset(tuple(chains), tuple(sets), ("nft",), tuple(skipped), 1.0)


def iptables_ruleset() -> FirewallFacts:
    v4, variant, _ = parse_iptables_save((FIXTURES / "iptables-save.txt").read_text())
    v6, _, _ = parse_iptables_save((FIXTURES / "ip6tables-save.txt").read_text(), family="ip6")
    assert variant == "nf_tables"
    return ruleset(tuple(v4 + v6), (), ("iptables-save",), (), 1.0)


def verdict(ruleset: FirewallFacts, port: int, family: str = "ip", state: str = "new") -> str:
    return evaluate(ruleset, probe(family, "in", port, ct_state=state)).verdict


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
    reach = evaluate(nft_ruleset("basic"), probe("ip", "in", 8080))
    assert reach.decided_by == "inet filter input: policy drop"
    assert reach.conditions == (
        "inet filter input: nfproto ip saddr 198.51.100.0/24 l4proto tcp dport 8080 accept",
    )


def test_established_replies_pass_the_vmap():
    assert verdict(nft_ruleset("basic"), 7000, state="established") == ACCEPT


def test_outbound_probe_from_port_20():
    reach = evaluate(nft_ruleset("basic"), probe("ip", "out", None, sport=20))
    assert reach.verdict == DROP and "sport 20 drop" in reach.decided_by
    assert evaluate(nft_ruleset("basic"), probe("ip", "out", None, sport=21)).verdict == ACCEPT


def test_port_spans_cost_one_evaluation_per_run():
    spans = evaluate_ports(nft_ruleset("basic"), probe("ip", "in", None), 29990, 30110)
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
    assert verdict(ruleset((), (), (), (), 0.0), 21) == ACCEPT


def _chain(*rules: FirewallRule, policy="accept", name="input", hook: str | None = "input"):
    return FirewallChain("nftables", "inet", "t", name, rules, hook, 0, policy if hook else None)


def _rule(verdict: str, *matches) -> FirewallRule:
    return make_rule(list(matches), verdict, "handle 1", text=verdict)


def test_an_unknown_condition_that_could_drop_makes_the_verdict_unknown():
    rs = ruleset((_chain(_rule("drop", match(nf.OTHER, ("meta mark 0x1",)))),), (), (), (), 0.0)
    reach = evaluate(rs, probe("ip", "in", 21))
    assert reach.verdict == UNKNOWN and reach.conditions == ("inet t input: drop",)


def test_a_jump_loop_is_unknown_not_a_hang():
    loop = _chain(_rule("jump:input"), name="input")
    rs = ruleset((loop,), (), (), (), 0.0)
    assert evaluate(rs, probe("ip", "in", 21)).verdict == UNKNOWN


def test_a_jump_to_a_missing_chain_is_unknown():
    rs = ruleset((_chain(_rule("jump:nowhere")),), (), (), (), 0.0)
    assert evaluate(rs, probe("ip", "in", 21)).verdict == UNKNOWN


def test_many_blocklist_rules_stay_cheap():
    rules = [_rule("drop", match(nf.SADDR, (f"203.0.113.{i % 250}",))) for i in range(3000)]
    rs = ruleset((_chain(*rules, policy="drop"),), (), (), (), 0.0)
    assert evaluate(rs, probe("ip", "in", 21)).verdict == DROP


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
        evaluate(ruleset(tuple(chains), (), (), (), 0.0), probe("ip", "in", 21)).verdict == UNKNOWN
    )


@pytest.mark.parametrize("text", ["-A INPUT -j ACCEPT", "*filter\nbogus line\n"])
def test_hostile_iptables_save(text):
    with pytest.raises(ParseError):
        parse_iptables_save(text)


def test_broken_rule_lines_are_counted_and_skipped():
    text = '*filter\n:INPUT DROP [0:0]\n-A\n-A X "unclosed\n-A NOSUCH -j DROP\nCOMMIT\n'
    chains, _, bad = parse_iptables_save(text)
    assert bad == 3 and [c.rules for c in chains] == [()]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_iptables_save_never_crashes_on_junk_rules(junk):
    with contextlib.suppress(ParseError):
        text = "*filter\n:INPUT DROP [0:0]\n:X - [0:0]\n-A INPUT " + junk.replace("\n", " ")
        chains, _, _ = parse_iptables_save(text)
        fw = ruleset(tuple(chains), (), (), (), 0.0)
        assert evaluate(fw, probe("ip", "in", 21)).verdict in (ACCEPT, DROP, RESTRICTED, UNKNOWN)

"""The firewall parser and evaluator on recorded dumps (nft -j, iptables-save with the
nf_tables and legacy backends, tests/fixtures/probe) and on hostile input."""

import json
from pathlib import Path

import pytest

from hostmedic.analysis.firewall import Packet, echo_request, evaluate, tcp_to
from hostmedic.collectors.firewall import (
    MAX_RULES,
    combine,
    iptables_backend,
    parse_iptables_save,
    parse_nft_ruleset,
)
from hostmedic.errors import ParseError
from hostmedic.facts.network import FirewallChain, FirewallFacts, FirewallMatch, FirewallRule

FIXTURES = Path(__file__).parents[1] / "fixtures" / "probe"


def text(name: str) -> str:
    return (FIXTURES / name).read_text()


@pytest.fixture(scope="module")
def nft() -> FirewallFacts:
    return combine(text("nft_ruleset.json"), {}, None)


@pytest.fixture(scope="module")
def xt() -> FirewallFacts:
    dumps = {"iptables": text("iptables_nft_save.txt"), "ip6tables": text("ip6tables_nft_save.txt")}
    return combine(
        text("nft_ruleset_iptables_nft.json"),
        dumps,
        iptables_backend(text("iptables_nft_version.txt")),
    )


def test_nft_chains_that_filter_traffic_to_the_host(nft):
    chains = {(c.table, c.name): c for c in nft.chains}
    assert set(chains) == {("hostfw", "input"), ("hostfw", "services"), ("raw_block", "pre")}
    assert (
        chains[("hostfw", "input")].policy == "drop"
        and chains[("raw_block", "pre")].priority == -300
    )
    texts = [r.text for r in chains[("hostfw", "input")].rules]
    assert "l4proto tcp dport 22,443 accept" in texts  # a named set, resolved
    assert "l4proto tcp dport 0-1023 drop" in texts  # "< 1024" as a range
    assert nft.skipped_rules == 0 and nft.sources == ("nft -j list ruleset",)


@pytest.mark.parametrize(
    ("port", "verdict", "rule"),
    [
        (22, "accept", None),
        (80, "accept", None),
        (3306, "reject", "l4proto tcp dport 3306 reject"),
        (9000, "drop", "l4proto tcp dport 9000 drop"),
        (10050, "accept", None),  # accepted in the jumped-to chain
        (10051, "drop", "policy drop"),  # returned, then the policy
        (25, "drop", "l4proto tcp dport 0-1023 drop"),
    ],
)
def test_nft_verdicts_for_a_client_of_unknown_address(nft, port, verdict, rule):
    decision = evaluate(nft, tcp_to(port))
    assert (decision.verdict, decision.rule) == (verdict, rule)
    assert not decision.certain and "saddr 198.51.100.128/25 drop" in decision.maybe


def test_nft_source_specific_rules_decide_once_the_source_is_known(nft):
    assert evaluate(nft, tcp_to(5432, saddr="198.51.100.7")).verdict == "accept"
    blocked = evaluate(nft, tcp_to(22, saddr="198.51.100.200"))
    assert (blocked.verdict, blocked.rule, blocked.certain) == (
        "drop",
        "saddr 198.51.100.128/25 drop",
        True,
    )


def test_nft_ping(nft):
    assert evaluate(nft, echo_request()).rule == "l4proto icmp icmp_type echo-request drop"
    assert evaluate(nft, echo_request("ipv6")).verdict == "accept"


def test_iptables_nft_backend_reads_the_xt_tables_from_iptables_save(xt):
    assert xt.iptables_backend == "nf_tables"
    assert {c.source for c in xt.chains} == {"iptables", "ip6tables"}  # nft's copy skipped
    verdicts = {
        p: evaluate(xt, tcp_to(p)).verdict for p in (22, 80, 443, 3306, 8443, 10050, 25, 9999)
    }
    assert verdicts == {
        22: "accept",
        80: "accept",
        443: "accept",
        3306: "reject",
        8443: "accept",
        10050: "accept",
        25: "reject",
        9999: "drop",
    }
    assert "--icmp-type 8 -j DROP" in (evaluate(xt, echo_request()).rule or "")
    assert "--icmpv6-type 128" in (evaluate(xt, echo_request("ipv6")).rule or "")
    eight = evaluate(xt, tcp_to(8080))
    assert (eight.verdict, eight.certain) == ("drop", False)  # open for 198.51.100.0/24 only
    assert evaluate(xt, tcp_to(8080, saddr="198.51.100.9")).verdict == "accept"
    udp = evaluate(xt, Packet("udp", dport=161, saddr="10.1.2.3"))
    assert (udp.verdict, udp.rule) == ("drop", "policy drop")


def test_legacy_backend_is_read_next_to_nftables():
    legacy = combine(
        '{"nftables": []}',
        {"iptables": text("iptables_legacy_save.txt")},
        iptables_backend(text("iptables_legacy_version.txt")),
    )
    assert legacy.iptables_backend == "legacy"
    assert evaluate(legacy, tcp_to(8000)).verdict == "drop"
    assert evaluate(legacy, echo_request()).verdict == "reject"
    assert evaluate(legacy, Packet("udp", dport=5353)).rule.endswith("--dport 5353 -j DROP")
    assert evaluate(legacy, tcp_to(80)).verdict == "accept"


def test_an_empty_firewall_accepts_everything():
    empty = FirewallFacts((), ("nft -j list ruleset",))
    assert evaluate(empty, tcp_to(80)).verdict == "accept" and evaluate(empty, tcp_to(80)).certain


def test_jump_loops_and_unknown_targets_do_not_hang():
    loop = FirewallRule((), "jump", "jump a", "a")
    chains = (
        FirewallChain(
            "nftables",
            "inet",
            "t",
            "input",
            (FirewallRule((), "jump", "jump b", "b"),),
            "input",
            0,
            "accept",
        ),
        FirewallChain("nftables", "inet", "t", "b", (loop,)),
        FirewallChain("nftables", "inet", "t", "a", (FirewallRule((), "jump", "jump b", "b"),)),
    )
    decision = evaluate(FirewallFacts(chains, ()), tcp_to(80))
    assert decision.verdict == "accept" and not decision.certain


def test_unknown_conditions_make_a_rule_uncertain():
    rule = FirewallRule(
        (FirewallMatch("other", "==", ("xt conntrack",)),), "drop", "xt conntrack drop"
    )
    chain = FirewallChain("nftables", "ip", "filter", "INPUT", (rule,), "input", 0, "accept")
    decision = evaluate(FirewallFacts((chain,), ()), tcp_to(80))
    assert (decision.verdict, decision.maybe) == ("accept", ("xt conntrack drop",))


def test_iptables_negation_ranges_and_target_options():
    chains, bad = parse_iptables_save(
        "*filter\n:INPUT ACCEPT [0:0]\n"
        '-A INPUT ! -i lo -p tcp -m tcp --dport 1000:2000 -m comment --comment "x y" '
        "-j REJECT --reject-with tcp-reset\n"
        '-A INPUT -p tcp -m recent --set --name x -j LOG --log-prefix "a b"\n'
        '-A INPUT -m unterminated "quote\n-A NOSUCH -j DROP\nCOMMIT\n'
    )
    rules = chains[0].rules
    assert [(m.field, m.op, m.values) for m in rules[0].matches] == [
        ("iif", "!=", ("lo",)),
        ("l4proto", "==", ("tcp",)),
        ("dport", "==", ("1000-2000",)),
    ]
    assert rules[0].verdict == "reject" and rules[1].verdict == "continue"
    assert bad == 2


@pytest.mark.parametrize("document", ["", "[]", '{"nftables": 3}', "{", '{"x": 1}'])
def test_bad_nft_json_is_a_parse_error(document):
    with pytest.raises(ParseError):
        parse_nft_ruleset(document)


def test_nft_statements_that_make_no_sense_are_counted_and_skipped():
    document = {
        "nftables": [
            {
                "chain": {
                    "family": "inet",
                    "table": "t",
                    "name": "input",
                    "type": "filter",
                    "hook": "input",
                    "prio": 0,
                    "policy": "accept",
                }
            },
            {
                "rule": {
                    "family": "inet",
                    "table": "t",
                    "chain": "input",
                    "expr": [{"a": 1, "b": 2}],
                }
            },
            {
                "rule": {
                    "family": "inet",
                    "table": "t",
                    "chain": "input",
                    "expr": [
                        {
                            "match": {
                                "op": "==",
                                "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                                "right": True,
                            }
                        },
                        {"drop": None},
                    ],
                }
            },
            {"rule": {"family": "inet", "table": "t", "chain": "nochain", "expr": []}},
            "garbage",
        ]
    }
    chains, skipped = parse_nft_ruleset(json.dumps(document))
    assert skipped == 1 and len(chains[0].rules) == 1
    assert chains[0].rules[0].matches[0].field == "other"  # not understood: may match
    assert evaluate(FirewallFacts(tuple(chains), ()), tcp_to(80)).maybe


def test_huge_rulesets_are_cut_and_say_so():
    lines = "\n".join(f"-A INPUT -p tcp --dport {p} -j ACCEPT" for p in range(1, MAX_RULES + 500))
    facts = combine(None, {"iptables": f"*filter\n:INPUT DROP [0:0]\n{lines}\nCOMMIT\n"}, "legacy")
    assert facts.truncated and sum(len(c.rules) for c in facts.chains) == MAX_RULES


def test_backend_from_version_text():
    assert iptables_backend("iptables v1.8.9 (nf_tables)") == "nf_tables"
    assert iptables_backend("iptables v1.8.9 (legacy)") == "legacy"
    assert iptables_backend("iptables v1.6.1") == "legacy"
    assert iptables_backend("nonsense") is None

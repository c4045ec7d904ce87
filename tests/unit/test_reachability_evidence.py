"""From probe evidence (facts.probe) to the walker's observations, and verdict_for end to
end: who is the primary vantage, which files are other vantages, controls, the target's
inside and the source's inside; block-page ids → kinds; the host firewall summary; the
bandwidth facts reduced to "saturated / flooding"."""

import json
from pathlib import Path

from hostmedic.analysis.reach_evidence import observations_from, page_kind
from hostmedic.analysis.reach_firewall import firewall_summary
from hostmedic.analysis.reachability import checklist_for, verdict_for
from hostmedic.collectors.firewall import combine
from hostmedic.facts.bandwidth import BandwidthFacts, InterfaceUsage, Rates, Traffic
from hostmedic.facts.network import (
    FirewallChain,
    FirewallFacts,
    FirewallMatch,
    FirewallRule,
    Gateway,
    HostsAccessEntry,
    Listener,
    LocalConnect,
    NetworkFacts,
    Vantage,
)
from hostmedic.facts.probe import (
    DnsAnswer,
    Hop,
    HttpResult,
    Observation,
    PathResult,
    PingResult,
    TargetName,
    TcpAttempt,
    summarize_attempts,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "probe"
T = "203.0.113.10"
C1 = Vantage("client1", ("198.51.100.2",), "client", 1.0)
C2 = Vantage("client2", ("198.51.100.34",), "client", 1.0)
TGT = Vantage("target", ("198.19.1.10", T), "target", 1.0)


def _port(port: int, outcome: str, target: str = T):
    return summarize_attempts(target, port, (TcpAttempt(outcome, 1.0),) * 3)


def _probe(vantage, target=T, received=5, states=None, http=(), dns=(), paths=()):
    states = states or {80: "open", 3306: "open"}
    return Observation(
        vantage=vantage,
        target=TargetName(target, (target,), target),
        ping=PingResult(target, 5, received, 100.0 * (5 - received) / 5),
        ports=tuple(_port(p, s, target) for p, s in states.items()),
        http=http,
        dns=dns,
        paths=paths,
        finished_at=2.0,
    )


def _inside(firewall=None, listeners=None) -> Observation:
    facts = NetworkFacts(
        vantage=TGT,
        listeners=listeners
        or (
            Listener("tcp", "0.0.0.0", 80, "wildcard"),
            Listener("tcp", "0.0.0.0", 3306, "wildcard"),
        ),
        loopback=(LocalConnect("127.0.0.1", 80, "open"), LocalConnect("127.0.0.1", 3306, "open")),
        firewall=firewall,
        gateways=(Gateway("ipv4", "198.19.1.1", "eth0"),),
        read_at=3.0,
    )
    return Observation(vantage=TGT, inside=facts, finished_at=3.0)


def test_evidence_is_sorted_by_vantage_and_target():
    mine = _probe(C1, states={80: "open", 3306: "timeout"})
    other = _probe(C2)
    control = _probe(C1, target="198.51.100.80")
    page = _probe(TGT, target="127.0.0.1", http=(HttpResult("http://127.0.0.1/", 200),))
    obs = observations_from([mine, other, control, page, _inside()])
    assert obs.access == "public" and obs.target == T
    assert obs.primary.name == "client1" and [p.state for p in obs.primary.ports] == [
        "open",
        "timeout",
    ]
    assert [v.name for v in obs.others] == ["client2"]
    assert [v.target for v in obs.controls] == ["198.51.100.80"]
    assert [v.target for v in obs.from_target] == ["127.0.0.1"]
    assert obs.target_inside.host == "target" and obs.target_gateway == "198.19.1.1"
    assert obs.target_inside.loopback == {80: True, 3306: True}
    assert obs.source_inside is None


def test_a_peer_vantage_means_private_access_and_its_own_bundle_is_the_source_inside():
    peer = Vantage("peer1", ("198.19.2.20",), "peer", 1.0)
    source_bundle = Observation(
        vantage=Vantage("peer1", ("198.19.2.20",), "target", 1.0),  # diagnose says "target"
        inside=NetworkFacts(vantage=Vantage("peer1", ("198.19.2.20",), "target", 1.0)),
    )
    obs = observations_from([_probe(peer, target="198.19.1.10"), source_bundle])
    assert obs.access == "private"
    assert obs.source_inside is not None and obs.target_inside is None


def test_block_page_ids_map_to_the_tree_kinds():
    assert page_kind("icp.aliyun") == "icp_filing"
    assert page_kind("waf.aliyun") == "waf_block"
    assert page_kind("injection.script_after_html") == "injected_ads"
    assert page_kind("no.such.page") is None


def test_firewall_summary_on_a_recorded_ruleset():
    text = (FIXTURES / "nft_ruleset.json").read_text()
    facts = NetworkFacts(vantage=TGT, firewall=combine(text, {}, None))
    fw = firewall_summary(facts, [80, 3306], ["198.51.100.2"])
    assert fw.read and fw.drops_icmp and fw.blocked_ports == (3306,)
    assert not fw.drops_all_inbound and not fw.blocked_sources
    blocked = firewall_summary(facts, [80], ["198.51.100.200"])  # in @blocked_src
    assert blocked.blocked_ports == (80,) and blocked.blocked_sources == ("198.51.100.200",)


def test_firewall_summary_outbound_and_hosts_deny():
    out = FirewallRule(
        (FirewallMatch("daddr", "==", ("198.19.1.10",)),), "drop", "ip daddr 198.19.1.10 drop"
    )
    chain = FirewallChain("nftables", "inet", "f", "output", (out,), "output", 0, "accept")
    deny = HostsAccessEntry(
        "/etc/hosts.deny", 3, ("sshd",), ("198.51.100.2",), "sshd: 198.51.100.2"
    )
    facts = NetworkFacts(
        vantage=TGT, firewall=FirewallFacts((chain,), ("nft",)), hosts_access=(deny,)
    )
    assert firewall_summary(facts, [22], [], ["198.19.1.10"]).drops_output
    assert not firewall_summary(facts, [22], [], ["198.19.3.20"]).drops_output
    summary = firewall_summary(facts, [22], ["198.51.100.2"])
    assert summary.denied_services == ("/etc/hosts.deny:3: sshd: 198.51.100.2",)
    assert summary.blocked_ports == () and not summary.drops_icmp
    assert firewall_summary(NetworkFacts(vantage=TGT), [22], []).read is False


def _bandwidth(rx_peak: float, tx_peak: float) -> BandwidthFacts:
    rates = Rates(tx_peak_bytes_per_s=tx_peak, rx_peak_bytes_per_s=rx_peak)
    row = InterfaceUsage("eth0", Traffic(), rates)
    return BandwidthFacts(5.0, (), (), (), (row,), Traffic(), read_at=4.0)


def test_bandwidth_facts_become_saturated_or_not():
    obs = observations_from([_probe(C1)], bandwidth=_bandwidth(1_200_000, 10_000), cap=10e6)
    assert obs.load.saturated and obs.load.inbound_flood and round(obs.load.peak_share_pct) == 96
    calm = observations_from([_probe(C1)], bandwidth=_bandwidth(100_000, 10_000), cap=10e6)
    assert calm.load.saturated is False
    unknown = observations_from([_probe(C1)], bandwidth=_bandwidth(100_000, 10_000))
    assert unknown.load.saturated is None


def test_verdict_for_on_probe_evidence_with_a_host_firewall_drop():
    rule = FirewallRule(
        (FirewallMatch("l4proto", "==", ("tcp",)), FirewallMatch("dport", "==", ("3306",))),
        "drop",
        "tcp dport 3306 drop",
    )
    fw = FirewallFacts(
        (FirewallChain("nftables", "inet", "f", "input", (rule,), "input", 0, "accept"),),
        ("nft",),
    )
    states = {80: "open", 3306: "timeout"}
    evidence = [_probe(C1, states=states), _probe(C2, states=states), _inside(fw)]
    verdict = verdict_for(evidence)
    assert verdict.node == "2.1-A.1-B" and verdict.top.id == "target_host_internal"
    outside = verdict_for(evidence[:2])
    assert outside.node == "2.1-A.1" and "target_host_internal" in [
        c.id for c in outside.causes[:2]
    ]


def test_verdict_for_a_dns_hijack_with_an_injected_page():
    dns = (
        DnsAnswer("www.shop.test", "system", "A", ("198.51.100.99",), "NOERROR"),
        DnsAnswer("www.shop.test", "203.0.113.53", "A", (T,), "NOERROR"),
    )
    hijacked = HttpResult(
        "http://www.shop.test/", 200, fingerprints=("injection.script_after_html",), body_sha256="x"
    )
    page = HttpResult("http://127.0.0.1/", 200, body_sha256="y")
    evidence = [
        _probe(C1, http=(hijacked,), dns=dns),
        _probe(C2, http=(HttpResult("http://www.shop.test/", 200, body_sha256="y"),)),
        _probe(TGT, target="127.0.0.1", http=(page,)),
    ]
    verdict = verdict_for(evidence)
    assert (verdict.node, verdict.top.id) == ("1.1-A.1-B", "local_dns_hijack")


def test_checklist_for_fills_recorded_steps_and_names_the_missing_ones():
    path = PathResult("icmp", T, 10, (Hop(1, "198.51.100.1", 10, 10, 0.0),), True)
    checklist = checklist_for([_probe(C1, received=3, paths=(path,)), _probe(C2)])
    status = {i.step: i.status for i in checklist.items}
    assert checklist.access == "public" and len(checklist.items) == 8
    assert status == {
        1: "recorded",
        2: "not_recorded",
        3: "not_recorded",
        4: "recorded",
        5: "recorded",
        6: "recorded",
        7: "not_needed",
        8: "manual",
    }
    missing = next(i for i in checklist.items if i.step == 2)
    assert missing.command.startswith(f"hostmedic probe {T}") and "--url" in missing.command
    private = checklist_for([_probe(C1)], access="private")
    assert [i.step for i in private.items] == list(range(1, 9))


def test_evidence_files_round_trip_into_the_verdict(tmp_path):
    from hostmedic.facts.probe import dump_evidence, load_evidence

    files = []
    for i, o in enumerate([_probe(C1, states={80: "refused"}), _probe(C2, states={80: "refused"})]):
        f = tmp_path / f"e{i}.json"
        f.write_text(json.dumps(dump_evidence(o)))
        files.append(load_evidence(json.loads(f.read_text())))
    assert verdict_for(files).node == "2.1-A.1"

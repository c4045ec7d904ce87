"""Observation facts: evidence documents round-trip, diagnose bundles are accepted, and the
port summary is loss-aware (one handshake proves the service; one timeout decides nothing)."""

import json

import pytest

from hostmedic.errors import ParseError
from hostmedic.facts.bundle import dump_bundle
from hostmedic.facts.network import (
    FirewallChain,
    FirewallFacts,
    FirewallMatch,
    FirewallRule,
    Listener,
    LocalConnect,
    NetworkFacts,
    PartSkipped,
    Vantage,
)
from hostmedic.facts.probe import (
    DnsAnswer,
    Hop,
    HttpHop,
    HttpResult,
    IcmpError,
    Observation,
    PathResult,
    PingResult,
    TargetName,
    TcpAttempt,
    dump_evidence,
    load_evidence,
    summarize_attempts,
)

VANTAGE = Vantage("cli", ("198.51.100.2",), "client", 1700000000.0, label="office")


def _inside() -> NetworkFacts:
    rule = FirewallRule((FirewallMatch("dport", "==", ("8080",)),), "drop", "tcp dport 8080 drop")
    return NetworkFacts(
        vantage=Vantage("srv", ("203.0.113.10",), "target", 1700000001.0),
        listeners=(Listener("tcp", "127.0.0.1", 8080, "loopback", 42, "python3"),),
        loopback=(LocalConnect("127.0.0.1", 8080, "open", 0.1),),
        firewall=FirewallFacts(
            (FirewallChain("nftables", "inet", "f", "input", (rule,), "input", 0, "accept"),),
            ("nft -j list ruleset",),
        ),
        skipped=(PartSkipped("events", "reason.not_root", "needs root"),),
        read_at=1700000002.0,
    )


def _observation() -> Observation:
    return Observation(
        vantage=VANTAGE,
        target=TargetName("www.example.test", ("203.0.113.10",), "203.0.113.10"),
        ping=PingResult(
            "203.0.113.10",
            3,
            2,
            33.3,
            1.0,
            2.0,
            3.0,
            0.8,
            (1.0, None, 3.0),
            (IcmpError("unreachable", 13, "admin_prohibited", "198.51.100.1", 1),),
            "raw",
        ),
        ports=(summarize_attempts("203.0.113.10", 80, (TcpAttempt("open", 1.5),)),),
        paths=(
            PathResult("icmp", "203.0.113.10", 10, (Hop(1, "198.51.100.1", 10, 10, 0.0),), True),
        ),
        http=(
            HttpResult(
                "http://www.example.test/",
                200,
                redirects=(HttpHop("http://x/", 302, "http://y/", "x"),),
                headers=(("server", "nginx"),),
                scripts=("inline:abc",),
            ),
        ),
        dns=(DnsAnswer("www.example.test", "system", "A", ("203.0.113.10",), "NOERROR", 1.0),),
        inside=_inside(),
        finished_at=1700000005.0,
    )


def test_evidence_round_trips_through_json():
    obs = _observation()
    text = json.dumps(dump_evidence(obs))
    assert load_evidence(json.loads(text)) == obs


def test_a_diagnose_bundle_is_evidence_of_the_inside():
    inside = _inside()
    obs = load_evidence(json.loads(json.dumps(dump_bundle({"network": inside}))))
    assert obs.inside == inside and obs.vantage.role == "target" and obs.ping is None


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"schema": "nope"},
        {"schema": "hostmedic.evidence/1", "observation": {"vantage": 3}},
        {"schema": "hostmedic.facts/1", "facts": {}},
        {"schema": "hostmedic.evidence/1"},
    ],
)
def test_bad_evidence_is_a_parse_error(document):
    with pytest.raises(ParseError):
        load_evidence(document)


@pytest.mark.parametrize(
    ("outcomes", "state", "loss"),
    [
        (("timeout", "open", "timeout"), "open", 66.7),
        (("timeout", "refused", "timeout"), "refused", 66.7),
        (("timeout", "unreachable"), "unreachable", 50.0),
        (("timeout", "timeout", "timeout"), "timeout", 100.0),
        (("error",), "error", 0.0),
        ((), "error", 0.0),
    ],
)
def test_port_summary_is_loss_aware(outcomes, state, loss):
    attempts = tuple(TcpAttempt(o, 1.0 if o == "open" else None) for o in outcomes)
    result = summarize_attempts("203.0.113.10", 80, attempts)
    assert (result.state, result.loss_pct) == (state, loss)

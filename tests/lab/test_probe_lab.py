"""The reachability runbook end to end: the real CLI in lab namespaces against real servers.

One lab per module (client ─ router ─ target, tests/lab/probelab.py). Each test plants one
fault (or none), runs ``hostmedic probe`` in the client namespace and/or ``hostmedic
diagnose --only network`` in the target namespace, and asserts the observations and
findings; every planted fault has a healthy counterpart that must raise nothing.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab.netlab import sweep_stale
from tests.lab.probelab import HIJACKED, NAME, ROUTER_C4, ROUTER_C6, TARGET4, TARGET6, ProbeLab

pytestmark = pytest.mark.lab
NEEDED = ("nginx", "dnsmasq", "nft", "setpriv", "openssl")


@pytest.fixture(scope="module")
def plab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProbeLab]:
    missing = [tool for tool in NEEDED if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"lab needs {', '.join(missing)}")
    sweep_stale("hmP-")
    lab = ProbeLab()
    try:
        lab.build()
        lab.start_servers(tmp_path_factory.mktemp("probe-lab"))
        yield lab
    finally:
        lab.destroy()


@pytest.fixture
def lab(plab: ProbeLab) -> Iterator[ProbeLab]:
    """The module's lab, with no fault planted before and after each test."""
    for ns in (plab.router, plab.target, plab.client):
        plab.clear_nft(ns)
    plab.set_resolver(TARGET4)
    yield plab
    for ns in (plab.router, plab.target, plab.client):
        plab.clear_nft(ns)
    plab.set_resolver(TARGET4)


def probe(lab: ProbeLab, *args: str, user: str | None = None) -> tuple[int, dict]:
    done = lab.hostmedic_in(lab.client, "probe", *args, "--json", "--timeout", "1", user=user)
    assert done.returncode in (0, 1, 2), done.stderr
    return done.returncode, json.loads(done.stdout)


def ports(doc: dict) -> dict[int, dict]:
    return {p["port"]: p for p in doc["observation"]["ports"]}


def diagnose(lab: ProbeLab, save: Path | None = None) -> dict:
    extra = ["--save", str(save)] if save else []
    done = lab.hostmedic_in(lab.target, "diagnose", "--only", "network", "--json", *extra)
    assert done.returncode in (0, 1, 2), done.stderr
    return json.loads(done.stdout)


def failed(doc: dict, rule_id: str) -> list[dict]:
    return [f for f in doc["findings"] if f["rule_id"] == rule_id and f["status"] == "failed"]


def test_healthy_target_is_reachable_by_name(lab: ProbeLab) -> None:
    code, doc = probe(
        lab,
        NAME,
        "--port",
        "80",
        "--url",
        f"http://{NAME}/",
        "--resolver",
        TARGET4,
        "--path",
        "--cycles",
        "3",
        "--interval",
        "0.3",
    )
    obs = doc["observation"]
    assert code == 0 and doc["status"] == "reachable", doc["problems"]
    assert obs["target"]["address"] == TARGET4
    assert obs["ping"]["received"] == obs["ping"]["sent"] == 5
    assert ports(doc)[80]["state"] == "open"
    page = obs["http"][0]
    assert (page["status"], page["title"], page["fingerprints"]) == (200, "Lab site", [])
    assert "/app.js" in page["scripts"]
    assert doc["comparisons"]["dns"] == []
    hops = obs["paths"][0]["hops"]
    assert [h["address"] for h in hops] == [ROUTER_C4, TARGET4] and hops[-1]["reached"]
    inside = diagnose(lab)
    assert [
        f["rule_id"]
        for f in inside["findings"]
        if f["status"] == "failed" and f["severity"] != "info"
    ] == []


def test_ipv6_ping_ports_and_path(lab: ProbeLab) -> None:
    code, doc = probe(
        lab,
        TARGET6,
        "-6",
        "--port",
        "80",
        "--url",
        f"http://[{TARGET6}]/",
        "--path",
        "--cycles",
        "2",
        "--interval",
        "0.3",
    )
    obs = doc["observation"]
    assert code == 0, doc["problems"]
    assert obs["ping"]["received"] == 5 and ports(doc)[80]["state"] == "open"
    assert obs["http"][0]["title"] == "Lab site"
    assert [h["address"] for h in obs["paths"][0]["hops"]] == [ROUTER_C6, TARGET6]


def test_target_firewall_dropping_ping_and_one_port(lab: ProbeLab, tmp_path: Path) -> None:
    lab.nft(
        lab.target,
        """table inet hostfw {
  chain input { type filter hook input priority 0; policy accept;
    icmp type echo-request drop
    tcp dport 9001 drop
  }
}""",
    )
    code, doc = probe(
        lab, TARGET4, "--port", "80", "--port", "9001", "--save", str(tmp_path / "client.json")
    )
    assert code == 1 and doc["observation"]["ping"]["received"] == 0
    assert ports(doc)[80]["state"] == "open" and ports(doc)[9001]["state"] == "timeout"
    inside = diagnose(lab, tmp_path / "inside.json")
    icmp = failed(inside, "network.firewall_icmp")
    assert icmp and icmp[0]["severity"] == "warning"
    assert "icmp_type echo-request drop" in icmp[0]["evidence"][0]["excerpt"]
    port = failed(inside, "network.firewall_ports")
    assert [(f["params"]["port"], f["params"]["verdict"]) for f in port] == [(9001, "drop")]
    assert "nginx" in port[0]["evidence"][0]["excerpt"]
    # the inside evidence merges with the client's: the same port, seen from both sides
    done = lab.hostmedic_in(
        lab.client,
        "probe",
        TARGET4,
        "--offline",
        "--json",
        "--evidence",
        str(tmp_path / "client.json"),
        "--evidence",
        str(tmp_path / "inside.json"),
    )
    merged = json.loads(done.stdout)
    assert done.returncode == 1
    inside_obs = merged["evidence"][1]["observation"]
    assert inside_obs["vantage"]["role"] == "target"
    assert {(li["port"], li["process"]) for li in inside_obs["inside"]["listeners"]} >= {
        (80, "nginx"),
        (9001, "nginx"),
    }


def test_service_bound_to_loopback_only(lab: ProbeLab) -> None:
    server = lab.page_server(lab.target, "127.0.0.1", 8080)
    try:
        code, doc = probe(lab, TARGET4, "--port", "8080")
        inside = diagnose(lab)
    finally:
        lab.kill(server)
    assert code == 1 and ports(doc)[8080]["state"] == "refused"  # ping works, the port not
    local = failed(inside, "network.loopback_only")
    assert [(f["params"]["port"], f["params"]["address"], f["severity"]) for f in local] == [
        (8080, "127.0.0.1", "warning")
    ]
    assert not failed(inside, "network.loopback_test")  # it works from inside: the 1-A.1-B case


def test_packet_loss_on_the_router(lab: ProbeLab) -> None:
    lab.loss(20)
    # an attempt fails when its SYN or the SYN-ACK is lost (1 - 0.8² = 36 %): all of 5
    # attempts failed once in ~170 runs (0.6 %), all of 10 fail in ~27,000
    code, doc = probe(
        lab,
        TARGET4,
        "--port",
        "80",
        "--attempts",
        "10",
        "--count",
        "30",
        "--path",
        "--cycles",
        "10",
        "--interval",
        "0.2",
    )
    obs = doc["observation"]
    assert code == 1
    assert 0 < obs["ping"]["received"] < obs["ping"]["sent"]
    assert ports(doc)[80]["state"] == "open"  # loss-aware: lost SYNs do not close the port
    hop1, hop2 = obs["paths"][0]["hops"]
    assert hop1["loss_pct"] == 0 and hop2["loss_pct"] > 0 and hop2["address"] == TARGET4


def test_dns_hijack_is_seen_against_a_trusted_resolver(lab: ProbeLab, tmp_path: Path) -> None:
    hijacker = lab.dnsmasq(lab.router, ROUTER_C4, HIJACKED, tmp_path / "hijack.pid")
    try:
        lab.wait_listening(lab.router, 53, udp=True)
        lab.set_resolver(ROUTER_C4)
        code, doc = probe(lab, NAME, "--resolver", TARGET4, "--no-ping")
    finally:
        lab.kill(hijacker)
    assert doc["observation"]["target"]["address"] == HIJACKED
    assert code == 1
    assert [(d["name"], d["system"], d["answers"]) for d in doc["comparisons"]["dns"]] == [
        (NAME, [HIJACKED], [TARGET4])
    ]


def test_block_pages_and_redirects_are_fingerprinted(lab: ProbeLab) -> None:
    code, doc = probe(
        lab,
        TARGET4,
        "--no-ping",
        "--url",
        f"http://{TARGET4}/old",
        "--url",
        f"http://{TARGET4}:8088/waf",
        "--url",
        f"http://{TARGET4}:8088/inject",
    )
    icp, waf, inject = doc["observation"]["http"]
    assert code == 2
    assert [(h["status"], h["location"]) for h in icp["redirects"]] == [
        (302, f"http://{TARGET4}:8088/beian")
    ]
    assert (icp["status"], icp["fingerprints"]) == (403, ["icp.aliyun"])
    assert (waf["status"], waf["fingerprints"]) == (405, ["waf.aliyun"])
    assert inject["fingerprints"] == ["injection.script_after_html"]
    assert doc["fingerprints"]["icp.aliyun"]["kind"] == "icp_filing"
    code, doc = probe(lab, TARGET4, "--no-ping", "--url", f"https://{TARGET4}/")
    (tls,) = doc["observation"]["http"]
    assert (tls["status"], tls["title"], tls["tls_verified"]) == (200, "Lab site", False)


def test_unprivileged_probe_uses_ping_sockets_and_tcp_path(lab: ProbeLab) -> None:
    lab.exec(lab.client, ["sysctl", "-q", "-w", "net.ipv4.ping_group_range=65534 65534"])
    try:
        code, doc = probe(
            lab,
            TARGET4,
            "--port",
            "80",
            "--path",
            "--path-mode",
            "tcp",
            "--cycles",
            "2",
            "--interval",
            "0.3",
            user="65534",
        )
    finally:
        lab.exec(lab.client, ["sysctl", "-q", "-w", "net.ipv4.ping_group_range=1 0"])
    obs = doc["observation"]
    assert code == 0 and obs["ping"]["method"] == "dgram" and obs["ping"]["received"] == 5
    assert obs["paths"][0]["mode"] == "tcp" and obs["paths"][0]["reached"]
    code, doc = probe(lab, TARGET4, "--port", "80", user="65534")
    assert doc["observation"]["ping"]["sent"] == 0 and doc["observation"]["ping"]["error"]
    assert code == 0  # no ping at all is not a failed ping

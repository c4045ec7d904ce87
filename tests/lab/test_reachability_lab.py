"""Seed 004's "cannot reach the server" causes, planted one by one in a real network.

One lab (tests/lab/faultlab.py) per module; each test plants one fault, runs the real CLI
from the vantages that matter (``ip netns exec … hostmedic probe … --save``), inside the
target (``hostmedic diagnose --only network --save``), then ``hostmedic probe --offline
--evidence …`` twice: with the outside evidence only, and with the evidence that
separates the cause merged. The bars of issue 4: merged → the cause is ranked first (and
the walk ends at the seed node named); outside → the cause is within the first two.
Console-only causes get their separating evidence as a ``--console`` answer.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.lab.faultlab import (
    C2,
    GW_T,
    OTHER_SITE,
    P2,
    SITE,
    T_VPC,
    VIP,
    FaultLab,
    LabError,
    T,
    sweep_stale,
)

pytestmark = pytest.mark.lab

PORTS = ("--port", "80", "--port", "3306", "--port", "22")
FAST = ("--count", "5", "--attempts", "2", "--timeout", "1.5")
PATH = ("--path", "--cycles", "3", "--interval", "0.1", "--max-ttl", "6")
URL = f"http://{SITE}/"
BARS: dict[str, dict[str, object]] = {}


TOOLS = ("nft", "nginx", "dnsmasq", "python3")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultLab]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"the reachability lab needs {', '.join(missing)}")
    sweep_stale()
    built = FaultLab(tmp_path_factory.mktemp("faultlab"))

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)  # teardown even on a CI timeout
    try:
        built.build()
        yield built
    finally:
        signal.signal(signal.SIGTERM, previous)
        built.destroy()
        if BARS:
            print("\nreachability lab bars:\n" + json.dumps(BARS, indent=1))


@pytest.fixture
def world(lab: FaultLab) -> Iterator[FaultLab]:
    lab.clear()
    yield lab
    lab.clear()


@dataclass
class Probe:
    """One hostmedic run inside a namespace that writes an evidence file."""

    name: str
    ns: str
    args: Sequence[str]
    proc: subprocess.Popen[str] | None = field(default=None, repr=False)


def run_all(lab: FaultLab, tmp: Path, probes: Sequence[Probe]) -> dict[str, Path]:
    """Start every probe at once, wait for all; the evidence file of each by name."""
    files = {p.name: tmp / f"{p.name}.json" for p in probes}
    for p in probes:
        p.proc = lab.start_hostmedic(p.ns, [*p.args, "--save", str(files[p.name])])
    for p in probes:
        assert p.proc is not None
        _, err = p.proc.communicate(timeout=120)
        if p.proc.returncode not in (0, 1, 2):
            raise LabError(f"{p.name}: exit {p.proc.returncode}\n{err[-2000:]}")
    return files


def probe(name: str, ns: str, target: str, *args: str, vantage: str = "client") -> Probe:
    return Probe(name, ns, ["probe", target, *FAST, *args, "--vantage", vantage, "--label", name])


def inside(name: str = "inside", ns: str = "tgt", *extra: str) -> Probe:
    return Probe(name, ns, ["diagnose", "--only", "network", *extra])


def page_inside(path: str = "/") -> Probe:
    url = f"http://127.0.0.1{path}"
    return Probe("page", "tgt", ["probe", "127.0.0.1", "--no-ping", "--url", url,
                                 "--vantage", "target", "--label", "target"])  # fmt: skip


def check(
    lab: FaultLab,
    cause: str,
    node: str,
    target: str,
    outside: Sequence[Path],
    merged: Sequence[Path] = (),
    merged_args: Sequence[str] = (),
    outside_args: Sequence[str] = (),
    label: str = "",
) -> dict:
    """Both verdicts; the bars asserted; the merged verdict returned."""
    out = lab.verdict(target, outside, *outside_args)
    full = lab.verdict(target, [*outside, *merged], *outside_args, *merged_args)
    ids_out = [c["id"] for c in out["causes"]]
    ids_full = [c["id"] for c in full["causes"]]
    BARS[label or cause] = {
        "node_merged": full["node"],
        "top1_merged": ids_full[0],
        "node_outside": out["node"],
        "rank_outside": ids_out.index(cause) + 1 if cause in ids_out else None,
    }
    assert full["node"] == node, (full["node"], [(s["node"], s["answer"]) for s in full["path"]])
    assert ids_full[0] == cause, [(c["id"], c["score"]) for c in full["causes"]]
    assert cause in ids_out[:2], (out["node"], [(c["id"], c["score"]) for c in out["causes"]])
    return full


def test_healthy_has_no_cause(world: FaultLab, tmp_path: Path) -> None:
    f = run_all(world, tmp_path, [
        probe("client1", "c1", T, *PORTS, "--url", URL),
        probe("client2", "c2", T, *PORTS, "--url", URL),
        inside(),
    ])  # fmt: skip
    verdict = check(world, "none", "0", T, [f["client1"], f["client2"]], [f["inside"]])
    assert len(verdict["causes"]) == 1


def _public_port_fault(
    world: FaultLab, tmp_path: Path, cause: str, node: str, label: str = ""
) -> dict:
    f = run_all(world, tmp_path, [
        probe("client1", "c1", T, *PORTS), probe("client2", "c2", T, *PORTS), inside(),
    ])  # fmt: skip
    return check(world, cause, node, T, [f["client1"], f["client2"]], [f["inside"]], label=label)


def test_service_down(world: FaultLab, tmp_path: Path) -> None:
    world.stop_db()
    verdict = _public_port_fault(world, tmp_path, "service_down", "2.1-A.1-A")
    assert any(r["key"].endswith("no_listener") for r in verdict["causes"][0]["for"])


def test_service_bound_to_loopback(world: FaultLab, tmp_path: Path) -> None:
    world.db_on_loopback()
    verdict = _public_port_fault(
        world, tmp_path, "service_down", "2.1-A.1-A", "service_down (bound to 127.0.0.1)"
    )
    assert any(r["key"].endswith("listener_loopback_only") for r in verdict["causes"][0]["for"])


def test_target_host_firewall(world: FaultLab, tmp_path: Path) -> None:
    world.filter("tgt", "input", 'iifname "lo" accept', "tcp dport 3306 drop")
    _public_port_fault(world, tmp_path, "target_host_internal", "2.1-A.1-B")


def test_target_security_group(world: FaultLab, tmp_path: Path) -> None:
    world.filter("edge", "forward", 'oifname "tgt" tcp dport 3306 drop')
    _public_port_fault(world, tmp_path, "target_security_group", "2.1-A.1-B")


def test_anti_ddos_blackhole(world: FaultLab, tmp_path: Path) -> None:
    world.filter("edge", "forward", f"ip daddr {T} drop")
    f = run_all(world, tmp_path, [
        probe("client1", "c1", T, *PORTS), probe("client2", "c2", T, *PORTS),
        probe("peer1", "p1", T_VPC, *PORTS, vantage="peer"), inside(),
    ])  # fmt: skip
    outside = [f["client1"], f["client2"], f["peer1"]]
    check(world, "ddos_waf_interception", "2.1-A.1-B", T, outside, [f["inside"]])


def test_waf_block_page(world: FaultLab, tmp_path: Path) -> None:
    world.proxy("edge", 8082, "^/admin=waf")
    world.redirect("edge", f'iifname {{ "isp", "c2" }} ip daddr {T} tcp dport 80', 8082)
    url = URL + "admin"
    f = run_all(world, tmp_path, [
        probe("client1", "c1", T, "--url", url), probe("client2", "c2", T, "--url", url),
        page_inside("/admin"),
    ])  # fmt: skip
    check(world, "ddos_waf_interception", "1.1-B.1-A.1-B", T, [f["client1"], f["client2"]],
          [f["page"]], label="ddos_waf_interception (WAF page)")  # fmt: skip


def _cut_off(world: FaultLab) -> None:
    """The instance gone from the network (stopped / shut down): nothing in or out."""
    world.chains("edge", {
        "forward": ['iifname "tgt" drop', 'oifname "tgt" drop'],
        "input": ['iifname "tgt" drop'],
    })  # fmt: skip


def _cut_off_probes() -> list[Probe]:
    return [
        probe("client1", "c1", T, *PORTS), probe("client2", "c2", T, *PORTS),
        probe("peer1", "p1", T_VPC, *PORTS, vantage="peer"),
    ]  # fmt: skip


FLOOD = (
    "import socket,time\n"
    "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
    "end=time.time()+8\n"
    "while time.time()<end:\n"
    "    for i in range(1,61):\n"
    "        s.sendto(b'x'*32,('198.18.100.%d'%i,9))\n"
    "    time.sleep(0.02)\n"
)


def test_cloud_shield_shuts_down_a_zombie(world: FaultLab, tmp_path: Path) -> None:
    _cut_off(world)
    world.spawn("test-flood", "tgt", ["python3", "-c", FLOOD])
    time.sleep(0.5)
    bundle = Probe("bandwidth", "tgt", ["diagnose", "--only", "bandwidth", "--only", "network",
                                        "--duration", "3", "--no-tracer"])  # fmt: skip
    f = run_all(world, tmp_path, [*_cut_off_probes(), bundle])
    outside = [f["client1"], f["client2"], f["peer1"]]
    verdict = check(world, "cloud_shield_zombie_shutdown", "2.1-A.1-B", T, outside,
                    [f["bandwidth"]])  # fmt: skip
    assert any(r["key"].endswith("outbound_flood") for r in verdict["causes"][0]["for"])


def test_stopped_for_arrears(world: FaultLab, tmp_path: Path) -> None:
    _cut_off(world)
    f = run_all(world, tmp_path, _cut_off_probes())
    outside = [f["client1"], f["client2"], f["peer1"]]
    verdict = check(world, "target_arrears_stopped", "2.1-A.1", T, outside,
                    merged_args=["--console", "instance_state=stopped_arrears"])  # fmt: skip
    assert verdict["complete"] is False  # nobody can run the inside test on a stopped instance
    plain = world.verdict(T, outside)
    top2 = {c["id"] for c in plain["causes"][:2]}
    assert top2 == {"target_arrears_stopped", "cloud_shield_zombie_shutdown"}
    assert all(c["console_only"] for c in plain["causes"][:2])


def _block_page_test(world: FaultLab, tmp_path: Path, cause: str, rule: str, path: str) -> None:
    world.proxy("edge", 8082, rule)
    world.redirect("edge", f'iifname {{ "isp", "c2" }} ip daddr {T} tcp dport 80', 8082)
    f = run_all(world, tmp_path, [
        probe("client1", "c1", T, "--url", URL + path[1:], "--url", f"http://{T}{path}"),
        probe("client2", "c2", T, "--url", URL + path[1:]),
        page_inside(path),
    ])  # fmt: skip
    check(world, cause, "1.1-B.1-A.1-B", T, [f["client1"], f["client2"]], [f["page"]])


def test_green_net_block(world: FaultLab, tmp_path: Path) -> None:
    _block_page_test(world, tmp_path, "green_net_block", "^/news=green", "/news")


def test_icp_filing(world: FaultLab, tmp_path: Path) -> None:
    _block_page_test(world, tmp_path, "icp_filing", ".*=icp", "/")


def test_local_dns_hijack(world: FaultLab, tmp_path: Path) -> None:
    world.hijack_dns()
    f = run_all(world, tmp_path, [
        probe("client1", "c1", T, "--url", URL, "--resolver", "203.0.113.53"),
        probe("client2", "c2", T, "--url", URL),
        page_inside(),
    ])  # fmt: skip
    check(world, "local_dns_hijack", "1.1-A.1-B", T, [f["client1"], f["client2"]], [f["page"]])


def test_isp_injects_into_http(world: FaultLab, tmp_path: Path) -> None:
    world.proxy("isp", 8081, ".*=inject")
    world.redirect("isp", f'iifname "c1" ip daddr {T} tcp dport 80', 8081)
    f = run_all(world, tmp_path, [
        probe("client1", "c1", T, "--url", URL, "--resolver", "203.0.113.53"),
        probe("client2", "c2", T, "--url", URL),
        page_inside(),
    ])  # fmt: skip
    check(world, "isp_policy", "1.1-A.1-B", T, [f["client1"], f["client2"]], [f["page"]],
          label="isp_policy (HTTP injection)")  # fmt: skip


def test_isp_blocks_a_port(world: FaultLab, tmp_path: Path) -> None:
    world.filter("isp", "forward", f"ip daddr {T} tcp dport 3306 drop")
    trace = ("--path", "--path-mode", "both", "--path-port", "3306", *PATH[1:])
    f = run_all(world, tmp_path, [
        probe("client1", "c1", T, *PORTS, *trace), probe("client2", "c2", T, *PORTS), inside(),
    ])  # fmt: skip
    check(world, "isp_policy", "3.1-B.1-B", T, [f["client1"], f["client2"]], [f["inside"]])


def test_lb_whitelist(world: FaultLab, tmp_path: Path) -> None:
    world.filter("edge", "prerouting", f"ip daddr {VIP} tcp dport 80 ip saddr != {C2} drop",
                 priority="-150")  # fmt: skip
    lb_ports = ("--port", "80", "--port", "3306")
    trace = ("--path", "--path-mode", "both", "--path-port", "80", *PATH[1:])
    f = run_all(world, tmp_path, [
        probe("client1", "c1", VIP, *lb_ports, *trace), probe("client2", "c2", VIP, *lb_ports),
        inside(),
    ])  # fmt: skip
    check(world, "lb_whitelist", "3.1-B.1-A", VIP, [f["client1"], f["client2"]], [f["inside"]])


def test_app_source_acl(world: FaultLab, tmp_path: Path) -> None:
    world.set_nginx_acl("deny 198.51.100.2;\n")
    f = run_all(world, tmp_path, [
        probe("client1", "c1", T, *PORTS, "--url", URL),
        probe("client2", "c2", T, *PORTS, "--url", URL),
        page_inside(),
    ])  # fmt: skip
    check(world, "app_source_acl", "3.1-B.1-A", T, [f["client1"], f["client2"]], [f["page"]])


def test_client_local_network(world: FaultLab, tmp_path: Path) -> None:
    world.filter("isp", "prerouting", 'iifname "c1" drop', priority="-300")
    f = run_all(world, tmp_path, [
        probe("client1", "c1", T, *PORTS, *PATH),
        probe("client1-other", "c1", OTHER_SITE, "--port", "80"),
        probe("client2", "c2", T, *PORTS),
    ])  # fmt: skip
    check(world, "client_local_network", "3.1-A", T, [f["client1"], f["client2"]],
          [f["client1-other"]])  # fmt: skip


def test_cloud_shield_blocks_the_source(world: FaultLab, tmp_path: Path) -> None:
    world.filter("edge", "forward", f"ip saddr 198.51.100.2 ip daddr {T} drop")
    f = run_all(world, tmp_path, [
        probe("client1", "c1", T, *PORTS, *PATH), probe("client2", "c2", T, *PORTS),
    ])  # fmt: skip
    check(world, "cloud_shield_source_blocked", "3.1-A", T, [f["client1"], f["client2"]],
          merged_args=["--console", "shield_blocks_source=yes"])  # fmt: skip


def test_path_loss(world: FaultLab, tmp_path: Path) -> None:
    world.filter("edge", "forward", 'iifname "isp" numgen random mod 100 < 30 drop')
    lossy = ("--count", "20", "--path", "--cycles", "12", "--interval", "0.1", "--max-ttl", "6")
    f = run_all(world, tmp_path, [
        probe("client1", "c1", T, *PORTS, *lossy), probe("client2", "c2", T, *PORTS), inside(),
    ])  # fmt: skip
    check(world, "path_loss", "3.1-A", T, [f["client1"], f["client2"]], [f["inside"]])


PEAK = (
    "import socket,time\n"
    "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
    "start=time.time(); n=0\n"
    "while time.time()-start<15:\n"
    f"    s.sendto(b'x'*1372,('{T_VPC}',9)); n+=1\n"
    "    time.sleep(max(0.0, start+n/300-time.time()))\n"
)


def test_bandwidth_saturated(world: FaultLab, tmp_path: Path) -> None:
    world.filter("edge", "forward", 'oifname "tgt" numgen random mod 100 < 30 drop')
    # A business peak: 3.3 Mbit/s of UDP from peer1 toward a target whose cap is 2 Mbit/s;
    # the full queue is played by a random 30 % drop of everything toward the target (no
    # netem here), so pings from every network lose packets while the target's own
    # counters show the link at its cap.
    world.spawn("test-load", "p1", ["python3", "-c", PEAK])
    time.sleep(1.0)
    bundle = Probe("bandwidth", "tgt", ["diagnose", "--only", "bandwidth", "--only", "network",
                                        "--duration", "3", "--no-tracer", "--cap", "2Mbit"])  # fmt: skip
    f = run_all(world, tmp_path, [
        probe("client1", "c1", T, *PORTS, "--count", "20"),
        probe("client2", "c2", T, *PORTS, "--count", "20"),
        bundle,
    ])  # fmt: skip
    check(world, "bandwidth_saturated", "2.1-A.1-B", T, [f["client1"], f["client2"]],
          [f["bandwidth"]], merged_args=["--cap", "2Mbit"])  # fmt: skip


def test_source_security_group(world: FaultLab, tmp_path: Path) -> None:
    world.filter("edge", "forward", 'iifname "p1" drop')
    f = run_all(world, tmp_path, [
        probe("peer1", "p1", T_VPC, *PORTS, *PATH, vantage="peer"),
        probe("peer1-peer2", "p1", P2, "--port", "22", vantage="peer"),
        probe("peer1-gw", "p1", GW_T, vantage="peer"),
        probe("peer2", "p2", T_VPC, *PORTS, vantage="peer"),
        inside(), inside("source", "p1"),
    ])  # fmt: skip
    outside = [f["peer1"], f["peer2"], f["peer1-peer2"], f["peer1-gw"]]
    check(world, "source_security_group", "1-B.1-B.1-B.1-A", T_VPC, outside,
          [f["inside"], f["source"]])  # fmt: skip


def test_source_host_firewall(world: FaultLab, tmp_path: Path) -> None:
    world.filter("p1", "output", f"ip daddr {T_VPC} drop")
    f = run_all(world, tmp_path, [
        probe("peer1", "p1", T_VPC, *PORTS, *PATH, vantage="peer"),
        probe("peer2", "p2", T_VPC, *PORTS, vantage="peer"),
        inside("source", "p1"),
    ])  # fmt: skip
    check(world, "source_host_internal", "1-B.1-B.1-A", T_VPC, [f["peer1"], f["peer2"]],
          [f["source"]])  # fmt: skip

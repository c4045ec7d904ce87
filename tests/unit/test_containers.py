"""Containers, purely: rtnetlink links and nsids (recorded), which namespace is attached to
the host and how, the container name from cgroup paths, and which host interfaces each
flow crossed (collectors/rtnetlink.py, netns.py, containers.py; analysis/crossings.py)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hostmedic.analysis.accounting import Ledger
from hostmedic.analysis.crossings import Attachment, HostView, crossings
from hostmedic.analysis.routes import RouteTable
from hostmedic.collectors.containers import attachments
from hostmedic.collectors.netdev import InterfaceCounters, ip_level
from hostmedic.collectors.netns import (
    NetnsView,
    container_of,
    parse_ns_link,
    scan_namespaces,
)
from hostmedic.collectors.rtnetlink import parse_links, parse_nsid
from hostmedic.errors import ParseError
from hostmedic.facts.bandwidth import FlowKey, Traffic

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rtnetlink"
HOST_NS, CTR_NS, OTHER_NS = 4026531840, 4026532001, 4026532002
ID = "3f2a1b4c5d6e" + "0" * 52


def _links(name: str):
    links, done = parse_links((FIXTURES / name).read_bytes())
    assert done
    return links


def _view(links_file: str, own_nsid: int | None = None) -> NetnsView:
    return NetnsView(RouteTable([]), {}, tuple(_links(links_file)), {}, own_nsid)


# -- rtnetlink ------------------------------------------------------------------------------


def test_recorded_links_show_the_bridge_and_both_veth_ends() -> None:
    host = {link.name: link for link in _links("links-host.bin")}
    assert (host["br0"].kind, host["ctr0"].kind, host["ctr0"].master) == ("bridge", "veth", 2)
    assert (host["ctr0"].peer_index, host["ctr0"].peer_nsid) == (2, 0)
    (eth0,) = [link for link in _links("links-ctr.bin") if link.name == "eth0"]
    assert (eth0.peer_index, eth0.peer_nsid) == (host["ctr0"].index, 0)
    assert parse_nsid((FIXTURES / "nsid-ctr.bin").read_bytes()) == 0


@given(st.binary(max_size=300))
def test_hostile_rtnetlink_replies_parse_or_raise(data: bytes) -> None:
    with contextlib.suppress(ParseError, OSError):
        parse_links(data)
    with pytest.raises((ParseError, OSError)):
        parse_nsid(data[:3])


def test_the_container_end_names_its_host_end_and_bridge() -> None:
    own = _view("links-host.bin")
    assert attachments(_view("links-ctr.bin", own_nsid=0), own) == {
        "eth0": Attachment("ctr0", "veth", "br0")
    }
    # no id for the host's namespace there, or another one: not attached to this host
    assert attachments(_view("links-ctr.bin"), own) == {}
    assert attachments(_view("links-ctr.bin", own_nsid=5), own) == {}


# -- namespaces and container names -----------------------------------------------------------


def test_namespace_links_and_scan(tmp_path: Path) -> None:
    assert parse_ns_link("net:[4026531840]") == 4026531840
    with pytest.raises(ParseError):
        parse_ns_link("mnt:[4026531840]")
    proc = tmp_path / "proc"
    for pid, inode in ((1, HOST_NS), (42, CTR_NS), (43, CTR_NS)):
        (proc / str(pid) / "ns").mkdir(parents=True)
        os.symlink(f"net:[{inode}]", proc / str(pid) / "ns" / "net")
    (proc / "self").mkdir()
    (tmp_path / "netns").mkdir()
    (tmp_path / "netns" / "lab").write_text("")
    named = os.stat(tmp_path / "netns" / "lab").st_ino
    refs = {r.inode: r for r in scan_namespaces(str(proc), str(tmp_path / "netns"))}
    assert refs[CTR_NS].pids == (42, 43) and refs[CTR_NS].path == f"{proc}/42/ns/net"
    assert refs[named].name == "lab" and refs[named].path == f"{tmp_path}/netns/lab"
    assert refs[named].pids == ()


@pytest.mark.parametrize(
    ("cgroup", "expected"),
    [
        (f"0::/system.slice/docker-{ID}.scope\n", ("docker", "3f2a1b4c5d6e")),
        (f"12:memory:/docker/{ID}\n1:name=systemd:/docker/{ID}\n", ("docker", "3f2a1b4c5d6e")),
        (f"0::/machine.slice/libpod-{ID}.scope/container\n", ("podman", "3f2a1b4c5d6e")),
        (
            "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podab12.slice/"
            f"cri-containerd-{ID}.scope\n",
            ("containerd", "3f2a1b4c5d6e"),
        ),
        (f"0::/kubepods/besteffort/podab12/{ID}\n", ("kubernetes", "3f2a1b4c5d6e")),
        (f"0::/system.slice/crio-{ID}.scope\n", ("cri-o", "3f2a1b4c5d6e")),
        ("0::/machine.slice/machine-web\\x2d1.scope/payload\n", ("nspawn", "web-1")),
        ("0::/machine.slice/systemd-nspawn@db.service/payload\n", ("nspawn", "db")),
        ("0::/lxc.payload.build/init.scope\n", ("lxc", "build")),
        ("12:memory:/lxc/build\n", ("lxc", "build")),
    ],
)
def test_container_names_from_cgroup_paths(cgroup: str, expected: tuple[str, str]) -> None:
    assert container_of(cgroup, "ignored", CTR_NS)[:2] == expected


def test_without_a_container_cgroup_the_namespace_names_itself() -> None:
    assert container_of("0::/\n", "lab-ctr", CTR_NS) == ("netns", "lab-ctr", None)
    assert container_of("0::/user.slice/session-3.scope\n", None, CTR_NS)[:2] == (
        "netns", str(CTR_NS),
    )  # fmt: skip
    assert container_of(None, None, CTR_NS) == ("netns", str(CTR_NS), None)


# -- which host interfaces each flow crossed ---------------------------------------------------

CTR_IP, CTR2_IP, HOST_BR_IP, REMOTE = "172.17.0.2", "172.17.0.3", "172.17.0.1", "198.51.100.7"
HOST = HostView(
    HOST_NS,
    frozenset({HOST_BR_IP, "203.0.113.10"}),
    {CTR_IP: "veth1", CTR2_IP: "veth2", "10.9.0.2": "veth9", "192.168.5.2": "eth0"},
    {
        "veth1": Attachment("veth1", "veth", "docker0"),
        "veth2": Attachment("veth2", "veth", "docker0"),
        "veth9": Attachment("veth9", "veth", "br9"),
        "eth0": Attachment("eth0", "macvlan"),
    },
    lambda ip: {CTR_IP: "docker0", CTR2_IP: "docker0"}.get(ip, "eth0"),
)
T = Traffic(tx_bytes=1000, rx_bytes=50, tx_packets=10, rx_packets=2)
BACK = Traffic(tx_bytes=50, rx_bytes=1000, tx_packets=2, rx_packets=10)


def key(netns: int, remote: str, interface: str | None) -> FlowKey:
    return FlowKey(7, netns, "tcp", "0.0.0.0", 1, remote, 2, interface)


def test_a_container_flow_to_the_world_crosses_its_veth_bridge_and_uplink() -> None:
    assert crossings([(key(CTR_NS, REMOTE, "veth1"), T)], HOST) == {
        "veth1": BACK, "docker0": BACK, "eth0": T,
    }  # fmt: skip


def test_the_host_flow_through_a_bridge_also_crosses_the_containers_port() -> None:
    assert crossings([(key(HOST_NS, CTR_IP, "docker0"), T)], HOST) == {"docker0": T, "veth1": T}
    assert crossings([(key(HOST_NS, REMOTE, "eth0"), T)], HOST) == {"eth0": T}


def test_flows_between_host_and_containers_are_counted_once_per_interface() -> None:
    # the container's side of a host<->container conversation: the host socket explains it
    assert crossings([(key(CTR_NS, HOST_BR_IP, "veth1"), T)], HOST) == {}
    # two containers on one bridge: each one's own port, nothing else
    assert crossings([(key(CTR_NS, CTR2_IP, "veth1"), T)], HOST) == {"veth1": BACK}
    # on different bridges, routed by the host: also out of its own bridge
    assert crossings([(key(CTR_NS, "10.9.0.2", "veth1"), T)], HOST) == {
        "veth1": BACK, "docker0": BACK,
    }  # fmt: skip


def test_macvlan_and_unattached_containers() -> None:
    assert crossings([(key(CTR_NS, REMOTE, "eth0"), T)], HOST) == {"eth0": T}
    assert crossings([(key(OTHER_NS, REMOTE, None), T)], HOST) == {}


def test_the_ledger_takes_explained_traffic_per_interface() -> None:
    ledger = Ledger(0.0)
    flow = (key(CTR_NS, REMOTE, "veth1"), T)
    ledger.tick(0.0, [], {"veth1": Traffic(), "eth0": Traffic()})
    counters = {"veth1": BACK, "eth0": T + Traffic(tx_bytes=10, tx_packets=1)}
    ledger.tick(1.0, [flow], counters, explained=crossings([flow], HOST))
    assert ledger.unattributed["veth1"].cumulative == Traffic()
    assert ledger.unattributed["eth0"].cumulative == Traffic(tx_bytes=10, tx_packets=1)
    assert ledger.namespaces[CTR_NS].cumulative == T


def test_a_bridge_counts_received_bytes_without_the_ethernet_header() -> None:
    row = InterfaceCounters("br0", rx_bytes=1000, rx_packets=10, tx_bytes=1140, tx_packets=10)
    assert ip_level(row, 14, 0) == Traffic(1000, 1000, 10, 10)

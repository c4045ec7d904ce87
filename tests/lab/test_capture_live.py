"""Live PacketCounter tests: exact UDP/ICMP counts on a veth pair, and no TCP at all.

Needs root (namespaces, CAP_NET_RAW). Traffic goes only between the ``hmB-*`` namespaces
these tests create (198.18.0.1/2, 2001:db8:b::1/2) and to their own loopback; both are
always deleted. Sends are bounded in count, waits are bounded polls, no timing assertions.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hostmedic.collectors.capture import PacketCounter
from hostmedic.collectors.packets import FlowKey, decode_key
from hostmedic.errors import FactUnavailable
from tests.lab.veth import A4, A6, B4, B6, Lab, send_mix, udp_sockets, veth_lab

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="lab tests need root (netns, CAP_NET_RAW)"),
]

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def lab() -> Iterator[Lab]:
    with veth_lab() as built:
        yield built


def collect(pc: PacketCounter, done: Callable[[dict[FlowKey, list[int]]], bool]) -> dict:
    """Sum snapshots (decoded) until ``done`` says all expected traffic arrived, or 5 s."""
    total: dict[FlowKey, list[int]] = {}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        time.sleep(0.1)
        snap = pc.snapshot_and_reset()
        assert snap.kernel_drops == 0 and snap.folded_packets == 0 and snap.bad_blocks == 0
        for raw, (packets, size) in snap.flows.items():
            entry = total.setdefault(decode_key(raw), [0, 0])
            entry[0] += packets
            entry[1] += size
        if done(total):
            time.sleep(0.3)  # one more retire period: anything extra would show up now
            for raw, (packets, size) in pc.snapshot_and_reset().flows.items():
                entry = total.setdefault(decode_key(raw), [0, 0])
                entry[0] += packets
                entry[1] += size
            break
    return total


def ifindex(ns: str, dev: str) -> int:
    out = subprocess.run(["ip", "netns", "exec", ns, "cat", f"/sys/class/net/{dev}/ifindex"],
                         check=True, capture_output=True, text=True, timeout=10)  # fmt: skip
    return int(out.stdout)


def test_udp_icmp_exact_and_no_tcp(lab: Lab) -> None:
    n4, n6, size4, size6 = 50, 30, 200, 100
    socks = rx4, rx6, tx4, tx6 = udp_sockets(lab)
    try:
        with PacketCounter(lab.path(lab.a)) as pc:
            send_mix(lab, socks, n4, n6, size4, size6)

            idx = ifindex(lab.a, lab.dev_a)
            u4 = FlowKey(idx, True, 4, 17, A4, B4, tx4.getsockname()[1], rx4.getsockname()[1])
            u6 = FlowKey(idx, True, 6, 17, A6, B6, tx6.getsockname()[1], rx6.getsockname()[1])

            def done(total: dict[FlowKey, list[int]]) -> bool:
                replies = [k for k in total if k.protocol == 1 and k.icmp_type == 0]
                return u4 in total and u6 in total and bool(replies) and total[u4][0] >= n4

            flows = collect(pc, done)
            assert pc.error is None
    finally:
        for s in socks:
            s.close()
    assert flows[u4] == [n4, n4 * (20 + 8 + size4)]
    assert flows[u6] == [n6, n6 * (40 + 8 + size6)]
    requests = {k: v for k, v in flows.items() if k.protocol == 1 and k.icmp_type == 8}
    replies = {k: v for k, v in flows.items() if k.protocol == 1 and k.icmp_type == 0}
    assert list(requests.values()) == [[5, 5 * 84]] and list(replies.values()) == [[5, 5 * 84]]
    (req,) = requests
    (rep,) = replies
    assert (req.outgoing, rep.outgoing) == (True, False)
    assert req.icmp_echo_id == rep.icmp_echo_id and (req.src_ip, rep.src_ip) == (A4, B4)
    assert not [k for k in flows if k.protocol == 6], "TCP must never reach the ring"
    assert {k.protocol for k in flows} <= {1, 17, 58}


def test_loopback_is_seen_twice(lab: Lab) -> None:
    tx = lab.sock(lab.a, socket.AF_INET, socket.SOCK_DGRAM)
    rx = lab.sock(lab.a, socket.AF_INET, socket.SOCK_DGRAM)
    try:
        rx.bind(("127.0.0.1", 0))
        with PacketCounter(lab.path(lab.a)) as pc:
            for _ in range(10):
                tx.sendto(b"L" * 10, rx.getsockname())

            def done(total: dict[FlowKey, list[int]]) -> bool:
                return sum(v[0] for k, v in total.items() if k.dst_ip == "127.0.0.1") >= 20

            flows = collect(pc, done)
    finally:
        tx.close()
        rx.close()
    lo = {k.outgoing: v for k, v in flows.items() if k.dst_ip == "127.0.0.1"}
    assert lo == {True: [10, 380], False: [10, 380]}
    assert {k.ifindex for k in flows if k.dst_ip == "127.0.0.1"} == {1}


def test_missing_namespace_and_missing_privilege(lab: Lab) -> None:
    with pytest.raises(FactUnavailable):
        PacketCounter("/run/netns/hmB-does-not-exist")
    if not shutil.which("setpriv"):
        pytest.skip("setpriv not installed")
    code = (
        "from hostmedic.collectors.capture import PacketCounter\n"
        "from hostmedic.errors import FactUnavailable\n"
        "try:\n    PacketCounter()\nexcept FactUnavailable as e:\n    print('FU', e)\n"
    )
    out = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
         sys.executable, "-c", code],
        capture_output=True, text=True, timeout=30, env={**os.environ, "PYTHONPATH": str(SRC)},
    )  # fmt: skip
    assert "FU needs CAP_NET_RAW" in out.stdout, out.stderr

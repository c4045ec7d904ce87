"""Live tests of the in-kernel UDP/ICMP counter (cgroup_skb on the cgroup-v2 root).

Exact per-socket counts on a quiet veth pair (``hmB-*`` namespaces, lab addresses only),
the namespace each record belongs to, no TCP record without loss, the SACK option bytes of
TCP with one dropped segment (its flow then matches nftables' own counts exactly), the
private cgroup2 mount that leaves the host's mount table alone, and detaching on close and
on SIGKILL. Bounded sends and polls, no timing assertions.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hostmedic.analysis.skb_flows import SkbFlow
from hostmedic.collectors import bpf
from hostmedic.collectors.cgroup_skb import CgroupSkbCounter, netns_cookie
from hostmedic.collectors.datagram_programs import KEY, SLOT, SLOT_BITS
from hostmedic.errors import FactUnavailable
from tests.lab.veth import (
    A4,
    A6,
    B4,
    B6,
    Lab,
    send_mix,
    socket_cookie,
    udp_sockets,
    veth_lab,
)

pytestmark = pytest.mark.lab

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def lab() -> Iterator[Lab]:
    with veth_lab() as built:
        yield built


def _counter(**kwargs: bool | int) -> CgroupSkbCounter:
    try:
        return CgroupSkbCounter(**kwargs)
    except FactUnavailable as exc:
        pytest.skip(f"in-kernel counter unavailable here: {exc}")


def collect(
    counter: CgroupSkbCounter, netns: set[int], done: Callable[[list[SkbFlow]], bool]
) -> list[SkbFlow]:
    """Records of the ``netns`` cookies until ``done`` says all expected traffic is in (≤ 5 s)."""
    seen: list[SkbFlow] = []
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not done(seen):
        time.sleep(0.05)
        seen += [f for f in counter.read() if f.netns_cookie in netns]
    seen += [f for f in counter.read() if f.netns_cookie in netns]  # nothing extra may come
    return seen


def test_udp_and_icmp_per_socket_exact_and_no_tcp(lab: Lab) -> None:
    n4, n6, size4, size6 = 50, 30, 200, 100
    socks = rx4, rx6, tx4, tx6 = udp_sockets(lab)
    ns_a, ns_b = netns_cookie(tx4), netns_cookie(rx4)
    with rx4, rx6, tx4, tx6, _counter() as counter:
        send_mix(lab, socks, n4, n6, size4, size6)

        def done(seen: list[SkbFlow]) -> bool:
            return sum(f.packets for f in seen if f.protocol == 17) >= 2 * (n4 + n6)

        flows = collect(counter, {ns_a, ns_b}, done)
        port4 = rx4.getsockname()[1]
    assert ns_a != ns_b
    assert not [f for f in flows if f.protocol == 6], "TCP without loss has no option bytes"

    def total(**match: object) -> tuple[int, int]:
        hits = [f for f in flows if all(getattr(f, k) == v for k, v in match.items())]
        return sum(f.packets for f in hits), sum(f.ip_bytes for f in hits)

    sent4 = (n4, n4 * (20 + 8 + size4))
    assert total(netns_cookie=ns_a, outgoing=True, protocol=17, family=socket.AF_INET) == sent4
    assert total(netns_cookie=ns_b, outgoing=False, local_port=port4) == sent4
    sent6 = (n6, n6 * (40 + 8 + size6))
    assert total(netns_cookie=ns_a, outgoing=True, protocol=17, family=socket.AF_INET6) == sent6
    (out4,) = [f for f in flows if f.netns_cookie == ns_a and f.protocol == 17 and f.family == 2]
    assert (out4.local_ip, out4.remote_ip, out4.remote_port) == (A4, B4, port4)
    assert out4.tgid == os.getpid()  # the sender, seen in the kernel
    (in6,) = [f for f in flows if f.netns_cookie == ns_b and f.protocol == 17 and f.family == 10]
    assert (in6.local_ip, in6.remote_ip, in6.tgid) == (B6, A6, 0)
    # ping: a's ping socket sends requests and receives replies, b's kernel answers
    assert total(netns_cookie=ns_a, protocol=1, icmp_type=8, outgoing=True) == (5, 5 * 84)
    assert total(netns_cookie=ns_a, protocol=1, icmp_type=0, outgoing=False) == (5, 5 * 84)
    assert total(netns_cookie=ns_b, protocol=1, icmp_type=0, outgoing=True) == (5, 5 * 84)
    assert total(netns_cookie=ns_b, protocol=1, icmp_type=8) == (0, 0)  # reached no socket


def test_private_cgroup2_mount_is_invisible_to_the_host() -> None:
    before = Path("/proc/self/mountinfo").read_text()
    with _counter(use_host_mount=False) as counter:
        ids = counter.prog_ids
        assert all(bpf.prog_exists(i) for i in ids)
        assert Path("/proc/self/mountinfo").read_text() == before
    assert not any(bpf.prog_exists(i) for i in ids)
    assert Path("/proc/self/mountinfo").read_text() == before


def test_a_killed_monitor_leaves_nothing_attached() -> None:
    code = (
        "import sys, time\n"
        "from hostmedic.collectors.cgroup_skb import CgroupSkbCounter\n"
        "c = CgroupSkbCounter()\nprint(*c.prog_ids, flush=True)\ntime.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert child.stdout is not None
        ids = [int(x) for x in child.stdout.readline().split()]
        if not ids:
            pytest.skip("the in-kernel counter did not load in the child")
        assert all(bpf.prog_exists(i) for i in ids)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    deadline = time.monotonic() + 5  # programs are freed after an RCU grace period
    while any(bpf.prog_exists(i) for i in ids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(bpf.prog_exists(i) for i in ids)


@pytest.mark.parametrize(("in_kernel", "method"), [(True, "kernel"), (False, "ring")])
def test_the_monitor_counts_udp_in_the_kernel_and_falls_back_to_the_ring(
    lab: Lab, in_kernel: bool, method: str
) -> None:
    """The same UDP datagrams, counted by either source, reach the ledger with their pid."""
    from hostmedic.collectors.bandwidth import BandwidthMonitor, MonitorOptions
    from hostmedic.collectors.netlink import run_in_netns

    def build() -> BandwidthMonitor:
        monitor = BandwidthMonitor(MonitorOptions(in_kernel=in_kernel, connect_tracer=False))
        monitor.start()  # every socket it opens lives in namespace a
        return monitor

    monitor = run_in_netns(lab.path(lab.a), build)
    rx = lab.sock(lab.b, socket.AF_INET, socket.SOCK_DGRAM)
    tx = lab.sock(lab.a, socket.AF_INET, socket.SOCK_DGRAM)
    try:
        rx.bind((B4, 0))
        for _ in range(20):
            tx.sendto(b"u" * 100, rx.getsockname())
        time.sleep(0.2)  # the ring retires its block after 64 ms
        run_in_netns(lab.path(lab.a), monitor.sample)
        assert monitor.datagram_method == method
        assert monitor.ledger is not None
        udp = {  # namespace a's flows (b, linked to it by the veth, is one of its containers)
            k: s.cumulative
            for k, s in monitor.ledger.flows.items()
            if k.protocol == "udp" and k.netns_inode == monitor._netns
        }
    finally:
        monitor.close()
        rx.close()
        tx.close()
    ((key, traffic),) = udp.items()
    assert (key.pid, key.remote_ip, key.interface) == (os.getpid(), B4, lab.dev_a)
    assert (traffic.tx_packets, traffic.tx_bytes) == (20, 20 * 128)


def test_a_udp_socket_born_and_closed_between_two_ticks_keeps_its_sender(lab: Lab) -> None:
    """No dump ever lists it; the in-kernel counter saw which process sent."""
    from hostmedic.collectors.bandwidth import BandwidthMonitor, MonitorOptions
    from hostmedic.collectors.netlink import run_in_netns

    def build() -> BandwidthMonitor:
        monitor = BandwidthMonitor(MonitorOptions(connect_tracer=False, containers=False))
        monitor.start()
        return monitor

    monitor = run_in_netns(lab.path(lab.a), build)
    code = (
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"for _ in range(5):\n    s.sendto(b'z' * 50, ('{B4}', 9))\ns.close()\n"
    )
    try:
        if monitor.datagram_method != "kernel":
            pytest.skip("in-kernel counter unavailable here")
        sender = subprocess.run(
            ["ip", "netns", "exec", lab.a, sys.executable, "-c",
             f"{code}import os; print(os.getpid())"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout.split()[-1]  # fmt: skip
        run_in_netns(lab.path(lab.a), monitor.sample)
        assert monitor.ledger is not None
        udp = [k for k in monitor.ledger.flows if k.protocol == "udp" and k.remote_ip == B4]
    finally:
        monitor.close()
    assert int(sender) in {k.pid for k in udp}


def _nft(ns: str, rules: str) -> str:
    done = subprocess.run(
        ["ip", "netns", "exec", ns, "nft", *(["-f", "-"] if rules else ["-j", "list", "ruleset"])],
        input=rules, text=True, check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    return done.stdout


def _tcp_counter(ns: str) -> tuple[int, int]:
    """(packets, bytes) of TCP that namespace ``ns``'s input saw (IP-level, GRO off)."""
    for item in json.loads(_nft(ns, ""))["nftables"]:
        rule = item.get("rule")
        if rule and rule["table"] == "hm_truth":
            counter = next(e["counter"] for e in rule["expr"] if "counter" in e)
            return counter["packets"], counter["bytes"]
    raise AssertionError(f"no hm_truth counter in {ns}")


def test_sack_option_bytes_make_a_lossy_tcp_flow_exact(lab: Lab) -> None:
    """tcp_info has no SACK bytes; the in-kernel counter adds them, per socket cookie.
    b drops a's first full-sized segment once, so b's ACKs carry SACK blocks until the
    retransmission fills the hole. The truth is what each side's nftables input counted
    of TCP (so the link-local IPv6 chatter of a young veth cannot disturb it)."""
    from hostmedic.collectors.bandwidth import BandwidthMonitor, MonitorOptions
    from hostmedic.collectors.netlink import run_in_netns

    def build() -> BandwidthMonitor:
        monitor = BandwidthMonitor(MonitorOptions(connect_tracer=False, containers=False))
        monitor.start()
        return monitor

    listener = lab.sock(lab.b, socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((B4, 0))
    listener.listen()
    port = listener.getsockname()[1]
    _nft(lab.b, "table inet hm_drop {\n set dropped { type ipv4_addr; flags dynamic; }\n"
         " chain input { type filter hook input priority 0;\n"
         f"  tcp dport {port} ip length > 1000 ip saddr != @dropped"
         " add @dropped { ip saddr } drop\n }\n}\n")  # fmt: skip
    for ns in (lab.a, lab.b):  # before b's drop rule; on input, segments are wire packets
        _nft(ns, "table inet hm_truth { chain input {"
             " type filter hook input priority -10; meta l4proto tcp counter; }\n}\n")  # fmt: skip
    monitor = run_in_netns(lab.path(lab.a), build)
    try:
        if monitor.datagram_method != "kernel":
            pytest.skip("in-kernel counter unavailable here")
        client = lab.sock(lab.a, socket.AF_INET, socket.SOCK_STREAM)
        with listener, client:
            client.settimeout(5)
            client.connect(listener.getsockname())
            peer, _ = listener.accept()
            with peer:
                peer.settimeout(5)
                client.sendall(b"s" * 300_000)
                received = 0
                while received < 300_000:
                    received += len(peer.recv(65536))
                time.sleep(0.3)  # the last ACKs
                run_in_netns(lab.path(lab.a), monitor.sample)
                (tx_packets, tx_bytes), (rx_packets, rx_bytes) = map(_tcp_counter, (lab.b, lab.a))
        assert monitor.ledger is not None
        tcp = [s.cumulative for k, s in monitor.ledger.flows.items() if k.protocol == "tcp"]
    finally:
        monitor.close()
    (counted,) = tcp
    assert (counted.tx_packets, counted.rx_packets) == (tx_packets, rx_packets)
    assert counted.rx_bytes == rx_bytes  # b's ACKs with their SACK blocks
    # and there were some: more than 52-byte ACKs (+ 8 option bytes of the SYN-ACK)
    assert counted.rx_bytes > 52 * counted.rx_packets + 8
    assert counted.tx_bytes == tx_bytes


def _connected_pair(lab: Lab, family: int) -> tuple[socket.socket, socket.socket]:
    """``(a_sock, b_sock)``: UDP sockets connected to each other across the veth."""
    a_ip, b_ip = (A4, B4) if family == socket.AF_INET else (A6, B6)
    a_sock, b_sock = (
        lab.sock(lab.a, family, socket.SOCK_DGRAM),
        lab.sock(lab.b, family, socket.SOCK_DGRAM),
    )
    a_sock.bind((a_ip, 0))
    b_sock.bind((b_ip, 0))
    a_sock.connect(b_sock.getsockname()[:2])
    b_sock.connect(a_sock.getsockname()[:2])
    return a_sock, b_sock


def _slots(counter: CgroupSkbCounter, slot_bits: int = SLOT_BITS) -> list[tuple[int, ...]]:
    """The fast path's slots that are taken or hold counts (unpacked :data:`SLOT`s)."""
    slots = []
    for index in range(1 << slot_bits):
        raw = bpf.map_lookup(counter.slots_fd, struct.pack("=I", index), SLOT.size)
        assert raw is not None
        slot = SLOT.unpack(raw)
        if any(slot[:5]):
            slots.append(slot)
    return slots


def _slot_port(slot: tuple[int, ...]) -> int:
    """The local port of the socket a slot was taken for."""
    return int.from_bytes(KEY.unpack(slot[5])[3], "big")


def _totals(flows: list[SkbFlow], **match: object) -> tuple[int, int]:
    """Packets and bytes of the UDP flows that match (neighbour discovery may come too)."""
    hits = [
        f for f in flows if f.protocol == 17 and all(getattr(f, k) == v for k, v in match.items())
    ]
    return sum(f.packets for f in hits), sum(f.ip_bytes for f in hits)


@pytest.mark.parametrize("fast_path", [True, False])
def test_connected_udp_sockets_are_exact_on_and_off_the_fast_path(
    lab: Lab, fast_path: bool
) -> None:
    """Connected sockets go through their slot of the fast path's cache (or the hash map,
    without the fast path): the same exact counts, namespaces, sender and interface, over
    reads taken between the sends. What a connected socket sends elsewhere (sendto, or
    after connecting to another peer) is another flow."""
    pair4, pair6 = _connected_pair(lab, socket.AF_INET), _connected_pair(lab, socket.AF_INET6)
    (a4, b4), (a6, b6) = pair4, pair6
    other = lab.sock(lab.b, socket.AF_INET, socket.SOCK_DGRAM)
    other.bind((B4, 0))
    ns_a, ns_b = netns_cookie(a4), netns_cookie(b4)
    flows: list[SkbFlow] = []
    with a4, b4, a6, b6, other, _counter(fast_path=fast_path) as counter:
        assert (counter.slots_fd >= 0) == fast_path, counter.fast_path_unavailable
        for rnd in range(3):
            for _ in range(40):
                a4.send(b"4" * 100)
                a6.send(b"6" * 60)
            for _ in range(10):
                b4.send(b"r" * 30)
            a4.sendto(b"x" * 10, other.getsockname())
            if fast_path and rnd == 0:  # tx bytes and packets since the last flush:
                mine = [s for s in _slots(counter) if _slot_port(s) == a4.getsockname()[1]]
                assert [s[1:3] for s in mine] == [(40 * 128, 40)]
            time.sleep(0.05)
            flows += [f for f in counter.read() if f.netns_cookie in (ns_a, ns_b)]
        a4.connect(other.getsockname())  # connected elsewhere: not the stored peer
        for _ in range(5):
            a4.send(b"x" * 10)
        time.sleep(0.05)
        flows += [f for f in counter.read() if f.netns_cookie in (ns_a, ns_b)]
        port_a4, port_b4, port_o = a4.getsockname()[1], b4.getsockname()[1], other.getsockname()[1]
        cookie_a4, cookie_b4 = socket_cookie(a4), socket_cookie(b4)
    # the slot's flush and the hash map name a socket alike: by the cookie, in the value
    assert {f.socket_cookie for f in flows if f.netns_cookie == ns_a and f.family == 2} == {
        cookie_a4
    }
    assert {f.socket_cookie for f in flows if f.local_port == port_b4} == {cookie_b4}
    out_a4 = [
        f for f in flows if f.netns_cookie == ns_a and f.outgoing and f.remote_port == port_b4
    ]
    assert _totals(out_a4) == (120, 120 * (20 + 8 + 100))
    assert {(f.local_ip, f.local_port, f.remote_ip, f.tgid) for f in out_a4} == {
        (A4, port_a4, B4, os.getpid())
    }
    assert _totals(flows, netns_cookie=ns_b, outgoing=False, local_port=port_b4) == (120, 120 * 128)
    assert _totals(flows, netns_cookie=ns_a, outgoing=True, family=socket.AF_INET6) == (
        120, 120 * (40 + 8 + 60),
    )  # fmt: skip
    assert _totals(flows, netns_cookie=ns_b, outgoing=False, family=socket.AF_INET6) == (
        120, 120 * 108,
    )  # fmt: skip
    assert _totals(flows, netns_cookie=ns_b, outgoing=True, local_port=port_b4) == (30, 30 * 58)
    assert _totals(flows, netns_cookie=ns_a, outgoing=False, remote_port=port_b4) == (30, 30 * 58)
    assert _totals(flows, netns_cookie=ns_a, outgoing=True, remote_port=port_o) == (8, 8 * 38)
    ifindexes = {f.ifindex for f in flows if f.protocol == 17}
    assert len(ifindexes) <= 2 and 1 not in ifindexes  # each namespace's veth end, never lo


@pytest.mark.parametrize(("family", "header"), [(socket.AF_INET, 28), (socket.AF_INET6, 48)])
def test_a_connected_socket_closed_between_reads_is_counted_at_release(
    lab: Lab, family: int, header: int
) -> None:
    """The release hook moves the last counts to the map, with the closing process as the
    sender, and frees the socket's slot."""
    a_sock, b_sock = _connected_pair(lab, family)
    ns_a = netns_cookie(a_sock)
    with b_sock, _counter() as counter:
        if counter.slots_fd < 0:
            pytest.skip(f"no fast path here: {counter.fast_path_unavailable}")
        for _ in range(7):
            a_sock.send(b"c" * 72)
        port = a_sock.getsockname()[1]
        assert [s[1:3] for s in _slots(counter) if _slot_port(s) == port] == [
            (7 * (header + 72), 7)
        ]
        a_sock.close()
        assert not [s for s in _slots(counter) if _slot_port(s) == port]
        flows = [
            f for f in counter.read() if f.netns_cookie == ns_a and f.outgoing and f.protocol == 17
        ]
    assert [(f.local_port, f.packets, f.ip_bytes, f.tgid) for f in flows] == [
        (port, 7, 7 * (header + 72), os.getpid())
    ]


def test_sends_racing_the_reads_lose_and_double_nothing(lab: Lab) -> None:
    """A thread sends while the counter is read back to back: every flush takes each count
    with an atomic exchange, so the reads add up to exactly what was sent."""
    import threading

    a4, b4 = _connected_pair(lab, socket.AF_INET)
    ns_a, total = netns_cookie(a4), 20_000
    got = [0, 0]
    with a4, b4, _counter() as counter:
        sender = threading.Thread(target=lambda: [a4.send(b"r" * 16) for _ in range(total)])
        sender.start()
        deadline = time.monotonic() + 60
        while sender.is_alive() and time.monotonic() < deadline:
            for f in counter.read():
                if f.netns_cookie == ns_a and f.outgoing and f.protocol == 17:
                    got[0], got[1] = got[0] + f.packets, got[1] + f.ip_bytes
        sender.join(timeout=10)
        time.sleep(0.05)
        for f in counter.read():
            if f.netns_cookie == ns_a and f.outgoing and f.protocol == 17:
                got[0], got[1] = got[0] + f.packets, got[1] + f.ip_bytes
    assert got == [total, total * 44]


def test_a_failed_flush_keeps_the_counts_for_the_next_read(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    a4, b4 = _connected_pair(lab, socket.AF_INET)
    ns_a = netns_cookie(a4)
    with a4, b4, _counter() as counter:
        if counter.slots_fd < 0:
            pytest.skip(f"no fast path here: {counter.fast_path_unavailable}")
        for _ in range(9):
            a4.send(b"f" * 12)

        def refused(_link: int) -> None:
            raise bpf.BpfError(12, "creating a BPF iterator")  # ENOMEM

        with monkeypatch.context() as patched:
            patched.setattr(bpf, "iter_run", refused)
            assert _totals([f for f in counter.read() if f.netns_cookie == ns_a]) == (0, 0)
        flows = [f for f in counter.read() if f.netns_cookie == ns_a and f.outgoing]
    assert _totals(flows) == (9, 9 * 40)


def test_without_kernel_btf_connected_sockets_fall_back_to_the_hash_map(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hostmedic.collectors import btf

    def missing() -> btf.Btf:
        raise FactUnavailable("the kernel exposes no BTF type information")

    monkeypatch.setattr(btf, "vmlinux_btf", missing)
    a4, b4 = _connected_pair(lab, socket.AF_INET)
    ns_a = netns_cookie(a4)
    with a4, b4, _counter() as counter:
        assert counter.slots_fd == -1 and "BTF" in counter.fast_path_unavailable
        for _ in range(4):
            a4.send(b"h" * 20)
        flows = [f for f in counter.read() if f.netns_cookie == ns_a and f.outgoing]
    assert _totals(flows) == (4, 4 * 48)


def test_sockets_sharing_too_few_slots_stay_exact_and_idle_slots_are_freed(lab: Lab) -> None:
    """Four connected pairs, two slots: the sockets that find their slot taken go through
    the hash map, with the same exact counts. A flush frees the slots whose socket sent
    nothing since the previous one; a slot then serves the next socket that sends."""
    flows: list[SkbFlow] = []
    with contextlib.ExitStack() as stack:
        pairs = [_connected_pair(lab, socket.AF_INET) for _ in range(4)]
        for pair in pairs:
            stack.enter_context(pair[0])
            stack.enter_context(pair[1])
        ns_a = netns_cookie(pairs[0][0])
        ports = [a.getsockname()[1] for a, _b in pairs]
        counter = stack.enter_context(_counter(slot_bits=1))
        assert counter.slots_fd >= 0, counter.fast_path_unavailable
        for _round in range(3):
            for n, (a_sock, _b) in enumerate(pairs):
                for _ in range(10 * (n + 1)):
                    a_sock.send(b"s" * (20 + n))
            taken = _slots(counter, slot_bits=1)
            assert len(taken) <= 2 and all(s[0] > 1 for s in taken)  # tags, none busy
            flows += [f for f in counter.read() if f.netns_cookie == ns_a]
        flows += [f for f in counter.read() if f.netns_cookie == ns_a]  # idle: slots freed
        assert not [s for s in _slots(counter, slot_bits=1) if _slot_port(s) in ports]
    for n, port in enumerate(ports):
        sent = 30 * (n + 1)
        assert _totals(flows, outgoing=True, local_port=port) == (sent, sent * (48 + n))


def test_a_verifier_that_refuses_the_fast_path_leaves_the_hash_map(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kernel whose verifier refuses the fast path's programs (say, pointer arithmetic
    on sockets) still counts every datagram, through the hash map, and says why."""
    from hostmedic.collectors import cgroup_skb

    built = cgroup_skb.build_program

    def refused(
        counters_fd: int, *, outgoing: bool, slots_fd: int = -1, slot_bits: int = SLOT_BITS
    ) -> bytes:
        if slots_fd >= 0:  # an out-of-bounds stack read: the verifier rejects it
            return bpf.assemble([bpf.ldx(8, bpf.R0, bpf.FP, 8), bpf.exit_()])
        return built(counters_fd, outgoing=outgoing)

    monkeypatch.setattr(cgroup_skb, "build_program", refused)
    a4, b4 = _connected_pair(lab, socket.AF_INET)
    ns_a = netns_cookie(a4)
    with a4, b4, _counter() as counter:
        assert counter.slots_fd == -1 and "verifier" in counter.fast_path_unavailable
        assert len(counter.prog_ids) == 2  # the iterator and the release hook are gone
        for _ in range(6):
            a4.send(b"v" * 30)
        flows = [f for f in counter.read() if f.netns_cookie == ns_a and f.outgoing]
    assert _totals(flows) == (6, 6 * 58)

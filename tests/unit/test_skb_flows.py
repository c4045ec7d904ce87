"""In-kernel records → the ledger's datagrams (namespaces, raw-socket clones, the kernel's
own echo replies) and the TCP option bytes joined to their sockets (analysis/skb_flows.py)."""

from __future__ import annotations

import socket

from hostmedic.analysis.skb_flows import (
    OPTION_BYTES_WAIT_READS,
    SkbFlow,
    WaitingOptions,
    add_option_bytes,
    tcp_option_bytes,
    to_datagrams,
)
from hostmedic.facts.bandwidth import Traffic

OURS, THEIRS = 101, 202  # netns cookies
OUR_NETNS = 4026531840
NETNS = {OURS: OUR_NETNS}


def flow(
    *,
    outgoing: bool,
    proto: int = socket.IPPROTO_UDP,
    cookie: int = 1,
    netns: int = OURS,
    kind: int | None = None,
    echo_id: int | None = None,
    packets: int = 2,
    size: int = 200,
    tgid: int = 0,
) -> SkbFlow:
    ports = (0, 0) if kind is not None else (40000, 53)
    return SkbFlow(
        netns, cookie, socket.AF_INET, proto, outgoing, "198.18.1.1", ports[0], "198.18.1.2",
        ports[1], kind, echo_id, 3, packets, size, tgid,
    )  # fmt: skip


def convert(*flows: SkbFlow):
    return to_datagrams(flows, NETNS, lambda netns, ifindex: {3: "eth0"}.get(ifindex))


def test_udp_keeps_socket_sender_endpoints_and_interface():
    ((netns, c),) = convert(flow(outgoing=True, cookie=77, tgid=4242, packets=3, size=300))
    d = c.datagram
    assert (netns, c.socket_cookie, c.tgid) == (OUR_NETNS, 77, 4242)
    assert (d.interface, d.protocol, d.local, d.remote) == (
        "eth0", "udp", ("198.18.1.1", 40000), ("198.18.1.2", 53),
    )  # fmt: skip
    assert (d.traffic.tx_packets, d.traffic.tx_bytes, d.traffic.rx_bytes) == (3, 300, 0)
    ((_, received),) = convert(flow(outgoing=False))
    assert received.datagram.local == ("198.18.1.1", 40000)
    assert received.datagram.traffic.rx_bytes == 200


def test_namespaces_nobody_monitors_are_dropped():
    assert convert(flow(outgoing=True, netns=THEIRS)) == []


def test_kernel_echo_replies_add_up_over_its_per_cpu_sockets_and_mirror_the_requests():
    replies = [
        flow(outgoing=True, proto=1, kind=0, echo_id=9, cookie=c, packets=n, size=84 * n)
        for c, n in ((500, 18), (501, 2))
    ]
    got = convert(*replies)
    out = [c for _, c in got if c.datagram.outgoing]
    (request,) = [c for _, c in got if not c.datagram.outgoing]
    assert sum(c.datagram.packets for c in out) == 20
    assert (request.icmp_type, request.icmp_echo_id) == (8, 9)
    assert (request.datagram.packets, request.datagram.ip_bytes) == (20, 1680)
    assert request.datagram.remote == ("198.18.1.2", 0)


def test_icmp_cloned_to_several_raw_sockets_counts_once():
    clones = [flow(outgoing=False, proto=1, kind=0, echo_id=5, cookie=c) for c in (1, 2, 3)]
    (only,) = convert(*clones)
    assert only[1].datagram.packets == 2


def test_a_request_seen_by_a_raw_socket_and_mirrored_counts_once():
    reply = flow(outgoing=True, proto=1, kind=0, echo_id=5, cookie=500)
    seen = flow(outgoing=False, proto=1, kind=8, echo_id=5, cookie=9)
    got = convert(reply, seen)
    assert sorted((c.datagram.outgoing, c.datagram.packets) for _, c in got) == [
        (False, 2), (True, 2),
    ]  # fmt: skip


def test_icmpv6_echo_uses_its_own_types():
    reply = flow(outgoing=True, proto=socket.IPPROTO_ICMPV6, kind=129, echo_id=1)
    requests = [c for _, c in convert(reply) if not c.datagram.outgoing]
    assert [(r.icmp_type, r.datagram.protocol) for r in requests] == [(128, "icmpv6")]


def test_tcp_records_are_option_bytes_of_their_socket_not_datagrams():
    sack = [
        flow(outgoing=False, proto=socket.IPPROTO_TCP, cookie=5, packets=3, size=36),
        flow(outgoing=True, proto=socket.IPPROTO_TCP, cookie=5, packets=1, size=12),
        flow(outgoing=False, proto=socket.IPPROTO_TCP, cookie=5, packets=1, size=20),
        flow(outgoing=False, proto=socket.IPPROTO_TCP, cookie=6, netns=THEIRS, size=8),
    ]
    assert convert(*sack) == []
    assert tcp_option_bytes([*sack, flow(outgoing=True)]) == {
        5: Traffic(tx_bytes=12, rx_bytes=56),
        6: Traffic(rx_bytes=8),  # a cookie names one socket machine-wide
    }


def test_option_bytes_join_their_socket_or_wait_a_few_reads():
    growth = [(5, Traffic(tx_bytes=100, tx_packets=2)), (7, Traffic(rx_bytes=52))]
    waiting = {7: WaitingOptions(Traffic(rx_bytes=12), 1), 9: WaitingOptions(Traffic(rx_bytes=24))}
    fresh = {5: Traffic(tx_bytes=20), 7: Traffic(rx_bytes=12), 8: Traffic(tx_bytes=12)}
    joined, waiting = add_option_bytes(growth, waiting, fresh)
    assert joined == [Traffic(tx_bytes=120, tx_packets=2), Traffic(rx_bytes=76)]
    assert waiting == {
        8: WaitingOptions(Traffic(tx_bytes=12)),
        9: WaitingOptions(Traffic(rx_bytes=24), 1),
    }
    for _ in range(2):  # a container's sockets are read from the tick after it is found
        joined, waiting = add_option_bytes([], waiting, {9: Traffic(rx_bytes=12)})
    joined, waiting = add_option_bytes([(9, Traffic(rx_bytes=520))], waiting, {})
    assert joined == [Traffic(rx_bytes=520 + 24 + 2 * 12)]
    assert waiting == {8: WaitingOptions(Traffic(tx_bytes=12), 3)}


def test_option_bytes_of_sockets_never_read_are_dropped():
    waiting: dict[int, WaitingOptions] = {}
    _, waiting = add_option_bytes([], waiting, {3: Traffic(rx_bytes=12)})
    for _ in range(OPTION_BYTES_WAIT_READS - 1):
        _, waiting = add_option_bytes([], waiting, {3: Traffic(rx_bytes=12)})
    last = OPTION_BYTES_WAIT_READS - 1
    assert waiting == {3: WaitingOptions(Traffic(rx_bytes=12 * OPTION_BYTES_WAIT_READS), last)}
    _, waiting = add_option_bytes([], waiting, {})
    assert waiting == {}  # a loopback socket, a namespace nobody watches

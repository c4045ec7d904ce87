"""In-kernel UDP/ICMP records → the ledger's datagrams: namespaces, raw-socket clones and
the kernel's own echo replies (analysis/skb_flows.py)."""

from __future__ import annotations

import socket

from hostmedic.analysis.skb_flows import SkbFlow, to_datagrams

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

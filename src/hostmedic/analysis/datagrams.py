"""Which socket a counted UDP/ICMP packet belongs to. Pure.

UDP: the way the kernel delivers (connected socket, then bound address, then wildcard) —
this is what attributes one unconnected socket spraying many peers to its process.
ICMP: echo requests we receive and the replies we send are the kernel's own work (pid 0),
and so is every non-echo message (errors, neighbour discovery, MLD); echo requests we send
and their replies belong to the ping socket whose "port" is the echo id, else to the only
raw ICMP socket of that address family if there is exactly one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hostmedic.analysis.accounting import Datagram, UdpSocketIndex

KERNEL = -1  # marker: answered by the kernel itself, not by a socket
_ECHO_REQUEST = {"icmp": 8, "icmpv6": 128}
_ECHO_REPLY = {"icmp": 0, "icmpv6": 129}


@dataclass(frozen=True, slots=True)
class CountedDatagram:
    """Counted packets of one flow and direction, plus what the owner decision needs.

    ``socket_cookie`` and ``tgid`` come from the in-kernel counter (0 from a packet tap):
    the socket the kernel delivered to / sent from, and the thread group that sent."""

    datagram: Datagram
    icmp_type: int | None = None
    icmp_echo_id: int | None = None
    socket_cookie: int = 0
    tgid: int = 0


@dataclass(frozen=True, slots=True)
class IcmpSockets:
    """Ping sockets (echo id → inode) and raw ICMP sockets, per protocol ("icmp" for IPv4,
    "icmpv6"): iputils ping holds one raw socket of each family."""

    ping_ids: dict[str, dict[int, int]]
    raw_inodes: dict[str, list[int]]


def _icmp_owner(d: CountedDatagram, sockets: IcmpSockets) -> int:
    proto, kind, outgoing = d.datagram.protocol, d.icmp_type, d.datagram.outgoing
    request, reply = _ECHO_REQUEST[proto], _ECHO_REPLY[proto]
    if kind not in (request, reply):
        return KERNEL  # errors, neighbour discovery, MLD: generated and consumed by the kernel
    if (kind == request) != outgoing:
        return KERNEL  # an echo request we received, or the reply we sent to it
    ping_ids = sockets.ping_ids.get(proto, {})
    if d.icmp_echo_id is not None and d.icmp_echo_id in ping_ids:
        return ping_ids[d.icmp_echo_id]
    raws = sockets.raw_inodes.get(proto, [])
    return raws[0] if len(raws) == 1 else 0


def socket_inodes(
    counted: Iterable[CountedDatagram],
    udp: UdpSocketIndex,
    icmp: IcmpSockets,
    cookies: Mapping[int, int] | None = None,
) -> list[tuple[Datagram, int]]:
    """Pair each datagram with its socket inode: 0 unknown, :data:`KERNEL` the kernel.

    A UDP datagram that names its socket (``socket_cookie``) gets that socket's inode from
    ``cookies`` (cookie → inode of the sockets dumped lately) and is never matched by
    address: an unknown cookie is a socket that came and went unseen."""
    paired: list[tuple[Datagram, int]] = []
    for c in counted:
        d = c.datagram
        if d.protocol in ("udp", "udplite"):
            if c.socket_cookie:
                paired.append((d, (cookies or {}).get(c.socket_cookie, 0)))
                continue
            hit = udp.find(d.local, d.remote)
            paired.append((d, hit.inode if hit else 0))
        elif d.protocol in ("icmp", "icmpv6"):
            paired.append((d, _icmp_owner(c, icmp)))
        else:
            paired.append((d, 0))
    return paired

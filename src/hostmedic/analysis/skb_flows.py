"""In-kernel counts (one record per socket, direction and peer) → datagrams and the TCP
option bytes tcp_info misses. Pure.

The cgroup_skb counter (collectors/cgroup_skb.py) sees a packet only where a socket sends
or receives it, on every network namespace of the machine. Its TCP records carry only the
option bytes beyond the timestamp option (SACK blocks), per socket cookie
(:func:`tcp_option_bytes`); they are added to the socket's own growth. Turning the other
records into the ledger's :class:`~hostmedic.analysis.datagrams.CountedDatagram` takes
three decisions:

* records of namespaces nobody asked to monitor are dropped (the program is host-wide);
* ICMP arriving on raw sockets is delivered once *per raw socket* (each gets a clone), so
  identical ICMP records of different sockets count once;
* the kernel answers echo requests itself: its reply leaves through the kernel's own
  control socket (seen), but the request it answers reached no socket (unseen). Each
  reply is the mirror of one request of the same length (an echo reply copies the
  request's payload), so the request is counted as the reply's mirror image.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from hostmedic.analysis.accounting import Datagram
from hostmedic.analysis.datagrams import CountedDatagram
from hostmedic.facts.bandwidth import Traffic

TCP = 6
PROTOCOLS = {17: "udp", 136: "udplite", 1: "icmp", 58: "icmpv6"}
ECHO_REQUEST = {1: 8, 58: 128}
ECHO_REPLY = {1: 0, 58: 129}


@dataclass(frozen=True, slots=True)
class SkbFlow:
    """Counted packets of one socket, one direction and one peer since the last read."""

    netns_cookie: int
    socket_cookie: int
    family: int
    protocol: int
    outgoing: bool
    local_ip: str
    local_port: int
    remote_ip: str
    remote_port: int
    icmp_type: int | None
    icmp_echo_id: int | None
    ifindex: int
    packets: int
    ip_bytes: int
    tgid: int  # the sender's thread group id (egress only; 0 when unknown)


def _datagram(
    f: SkbFlow, interface: str | None, outgoing: bool, packets: int, size: int
) -> Datagram:
    proto = PROTOCOLS.get(f.protocol, f"ip-proto-{f.protocol}")
    local, remote = (f.local_ip, f.local_port), (f.remote_ip, f.remote_port)
    src, dst = (local, remote) if outgoing else (remote, local)
    return Datagram(interface, outgoing, proto, *src, *dst, packets, size)


def _group(netns: int, c: CountedDatagram) -> tuple[object, ...]:
    d = c.datagram
    return (netns, d.interface, d.protocol, d.src_ip, d.dst_ip, c.icmp_type, c.icmp_echo_id)


def to_datagrams(
    flows: Iterable[SkbFlow],
    netns_inodes: Mapping[int, int],
    interface_of: Callable[[int, int], str | None],
) -> list[tuple[int, CountedDatagram]]:
    """``(netns inode, datagram)`` for every record of a monitored namespace.

    ``netns_inodes`` maps the netns cookies of the monitored namespaces to their inodes;
    ``interface_of(netns_inode, ifindex)`` names an interface (None when unknown).
    Outgoing packets leave through exactly one socket (the kernel's replies through one
    per CPU), so they add up; incoming ICMP is a clone per raw socket, so the records of
    one incoming ICMP flow count once (the largest), and so do a mirrored request and the
    same request seen by a raw socket.
    """
    out: list[tuple[int, CountedDatagram]] = []
    incoming: dict[tuple[object, ...], tuple[int, CountedDatagram]] = {}
    mirrors: dict[tuple[object, ...], tuple[int, SkbFlow, str | None, int, int]] = {}

    def keep_largest(netns: int, c: CountedDatagram) -> None:
        group = _group(netns, c)
        held = incoming.get(group)
        if held is None or held[1].datagram.packets < c.datagram.packets:
            incoming[group] = (netns, c)

    for f in flows:
        netns = netns_inodes.get(f.netns_cookie)
        if netns is None or f.protocol == TCP:
            continue  # another namespace's traffic (not monitored), or TCP option bytes
        interface = interface_of(netns, f.ifindex)
        d = _datagram(f, interface, f.outgoing, f.packets, f.ip_bytes)
        c = CountedDatagram(d, f.icmp_type, f.icmp_echo_id, f.socket_cookie, f.tgid)
        if f.icmp_type is None or f.outgoing:
            out.append((netns, c))
        else:
            keep_largest(netns, c)
        if f.outgoing and f.icmp_type is not None and f.icmp_type == ECHO_REPLY.get(f.protocol):
            group = (netns, interface, f.local_ip, f.remote_ip, f.protocol, f.icmp_echo_id)
            _, _, _, packets, size = mirrors.get(group, (netns, f, interface, 0, 0))
            mirrors[group] = (netns, f, interface, packets + f.packets, size + f.ip_bytes)
    for netns, f, interface, packets, size in mirrors.values():
        request = _datagram(f, interface, False, packets, size)
        keep_largest(netns, CountedDatagram(request, ECHO_REQUEST[f.protocol], f.icmp_echo_id))
    return out + list(incoming.values())


def tcp_option_bytes(flows: Iterable[SkbFlow]) -> dict[int, Traffic]:
    """Socket cookie → TCP option bytes beyond the timestamp option, per direction.

    tcp_info counts payload and segments, so the ledger adds a 32-byte TCP header per
    segment (20 without timestamps); ACKs carrying SACK blocks (12 bytes more for one
    block, 20 for two, 28 for three) are longer. The kernel counts what goes beyond 32
    bytes, so without timestamps each such ACK stays 12 bytes short. Namespaces do not
    matter: a cookie names one socket machine-wide.
    """
    extra: dict[int, Traffic] = {}
    for f in flows:
        if f.protocol == TCP:
            grown = Traffic(tx_bytes=f.ip_bytes) if f.outgoing else Traffic(rx_bytes=f.ip_bytes)
            extra[f.socket_cookie] = extra.get(f.socket_cookie, Traffic()) + grown
    return extra


# How many reads option bytes wait for their socket: a container's sockets are read only
# once a process of it is known, which the monitor re-discovers every 10 s (at one read a
# second: up to 11 reads later), and then give their whole life's counters at once.
OPTION_BYTES_WAIT_READS = 12


@dataclass(frozen=True, slots=True)
class WaitingOptions:
    """Option bytes of a socket not read yet, and how many reads they have waited."""

    traffic: Traffic
    reads: int = 0


def add_option_bytes(
    growth: list[tuple[int, Traffic]],
    waiting: Mapping[int, WaitingOptions],
    fresh: Mapping[int, Traffic],
) -> tuple[list[Traffic], dict[int, WaitingOptions]]:
    """Each socket's growth (``(cookie, growth)``) with its option bytes added, and the
    option bytes still waiting for their socket.

    The kernel's counts are read just after the sockets, so an ACK sent in between has
    its option bytes in ``fresh`` and its segment in the next read; a container's sockets
    are read only once its namespace is known. Bytes that waited
    ``OPTION_BYTES_WAIT_READS`` reads are dropped: their socket is not monitored (a
    loopback socket, a namespace nobody watches).
    """
    left = {c: WaitingOptions(w.traffic, w.reads + 1) for c, w in waiting.items()}
    for cookie, extra in fresh.items():
        held = left.get(cookie)
        left[cookie] = (
            WaitingOptions(extra)
            if held is None
            else WaitingOptions(held.traffic + extra, held.reads)
        )
    joined = [g + left.pop(cookie).traffic if cookie in left else g for cookie, g in growth]
    return joined, {c: w for c, w in left.items() if w.reads < OPTION_BYTES_WAIT_READS}

"""One ICMP echo socket: unprivileged where the kernel allows, raw otherwise.

Linux lets a process whose group is inside ``net.ipv4.ping_group_range`` open an ICMP
"ping" datagram socket: the kernel picks the echo id, computes checksums and reports ICMP
errors through the socket's error queue (``IP_RECVERR``) with the sender's address. Outside
that range only a raw socket (CAP_NET_RAW) can ping; a raw socket sees every ICMP message
of the namespace, so replies are filtered by our random echo id. No process is spawned:
the kernel's own sockets, read with :mod:`hostmedic.probes.icmp_wire`.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import time

from hostmedic.errors import FactUnavailable, ParseError
from hostmedic.probes import icmp_wire
from hostmedic.probes.icmp_wire import Reply

IP_RECVERR = 11
IPV6_RECVERR = 25
_RECV_SIZE = 2048


class IcmpSocket:
    """An ICMP (v4) or ICMPv6 echo socket; ``method`` is ``dgram`` or ``raw``.

    Raises FactUnavailable (key ``reason.icmp_not_permitted``) when neither kind may be
    opened: not in ping_group_range and no CAP_NET_RAW.
    """

    def __init__(self, family: int) -> None:
        self.family = family
        self.v6 = family == socket.AF_INET6
        proto = socket.IPPROTO_ICMPV6 if self.v6 else socket.IPPROTO_ICMP
        try:
            self.sock = socket.socket(family, socket.SOCK_DGRAM, proto)
            self.method = "dgram"
            self.sock.bind(("::", 0) if self.v6 else ("0.0.0.0", 0))
            self.ident = self.sock.getsockname()[1]  # the kernel's echo id for this socket
            level = socket.IPPROTO_IPV6 if self.v6 else socket.IPPROTO_IP
            self.sock.setsockopt(level, IPV6_RECVERR if self.v6 else IP_RECVERR, 1)
        except PermissionError:
            try:
                self.sock = socket.socket(family, socket.SOCK_RAW, proto)
            except PermissionError as exc:
                raise FactUnavailable(
                    "ICMP needs ping_group_range or CAP_NET_RAW", key="reason.icmp_not_permitted"
                ) from exc
            self.method = "raw"
            self.ident = int.from_bytes(os.urandom(2), "big")
        self.sock.setblocking(False)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> IcmpSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, address: str, seq: int, payload: bytes, ttl: int | None = None) -> None:
        """Send one echo request (``ttl`` limits its hops: the path probe's TTL)."""
        if ttl is not None:
            level, name = (
                (socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS)
                if self.v6
                else (socket.IPPROTO_IP, socket.IP_TTL)
            )
            self.sock.setsockopt(level, name, ttl)
        packet = icmp_wire.build_echo(self.ident, seq, payload, v6=self.v6)
        self.sock.sendto(packet, (address, 0))

    def receive(self, until: float) -> list[tuple[Reply, float]]:
        """Every reply for this socket's echo id that arrives before monotonic ``until``
        (returns as soon as at least one came), each with its arrival time."""
        got: list[tuple[Reply, float]] = []
        while not got:
            wait = max(until - time.monotonic(), 0.0)  # 0: still read what already came
            readable, _w, errored = select.select([self.sock], [], [self.sock], wait)
            if not (readable or errored):
                break
            got += self._drain()
            if wait == 0.0:
                break
        return got

    def _drain(self) -> list[tuple[Reply, float]]:
        got: list[tuple[Reply, float]] = []
        for _ in range(256):  # bounded: a flood of foreign ICMP must not hold us here
            try:
                data, sender = self.sock.recvfrom(_RECV_SIZE)
            except BlockingIOError:
                break
            except OSError as exc:  # a pending error: read it from the error queue
                if exc.errno not in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ECONNREFUSED):
                    raise
                continue
            reply = self._parse(data, sender[0])
            if reply is not None:
                got.append((reply, time.monotonic()))
        if self.method == "dgram":
            got += self._drain_errors()
        return got

    def _parse(self, data: bytes, sender: str) -> Reply | None:
        try:
            if self.method == "raw" and not self.v6:
                reply = icmp_wire.parse_ipv4_packet(data)
            else:
                reply = icmp_wire.parse_icmp(data, sender, v6=self.v6)
        except ParseError:
            return None  # not for us (a raw socket sees all ICMP) or garbage
        if reply.kind == "other" or reply.ident is None:
            return None
        # A dgram socket only receives its own replies, and the kernel rewrote their id.
        if self.method == "raw" and reply.ident != self.ident:
            return None
        return reply

    def _drain_errors(self) -> list[tuple[Reply, float]]:
        """ICMP errors of a ping socket: the control message names the sender, the data is
        our own echo request (so its sequence number says which probe it was)."""
        got: list[tuple[Reply, float]] = []
        for _ in range(256):
            try:
                data, ancillary, _flags, _addr = self.sock.recvmsg(
                    _RECV_SIZE, 512, socket.MSG_ERRQUEUE
                )
            except (BlockingIOError, InterruptedError):
                break
            for _level, _type, cmsg in ancillary:
                try:
                    reply = icmp_wire.parse_extended_error(cmsg)
                except ParseError:
                    continue
                if len(data) >= 8 and reply.kind != "other":
                    seq = int.from_bytes(data[6:8], "big")
                    got.append((_with_seq(reply, self.ident, seq), time.monotonic()))
        return got


def _with_seq(reply: Reply, ident: int, seq: int) -> Reply:
    return Reply(reply.kind, reply.sender, reply.icmp_type, reply.code, ident, seq)

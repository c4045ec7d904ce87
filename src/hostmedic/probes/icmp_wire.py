"""ICMP on the wire, pure: echo requests to send, and what came back.

Three shapes of reply reach the probes: a raw IPv4 socket delivers the whole IP packet, a
raw ICMPv6 socket and an unprivileged ICMP ("ping") socket deliver the ICMP message alone,
and an error reported through ``IP_RECVERR``/``IPV6_RECVERR`` arrives as a
``sock_extended_err`` control message naming the router that sent it. Each parser returns
a :class:`Reply` or raises :class:`ParseError` (truncated, not ICMP, garbage).

An ICMP error quotes the start of the packet that caused it; for our own echo requests
that quote holds the echo id and sequence, which is how a time-exceeded from hop *n* is
matched to the probe sent with TTL *n*. For a TCP SYN the quote holds the ports.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

from hostmedic.errors import ParseError

ECHO_REQUEST4, ECHO_REPLY4 = 8, 0
ECHO_REQUEST6, ECHO_REPLY6 = 128, 129
UNREACH4, TIME_EXCEEDED4 = 3, 11
UNREACH6, TIME_EXCEEDED6 = 1, 3
SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6 = 2, 3
_ICMP_HEADER = struct.Struct("!BBHHH")
_EXTENDED_ERR = struct.Struct("=IBBBBII")

# Code → reason name for destination unreachable (RFC 792/1812 for v4, RFC 4443 for v6).
_UNREACH4_REASONS = {
    0: "net",
    1: "host",
    2: "protocol",
    3: "port",
    4: "frag_needed",
    5: "source_route",
    6: "net_unknown",
    7: "host_unknown",
    9: "admin_prohibited",
    10: "admin_prohibited",
    11: "net",
    12: "host",
    13: "admin_prohibited",
    14: "host_precedence",
    15: "precedence_cutoff",
}
_UNREACH6_REASONS = {
    0: "no_route",
    1: "admin_prohibited",
    2: "beyond_scope",
    3: "address",
    4: "port",
    5: "source_policy",
    6: "reject_route",
}


@dataclass(frozen=True, slots=True)
class Reply:
    """One ICMP message that concerns us.

    ``kind``: ``echo_reply``, ``ttl_exceeded``, ``unreachable`` or ``other``. For echo
    replies ``ident``/``seq`` are the reply's own; for errors they come from the quoted
    echo request (None when the quote is not an echo, e.g. a TCP SYN: then ``quoted_ports``
    holds its source and destination ports). ``sender`` is who sent the message.
    """

    kind: str
    sender: str
    icmp_type: int
    code: int
    ident: int | None = None
    seq: int | None = None
    quoted_ports: tuple[int, int] | None = None
    quoted_destination: str | None = None

    @property
    def reason(self) -> str:
        """The unreachable code's name (``port``, ``admin_prohibited``…), else ``""``."""
        if self.kind != "unreachable":
            return ""
        table = _UNREACH6_REASONS if ":" in self.sender else _UNREACH4_REASONS
        return table.get(self.code, f"code_{self.code}")


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


def build_echo(ident: int, seq: int, payload: bytes, *, v6: bool = False) -> bytes:
    """An echo request. The checksum is filled in for IPv4; the kernel computes it for
    ICMPv6 (it needs the pseudo-header) and for unprivileged ping sockets."""
    kind = ECHO_REQUEST6 if v6 else ECHO_REQUEST4
    header = _ICMP_HEADER.pack(kind, 0, 0, ident & 0xFFFF, seq & 0xFFFF)
    if v6:
        return header + payload
    csum = checksum(header + payload)
    return _ICMP_HEADER.pack(kind, 0, csum, ident & 0xFFFF, seq & 0xFFFF) + payload


def _ipv4_header(data: bytes) -> tuple[int, int, str, str]:
    """(header length, protocol, source, destination) of an IPv4 header."""
    if len(data) < 20 or data[0] >> 4 != 4:
        raise ParseError("not an IPv4 header")
    ihl = (data[0] & 0x0F) * 4
    if ihl < 20 or len(data) < ihl:
        raise ParseError("truncated IPv4 header")
    return ihl, data[9], socket.inet_ntoa(data[12:16]), socket.inet_ntoa(data[16:20])


def _quote(inner: bytes, v6: bool) -> dict[str, object]:
    """What an ICMP error quotes: our echo's id/seq, or a TCP/UDP segment's ports."""
    if v6:
        if len(inner) < 40 or inner[0] >> 4 != 6:
            raise ParseError("quoted packet is not IPv6")
        proto, dst, body = inner[6], str(ipaddress.IPv6Address(inner[24:40])), inner[40:]
        echo = ECHO_REQUEST6
        icmp_proto = 58
    else:
        ihl, proto, _src, dst = _ipv4_header(inner)
        body, echo, icmp_proto = inner[ihl:], ECHO_REQUEST4, 1
    out: dict[str, object] = {"quoted_destination": dst}
    if proto == icmp_proto and len(body) >= 8 and body[0] == echo:
        out["ident"], out["seq"] = struct.unpack("!HH", body[4:8])
    elif proto in (6, 17) and len(body) >= 4:
        out["quoted_ports"] = struct.unpack("!HH", body[:4])
    return out


def parse_icmp(message: bytes, sender: str, *, v6: bool = False) -> Reply:
    """Parse one ICMP message (no IP header in front) received from ``sender``."""
    if len(message) < 8:
        raise ParseError(f"ICMP message of {len(message)} bytes")
    icmp_type, code, _csum, ident, seq = _ICMP_HEADER.unpack_from(message)
    echo_reply, unreach, exceeded = (
        (ECHO_REPLY6, UNREACH6, TIME_EXCEEDED6) if v6 else (ECHO_REPLY4, UNREACH4, TIME_EXCEEDED4)
    )
    if icmp_type == echo_reply:
        return Reply("echo_reply", sender, icmp_type, code, ident, seq)
    if icmp_type in (unreach, exceeded):
        kind = "unreachable" if icmp_type == unreach else "ttl_exceeded"
        quote = _quote(message[8:], v6)
        return Reply(kind, sender, icmp_type, code, **quote)  # type: ignore[arg-type]
    return Reply("other", sender, icmp_type, code)


def parse_ipv4_packet(packet: bytes) -> Reply:
    """Parse what a raw IPv4 ICMP socket delivers: the IP header, then the ICMP message."""
    ihl, proto, source, _dst = _ipv4_header(packet)
    if proto != 1:
        raise ParseError(f"IP protocol {proto} is not ICMP")
    return parse_icmp(packet[ihl:], source)


def parse_extended_error(data: bytes) -> Reply:
    """Parse an ``IP_RECVERR``/``IPV6_RECVERR`` control message (``sock_extended_err``
    followed by the offender's sockaddr). Only ICMP-originated errors are accepted;
    ``ident``/``seq`` are left for the caller (it knows which probe the socket carried)."""
    if len(data) < _EXTENDED_ERR.size:
        raise ParseError("truncated sock_extended_err")
    _errno, origin, icmp_type, code, _pad, _info, _data = _EXTENDED_ERR.unpack_from(data)
    offender = data[_EXTENDED_ERR.size :]
    if origin == SO_EE_ORIGIN_ICMP and len(offender) >= 8:
        sender = socket.inet_ntoa(offender[4:8])
        v6 = False
    elif origin == SO_EE_ORIGIN_ICMP6 and len(offender) >= 24:
        sender = str(ipaddress.IPv6Address(offender[8:24]))
        v6 = True
    else:
        raise ParseError(f"error origin {origin} is not an ICMP message")
    unreach, exceeded = (UNREACH6, TIME_EXCEEDED6) if v6 else (UNREACH4, TIME_EXCEEDED4)
    kind = {unreach: "unreachable", exceeded: "ttl_exceeded"}.get(icmp_type, "other")
    return Reply(kind, sender, icmp_type, code)

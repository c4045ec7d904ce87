"""DNS messages (RFC 1035), pure: an A/AAAA query, and the answer section of a response.

Just enough of the protocol to ask a resolver the operator named what it says a name is,
and compare that with the system resolver (seed 004 "本地 DNS 劫持"). Parsing is defensive:
every length is checked, compression pointers may only point backwards and at most 32 are
followed, so a hostile or truncated response is a :class:`ParseError`, never a hang.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from hostmedic.errors import ParseError

QTYPES = {"A": 1, "AAAA": 28}
CNAME = 5
CLASS_IN = 1
RCODES = {
    0: "NOERROR",
    1: "FORMERR",
    2: "SERVFAIL",
    3: "NXDOMAIN",
    4: "NOTIMP",
    5: "REFUSED",
}
_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_MAX_POINTERS = 32


@dataclass(frozen=True, slots=True)
class DnsResponse:
    """The parts of a response the probe keeps: id, rcode name, truncation, the addresses
    of the asked type and the CNAME chain, in answer order."""

    ident: int
    rcode: str
    truncated: bool
    addresses: tuple[str, ...]
    cnames: tuple[str, ...]
    question: str


def encode_name(name: str) -> bytes:
    """``www.example.test`` → length-prefixed labels (IDNA for non-ASCII names)."""
    labels = [label for label in name.rstrip(".").split(".") if label]
    out = b""
    for label in labels:
        raw = label.encode("idna") if not label.isascii() else label.encode("ascii")
        if not 0 < len(raw) < 64:
            raise ParseError(f"bad DNS label {label!r}")
        out += bytes([len(raw)]) + raw
    if len(out) > 254:
        raise ParseError("DNS name too long")
    return out + b"\0"


def build_query(ident: int, name: str, rtype: str) -> bytes:
    """A recursive query for ``name``/``rtype`` (A or AAAA) with id ``ident``."""
    header = _HEADER.pack(ident & 0xFFFF, 0x0100, 1, 0, 0, 0)  # RD set
    return header + encode_name(name) + struct.pack("!HH", QTYPES[rtype], CLASS_IN)


def read_name(message: bytes, offset: int) -> tuple[str, int]:
    """Decode the (possibly compressed) name at ``offset``; returns it and the offset
    just after it in the original position."""
    labels: list[str] = []
    end: int | None = None
    pointers = 0
    while True:
        if offset >= len(message):
            raise ParseError("DNS name runs past the message")
        length = message[offset]
        if length & 0xC0 == 0xC0:
            if offset + 1 >= len(message):
                raise ParseError("truncated DNS pointer")
            target = ((length & 0x3F) << 8) | message[offset + 1]
            pointers += 1
            if target >= offset or pointers > _MAX_POINTERS:
                raise ParseError("DNS pointer loop")
            if end is None:
                end = offset + 2
            offset = target
            continue
        if length & 0xC0:
            raise ParseError(f"bad DNS label type {length:#x}")
        offset += 1
        if length == 0:
            break
        if offset + length > len(message):
            raise ParseError("DNS label runs past the message")
        labels.append(message[offset : offset + length].decode("ascii", "replace"))
        offset += length
    return ".".join(labels), end if end is not None else offset


def parse_response(message: bytes, rtype: str) -> DnsResponse:
    """Parse a response to an A/AAAA query."""
    if len(message) < _HEADER.size:
        raise ParseError("DNS message shorter than its header")
    ident, flags, qdcount, ancount, _ns, _ar = _HEADER.unpack_from(message)
    if not flags & 0x8000:
        raise ParseError("not a DNS response")
    offset = _HEADER.size
    question = ""
    for _ in range(qdcount):
        question, offset = read_name(message, offset)
        offset += 4
    wanted = QTYPES[rtype]
    addresses: list[str] = []
    cnames: list[str] = []
    for _ in range(ancount):
        _owner, offset = read_name(message, offset)
        if offset + _RR.size > len(message):
            raise ParseError("truncated DNS record")
        kind, klass, _ttl, length = _RR.unpack_from(message, offset)
        offset += _RR.size
        rdata = message[offset : offset + length]
        if len(rdata) != length:
            raise ParseError("truncated DNS record data")
        if klass == CLASS_IN and kind == wanted and length == (4 if wanted == 1 else 16):
            addresses.append(str(ipaddress.ip_address(rdata)))
        elif klass == CLASS_IN and kind == CNAME:
            cnames.append(read_name(message, offset)[0])
        offset += length
    return DnsResponse(
        ident=ident,
        rcode=RCODES.get(flags & 0x0F, f"RCODE{flags & 0x0F}"),
        truncated=bool(flags & 0x0200),
        addresses=tuple(addresses),
        cnames=tuple(cnames),
        question=question,
    )

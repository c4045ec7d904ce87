"""Pure helpers for counting non-TCP IP traffic from an AF_PACKET TPACKET_V3 ring.

The kernel keeps no per-socket byte counters for UDP and ICMP, so hostmedic counts those
packets itself. This module holds the pure half: :func:`build_filter` makes the classic BPF
program that keeps TCP and non-IP frames out of the ring (in the kernel) and snaps every
accepted frame to its headers, :func:`account_block` folds one retired ring block into a
``{flow key: [packets, ip_bytes]}`` dict, and :func:`decode_key` turns a raw key into a
:class:`FlowKey` at report time. Keys stay raw ``bytes`` while counting because decoding
every packet was measured far too slow for a flood.

Key layout (bytes): ifindex (4, native order) | tpacket pkttype (1) | IP version (1) |
L4 protocol (1) | source address | destination address (4+4 or 16+16) | L4 tail (4).
The tail is source+destination port for UDP/UDP-Lite/SCTP/DCCP; type, code and echo id for
ICMP/ICMPv6 (id zero unless echo); zero for other protocols and non-first fragments.
Byte counts are IP lengths (IPv4 total length, IPv6 payload length + 40), as iftop counts.
"""

from __future__ import annotations

import ipaddress
import struct
import sys
from collections import Counter
from dataclasses import dataclass

from hostmedic.errors import ParseError

PACKET_OUTGOING = 4
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
IPPROTO_TCP = 6

# Classic BPF opcodes (linux/filter.h) and Linux extension offsets.
_LD_W_ABS, _LD_B_ABS = 0x20, 0x30
_ALU_AND_K, _ALU_LSH_K, _ALU_ADD_K = 0x54, 0x64, 0x04
_JEQ_K, _RET_K, _RET_A = 0x15, 0x06, 0x16
SKF_AD_PROTOCOL = -0x1000  # SKF_AD_OFF + SKF_AD_PROTOCOL: A = ntohs(skb->protocol)
SKF_NET_OFF = -0x100000  # loads relative to the network header, whatever the link layer
# Room left for a link-layer header in front of the IP header (Ethernet + one VLAN tag).
L2_ALLOWANCE = 18
MIN_SNAPLEN = L2_ALLOWANCE + 60 + 8  # an IPv4 header with maximal options plus 8 L4 bytes

_PORT_PROTOS = frozenset({17, 33, 132, 136})  # UDP, DCCP, SCTP, UDP-Lite
_ECHO_TYPES = {1: (0, 8), 58: (128, 129)}
_V6_EXT = frozenset({0, 43, 60})  # hop-by-hop, routing, destination options
_ZERO4 = bytes(4)

# tpacket_block_desc: num_pkts @12, offset_to_first_pkt @16, blk_len @20.
_BLOCK = struct.Struct("<12xIII")
# tpacket3_hdr + sockaddr_ll: next_offset, snaplen, mac, net, sll_protocol (raw), pkttype.
_FRAME = struct.Struct("<I8xI8xHH22xH6xB")
_FRAME_MIN = 68  # TPACKET3_HDRLEN: aligned tpacket3_hdr + sockaddr_ll
_NET_STD = 96  # tp_net for every link header up to 28 bytes: TPACKET_ALIGN(68 + 16)
_P4, _P6 = 0x0008, 0xDD86  # ETH_P_IP / ETH_P_IPV6 as the raw big-endian field reads in "<H"
_TRUNC, _TCP, _BAD = 0, 1, 2


def build_filter(snaplen: int = 256) -> bytes:
    """Return the ``struct sock_filter`` array (bytes) for an ETH_P_ALL packet socket.

    Accepts IPv4 and IPv6 frames whose L4 protocol is not TCP and drops everything else
    (TCP, ARP, other EtherTypes) in the kernel. Protocol and header loads use the kernel's
    ``skb->protocol`` and network-header-relative offsets, so it works on Ethernet, loopback
    and header-less links (tun, WireGuard) alike. IPv4 frames are snapped to IHL + 8 bytes
    plus the link-layer allowance; IPv6 frames whose next header is UDP or ICMPv6 to 40 + 8
    plus the allowance; other IPv6 frames (extension headers) get ``snaplen`` so user space
    can walk them. IPv4 fragments carry the datagram's protocol, so TCP fragments are
    dropped and other fragments kept. Raises ValueError when ``snaplen`` is too small to
    hold the IPv4 case.
    """
    if not MIN_SNAPLEN <= snaplen <= 0xFFFF:
        raise ValueError(f"snaplen must be in {MIN_SNAPLEN}..65535, got {snaplen}")
    drop, v4, v6, v6_short = "drop", "v4", "v6", "v6_short"
    prog: list[tuple[int | str, int | str, int | str, int]] = [
        (_LD_W_ABS, 0, 0, SKF_AD_PROTOCOL),
        (_JEQ_K, v4, 0, ETH_P_IP),
        (_JEQ_K, v6, drop, ETH_P_IPV6),
        ("v4", 0, 0, 0),  # label marker
        (_LD_B_ABS, 0, 0, SKF_NET_OFF + 9),
        (_JEQ_K, drop, 0, IPPROTO_TCP),
        (_LD_B_ABS, 0, 0, SKF_NET_OFF),
        (_ALU_AND_K, 0, 0, 0x0F),
        (_ALU_LSH_K, 0, 0, 2),
        (_ALU_ADD_K, 0, 0, 8 + L2_ALLOWANCE),
        (_RET_A, 0, 0, 0),
        ("v6", 0, 0, 0),
        (_LD_B_ABS, 0, 0, SKF_NET_OFF + 6),
        (_JEQ_K, drop, 0, IPPROTO_TCP),
        (_JEQ_K, v6_short, 0, 17),
        (_JEQ_K, v6_short, 0, 58),
        (_RET_K, 0, 0, snaplen),
        ("v6_short", 0, 0, 0),
        (_RET_K, 0, 0, 40 + 8 + L2_ALLOWANCE),
        ("drop", 0, 0, 0),
        (_RET_K, 0, 0, 0),
    ]
    labels: dict[str, int] = {}
    code: list[tuple[int, str | int, str | int, int]] = []
    for op, jt, jf, k in prog:
        if isinstance(op, str):
            labels[op] = len(code)
        else:
            code.append((op, jt, jf, k))
    out = bytearray()
    for pc, (op, jt, jf, k) in enumerate(code):
        jt_n = labels[jt] - pc - 1 if isinstance(jt, str) else jt
        jf_n = labels[jf] - pc - 1 if isinstance(jf, str) else jf
        out += struct.pack("=HBBI", op, jt_n, jf_n, k & 0xFFFFFFFF)
    return bytes(out)


@dataclass(frozen=True, slots=True)
class BlockStats:
    """What :func:`account_block` did with one block's frames (all counts are packets)."""

    packets: int  # frames counted into flows (including folded ones)
    folded_packets: int  # counted, but into the overflow because ``limit`` keys existed
    folded_bytes: int
    truncated: int  # skipped: the snapped frame ends before the headers it needs
    tcp_skipped: int  # skipped: TCP found behind IPv6 extension headers
    malformed: int  # skipped: not IPv4/IPv6, or a header field is impossible
    fast: bool  # the whole block went through the columnar fast path


@dataclass(frozen=True, slots=True)
class FlowKey:
    """A decoded flow key; ports are 0 for ICMP, which uses the ``icmp_*`` fields instead."""

    ifindex: int
    outgoing: bool
    ip_version: int
    protocol: int
    src_ip: str
    dst_ip: str
    src_port: int
    dst_port: int
    icmp_type: int | None = None
    icmp_code: int | None = None
    icmp_echo_id: int | None = None


def decode_key(key: bytes) -> FlowKey:
    """Decode a raw flow key from :func:`account_block`; raises ParseError on a bad key."""
    if len(key) not in (19, 43) or key[5] != (4 if len(key) == 19 else 6):
        raise ParseError(f"not a flow key: {key.hex()}")
    alen = 4 if key[5] == 4 else 16
    ifindex = int.from_bytes(key[0:4], sys.byteorder, signed=True)
    proto = key[6]
    src = str(ipaddress.ip_address(key[7 : 7 + alen]))
    dst = str(ipaddress.ip_address(key[7 + alen : 7 + 2 * alen]))
    tail = key[7 + 2 * alen :]
    common = (ifindex, key[4] == PACKET_OUTGOING, key[5], proto, src, dst)
    if proto in _ECHO_TYPES:
        echo = tail[0] in _ECHO_TYPES[proto]
        eid = int.from_bytes(tail[2:4], "big") if echo else None
        return FlowKey(*common, 0, 0, tail[0], tail[1], eid)
    return FlowKey(*common, int.from_bytes(tail[0:2], "big"), int.from_bytes(tail[2:4], "big"))


def _tail(buf: bytes | bytearray | memoryview, proto: int, l4: int, end: int) -> bytes | int:
    # L4 part of the key for an L4 header starting at ``l4`` (``end`` = end of captured data).
    if proto in _PORT_PROTOS:
        return bytes(buf[l4 : l4 + 4]) if l4 + 4 <= end else _TRUNC
    if proto in _ECHO_TYPES:
        if l4 + 2 > end:
            return _TRUNC
        if buf[l4] not in _ECHO_TYPES[proto]:
            return bytes(buf[l4 : l4 + 2]) + b"\0\0"
        return bytes(buf[l4 : l4 + 2]) + bytes(buf[l4 + 4 : l4 + 6]) if l4 + 6 <= end else _TRUNC
    return _ZERO4


def _parse_ip4(buf: bytes | bytearray | memoryview, ip: int, end: int) -> tuple[bytes, int] | int:
    # Key body (version..tail) and IP length of the IPv4 packet at ``ip``, or a skip code.
    if ip + 20 > end:
        return _TRUNC
    vihl = buf[ip]
    ihl = (vihl & 0x0F) * 4
    if vihl >> 4 != 4 or ihl < 20:
        return _BAD
    proto = buf[ip + 9]
    if proto == IPPROTO_TCP:
        return _TCP
    if (buf[ip + 6] & 0x1F) or buf[ip + 7]:  # non-first fragment: no L4 header here
        tail = _ZERO4
    else:
        found = _tail(buf, proto, ip + ihl, end)
        if isinstance(found, int):
            return found
        tail = found
    body = bytes((4, proto)) + bytes(buf[ip + 12 : ip + 20]) + tail
    return body, (buf[ip + 2] << 8) | buf[ip + 3]


def _parse_ip6(buf: bytes | bytearray | memoryview, ip: int, end: int) -> tuple[bytes, int] | int:
    # As _parse_ip4 for IPv6, walking extension headers up to the L4 protocol.
    if ip + 40 > end:
        return _TRUNC
    if buf[ip] >> 4 != 6:
        return _BAD
    nh, off, first = buf[ip + 6], ip + 40, True
    for _ in range(8):
        if nh in _V6_EXT or nh == 51:  # AH counts its length in 4-byte units
            if off + 2 > end:
                return _TRUNC
            size = (buf[off + 1] + 2) * 4 if nh == 51 else (buf[off + 1] + 1) * 8
            nh, off = buf[off], off + size
        elif nh == 44:  # fragment header
            if off + 8 > end:
                return _TRUNC
            first = first and not ((buf[off + 2] << 8 | buf[off + 3]) & 0xFFF8)
            nh, off = buf[off], off + 8
        else:
            break
    if nh == IPPROTO_TCP:
        return _TCP
    tail = _tail(buf, nh, off, end) if first else _ZERO4
    if isinstance(tail, int):
        return tail
    body = bytes((6, nh)) + bytes(buf[ip + 8 : ip + 40]) + tail
    return body, ((buf[ip + 4] << 8) | buf[ip + 5]) + 40


class _Acc:
    """Mutable per-block tallies; turned into a BlockStats at the end of account_block."""

    __slots__ = ("bad", "fast", "fb", "fp", "packets", "tcp", "trunc")

    def __init__(self) -> None:
        self.packets = self.fp = self.fb = self.trunc = self.tcp = self.bad = 0
        self.fast = False

    def add(self, flows: dict[bytes, list[int]], limit: int, key: bytes, n: int, ln: int) -> None:
        self.packets += n
        entry = flows.get(key)
        if entry is not None:
            entry[0] += n
            entry[1] += n * ln
        elif len(flows) < limit:
            flows[key] = [n, n * ln]
        else:
            self.fp += n
            self.fb += n * ln

    def skip(self, code: int, n: int) -> None:
        if code == _TRUNC:
            self.trunc += n
        elif code == _TCP:
            self.tcp += n
        else:
            self.bad += n


def account_block(
    block: bytes | bytearray | memoryview,
    flows: dict[bytes, list[int]],
    limit: int,
    *,
    fast: bool = True,
) -> BlockStats:
    """Count every frame of one retired TPACKET_V3 block into ``flows`` (updated in place).

    ``flows`` maps raw keys (see the module docstring) to ``[packets, ip_bytes]``; once it
    holds ``limit`` keys, packets of new keys are only added to the returned folded counts.
    Frames that cannot be classified are skipped and counted in the stats. ``block`` is
    never modified. Raises ParseError when the block's own framing (packet count, offsets)
    does not fit in ``block``; frames before the bad one are then already counted. ``fast``
    False forces the per-frame path (used by tests to cross-check the columnar one).
    """
    mv = memoryview(block).cast("B")
    size = len(mv)
    if size < 24:
        raise ParseError(f"TPACKET_V3 block of {size} bytes is shorter than its descriptor")
    num, first, blk_len = _BLOCK.unpack_from(mv, 0)
    acc = _Acc()
    if num and not (fast and _fast_block(mv, num, first, blk_len, flows, limit, acc)):
        _slow_block(mv, num, first, flows, limit, acc)
    return BlockStats(acc.packets, acc.fp, acc.fb, acc.trunc, acc.tcp, acc.bad, acc.fast)


def _slow_block(
    mv: memoryview, num: int, off: int, flows: dict[bytes, list[int]], limit: int, acc: _Acc
) -> None:
    size = len(mv)
    frame = _FRAME.unpack_from
    for i in range(num):
        if off < 0 or off + _FRAME_MIN > size:
            raise ParseError(f"frame {i} header at offset {off} lies outside the block")
        nxt, snap, mac, net, l3, pkttype = frame(mv, off)
        end = off + mac + snap
        if end > size or mac < _FRAME_MIN or net < mac:
            raise ParseError(f"frame {i} data (mac {mac}, snaplen {snap}) outside the block")
        if l3 == _P4:
            res = _parse_ip4(mv, off + net, end)
        elif l3 == _P6:
            res = _parse_ip6(mv, off + net, end)
        else:
            res = _BAD
        if isinstance(res, int):
            acc.skip(res, 1)
        else:
            acc.add(
                flows, limit, bytes(mv[off + 52 : off + 56]) + bytes((pkttype,)) + res[0], 1, res[1]
            )
        if nxt == 0:
            if i != num - 1:
                raise ParseError(f"block claims {num} frames but the chain ends at {i + 1}")
            break
        off += nxt


# Columnar fast path. A flood fills blocks with equally sized frames; once every frame is
# proven to sit at first + i*stride, whole columns can be checked, blanked (per-packet
# fields such as IP id and checksums) and counted with C-level slicing and Counter, and
# Python only parses each *distinct* (meta, header) blob once.
_FAST = {  # l3 raw -> (blob length, columns to blank, nh/proto column allowed values)
    _P4: (28, (1, 4, 5, 8, 10, 11, 26, 27), None),
    _P6: (48, (1, 2, 3, 7, 46, 47), (17, 58)),
}
_FAST_ICMP = {_P4: (9, 1, (22, 23)), _P6: (6, 58, (42, 43))}  # proto col, ICMP, checksum
_STRUCTS: dict[tuple[int, int], struct.Struct] = {}


def _column(region: bytearray, stride: int, off: int) -> bytearray:
    return region[off::stride]


def _fast_block(
    mv: memoryview,
    num: int,
    first: int,
    blk_len: int,
    flows: dict[bytes, list[int]],
    limit: int,
    acc: _Acc,
) -> bool:
    if num < 2 or first + _FRAME_MIN > len(mv):
        return False
    stride, snap, mac, net, l3, _pkttype = _FRAME.unpack_from(mv, first)
    spec = _FAST.get(l3)
    if spec is None or net != _NET_STD or stride < 8:
        return False
    blob_len, blank, allowed = spec
    ip_end = _NET_STD + blob_len
    end = first + num * stride
    if end != blk_len or end > len(mv) or not _FRAME_MIN <= mac <= net:
        return False
    if not ip_end <= mac + snap <= stride:  # the blob is captured data, inside the frame
        return False
    region = bytearray(mv[first:end])
    # Frame i's next_offset is stride for all but the last (0): this proves the layout.
    want = stride.to_bytes(4, "little")
    for b in range(4):
        col = _column(region, stride, b)
        if col[-1] or col[:-1].count(want[b]) != num - 1:
            return False
    for b in (12, 13, 14, 15, 24, 25, 26, 27, 50, 51):  # snaplen, mac, net, l3 protocol
        col = _column(region, stride, b)
        if col.count(col[0]) != num:
            return False
    ip = _NET_STD
    if l3 == _P4:
        col = _column(region, stride, ip)
        if col.count(0x45) != num:  # IHL 5 everywhere puts L4 at a fixed offset
            return False
    if allowed is not None:
        col = _column(region, stride, ip + 6)
        if sum(col.count(v) for v in allowed) != num:
            return False
    pcol, icmp, csum = _FAST_ICMP[l3]
    col = _column(region, stride, ip + pcol)
    cols = blank + csum if col.count(icmp) == num else blank
    zeros = bytes(num)
    for c in cols:
        region[ip + c :: stride] = zeros
    layout = _STRUCTS.get((stride, blob_len))
    if layout is None:
        if len(_STRUCTS) > 64:  # strides are few in practice; never let odd blocks grow this
            _STRUCTS.clear()
        layout = struct.Struct(f"<48x12s{ip - 60}x{blob_len}s{stride - ip - blob_len}x")
        _STRUCTS[(stride, blob_len)] = layout
    counts = Counter(layout.iter_unpack(region))
    parse = _parse_ip4 if l3 == _P4 else _parse_ip6
    for (meta, blob), n in counts.items():
        res = parse(blob, 0, blob_len)
        if isinstance(res, int):
            acc.skip(res, n)
        else:
            acc.add(flows, limit, meta[4:8] + meta[10:11] + res[0], n, res[1])
    acc.fast = True
    return True

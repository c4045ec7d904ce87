"""Unit tests for the pure packet-accounting helpers (filter program, block walking, keys).

Frames come from ``tests/fixtures/packets/frames.pcap`` (hand-built, checked with tcpdump)
and are wrapped into TPACKET_V3 blocks laid out exactly like the kernel's (compare the real
blocks recorded in the same folder). The filter is run through a tiny cBPF interpreter
covering the opcodes ``build_filter`` emits, so its verdicts and snap lengths decide what
reaches ``account_block`` here as in the kernel.
"""

from __future__ import annotations

import contextlib
import ipaddress
import struct
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostmedic.collectors.packets import (
    PACKET_OUTGOING,
    SKF_AD_PROTOCOL,
    SKF_NET_OFF,
    FlowKey,
    account_block,
    build_filter,
    decode_key,
)
from hostmedic.errors import ParseError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "packets"
sys.path.insert(0, str(FIXTURES))
from make_frames import csum, echo, eth, ip4, ip6, udp  # noqa: E402

A4, B4, A6, B6 = "198.18.0.1", "198.18.0.2", "2001:db8:b::1", "2001:db8:b::2"
HOST = 0
SNAPLEN = 256
PROG = build_filter(SNAPLEN)


def read_pcap(path: Path) -> list[bytes]:
    data = path.read_bytes()
    off, frames = 24, []
    while off < len(data):
        caplen = struct.unpack_from("=8xI", data, off)[0]
        frames.append(data[off + 16 : off + 16 + caplen])
        off += 16 + caplen
    return frames


FRAMES = read_pcap(FIXTURES / "frames.pcap")


def run_cbpf(prog: bytes, protocol: int, net: bytes) -> int:
    """Interpret the classic BPF subset build_filter uses; a failed load drops (returns 0)."""
    a = pc = 0
    insns = [struct.unpack_from("=HBBI", prog, i) for i in range(0, len(prog), 8)]
    while True:
        code, jt, jf, k = insns[pc]
        sk = k - (1 << 32) if k & 0x80000000 else k
        pc += 1
        if code == 0x20 and sk == SKF_AD_PROTOCOL:
            a = protocol
        elif code == 0x30 and SKF_NET_OFF <= sk < SKF_NET_OFF + 0x10000:
            if sk - SKF_NET_OFF >= len(net):
                return 0
            a = net[sk - SKF_NET_OFF]
        elif code == 0x54:
            a &= k
        elif code == 0x64:
            a = (a << k) & 0xFFFFFFFF
        elif code == 0x04:
            a = (a + k) & 0xFFFFFFFF
        elif code == 0x15:
            pc += jt if a == k else jf
        elif code == 0x06:
            return k
        elif code == 0x16:
            return a
        else:
            raise AssertionError(f"unexpected opcode {code:#x}")


def verdict(frame: bytes) -> int:
    return run_cbpf(PROG, struct.unpack_from("!H", frame, 12)[0], frame[14:])


def make_block(frames: list[tuple[bytes, int, int]], *, filtered: bool = True) -> bytes:
    """A retired TPACKET_V3 block holding ``(frame, pkttype, ifindex)`` as the kernel lays it.

    With ``filtered`` each frame first goes through the filter (dropped or snapped).
    """
    body = bytearray()
    offsets: list[int] = []
    for frame, pkttype, ifindex in frames:
        snap = len(frame)
        if filtered:
            snap = min(snap, verdict(frame))
            if snap == 0:
                continue
        hdr = struct.pack("=IIIIIIHH20x", 0, 1, 2, snap, len(frame), 1, 82, 96)
        sll = struct.pack("=H2siHBB8s", 17, frame[12:14], ifindex, 1, pkttype, 6, frame[6:12])
        raw = (hdr + sll).ljust(82, b"\0") + frame[:snap]
        offsets.append(len(body))
        body += raw.ljust((len(raw) + 7) & ~7, b"\0")
    for i in range(len(offsets) - 1):
        struct.pack_into("=I", body, offsets[i], offsets[i + 1] - offsets[i])
    head = struct.pack("=IIIIII", 2, 48, 1, len(offsets), 48, 48 + len(body)).ljust(48, b"\0")
    return head + bytes(body)


def key(v: int, proto: int, src: str, dst: str, tail: bytes, *, pkttype: int = HOST) -> bytes:
    addrs = ipaddress.ip_address(src).packed + ipaddress.ip_address(dst).packed
    return struct.pack("=iBBB", 2, pkttype, v, proto) + addrs + tail


def ports(sport: int, dport: int) -> bytes:
    return struct.pack("!HH", sport, dport)


def count(frames: list[bytes], limit: int = 1000, **kw: bool) -> tuple[dict, object]:
    flows: dict[bytes, list[int]] = {}
    stats = account_block(make_block([(f, HOST, 2) for f in frames]), flows, limit, **kw)
    return flows, stats


# --- filter ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (0, 46),  # IPv4 UDP: 18 link + 20 IP + 8
        (1, 66),  # IPv6 UDP: 18 + 40 + 8
        (2, 46),
        (3, 66),
        (4, 66),
        (5, 46),
        (6, 46),  # non-first UDP fragment: kept
        (7, SNAPLEN),  # extension header: user space walks it
        (8, SNAPLEN),
        (9, SNAPLEN),  # TCP hidden behind an extension header reaches user space
        (10, 50),  # IHL 6
        (11, 0),  # TCP
        (12, 0),  # ARP
        (13, 46),  # truncated header still passes: user space counts it as truncated
        (15, 46),  # GRE
        (16, 0),  # non-first TCP fragment
    ],
)
def test_filter_verdicts(index: int, expected: int) -> None:
    assert verdict(FRAMES[index]) == expected


def test_filter_ipv6_tcp_dropped_and_snaplen_bounds() -> None:
    tcp6 = ip6(6, bytes(20))
    assert verdict(tcp6) == 0
    assert verdict(eth(0x8100, bytes(40))) == 0  # unaccelerated VLAN tag: not IP for us
    with pytest.raises(ValueError):
        build_filter(40)
    assert len(build_filter(4096)) % 8 == 0


# --- recorded frames ---------------------------------------------------------------------


def test_recorded_frames_counted_exactly() -> None:
    flows, stats = count(FRAMES)
    echo4 = bytes((8, 0)) + struct.pack("!H", 0x1234)
    echo6 = bytes((128, 0)) + struct.pack("!H", 0x4321)
    assert flows == {
        key(4, 17, A4, B4, ports(40000, 53)): [1, 48],
        key(6, 17, A6, B6, ports(40001, 443)): [1, 78],
        key(4, 1, A4, B4, echo4): [1, 84],
        key(6, 58, A6, B6, echo6): [1, 64],
        key(6, 58, A6, "ff02::1:ff00:2", bytes((135, 0, 0, 0))): [1, 64],
        key(4, 17, A4, B4, ports(40002, 9000)): [1, 1500],
        key(4, 17, A4, B4, bytes(4)): [1, 120],  # non-first fragment: bytes under proto
        key(6, 17, A6, B6, ports(40003, 5353)): [1, 60],
        key(6, 17, A6, B6, bytes(4)): [1, 98],
        key(4, 17, A4, B4, ports(40004, 123)): [1, 80],
        key(4, 47, A4, B4, bytes(4)): [1, 44],
    }
    assert (stats.packets, stats.truncated, stats.tcp_skipped, stats.malformed) == (11, 1, 1, 1)
    assert not stats.fast


def test_frames_the_filter_drops_are_still_classified() -> None:
    flows: dict[bytes, list[int]] = {}
    block = make_block([(FRAMES[11], HOST, 2), (FRAMES[12], HOST, 2)], filtered=False)
    stats = account_block(block, flows, 10)
    assert flows == {}
    assert (stats.tcp_skipped, stats.malformed) == (1, 1)


def test_l4_header_cut_by_snaplen_is_truncated() -> None:
    frame = FRAMES[0][: 14 + 20 + 2]
    flows, stats = count([frame])
    assert flows == {} and stats.truncated == 1


def test_direction_and_interface_are_part_of_the_key() -> None:
    frame = FRAMES[0]
    flows: dict[bytes, list[int]] = {}
    account_block(make_block([(frame, PACKET_OUTGOING, 1), (frame, HOST, 1)]), flows, 10)
    decoded = sorted((decode_key(k).outgoing, decode_key(k).ifindex, v) for k, v in flows.items())
    assert decoded == [(False, 1, [1, 48]), (True, 1, [1, 48])]


def test_decode_key() -> None:
    flows, _ = count([FRAMES[0], FRAMES[3]])
    decoded = {decode_key(k) for k in flows}
    assert decoded == {
        FlowKey(2, False, 4, 17, A4, B4, 40000, 53),
        FlowKey(2, False, 6, 58, A6, B6, 0, 0, 128, 0, 0x4321),
    }
    for bad in (b"", bytes(19), key(4, 17, A4, B4, bytes(4))[:-1], bytes(43)):
        with pytest.raises(ParseError):
            decode_key(bad)


def test_fold_limit_counts_overflow() -> None:
    frames = [ip4(17, udp(1000 + i, 53, 10)) for i in range(10) for _ in range(2)]
    flows, stats = count(frames, limit=4)
    assert len(flows) == 4
    assert stats.folded_packets == 12 and stats.folded_bytes == 12 * 38
    assert sum(v[0] for v in flows.values()) + stats.folded_packets == 20
    again = dict(flows)
    account_block(make_block([(frames[0], HOST, 2)]), again, 4)  # known keys keep counting
    assert again[key(4, 17, A4, B4, ports(1000, 53))] == [3, 3 * 38]


# --- columnar fast path ------------------------------------------------------------------


def flood4(n: int, size: int = 64) -> list[tuple[bytes, int, int]]:
    out = []
    for i in range(n):
        frame = bytearray(ip4(17, udp(5000, 9, size), ident=i))
        frame[14 + 8] = 60 + i % 5  # TTL varies too
        out.append((bytes(frame), PACKET_OUTGOING, 3))
    return out


def both_paths(block: bytes) -> tuple[dict, dict, object]:
    fast: dict[bytes, list[int]] = {}
    slow: dict[bytes, list[int]] = {}
    stats = account_block(block, fast, 1000)
    slow_stats = account_block(block, slow, 1000, fast=False)
    assert fast == slow
    assert stats.packets == slow_stats.packets
    return fast, slow, stats


def test_fast_path_udp4_flood() -> None:
    flows, _, stats = both_paths(make_block(flood4(300)))
    assert stats.fast
    assert list(flows.values()) == [[300, 300 * 92]]


def test_fast_path_icmp_echo_flood_merges_sequence_numbers() -> None:
    frames = []
    for seq in range(200):
        frames.append((ip4(1, echo(8, 77, seq, 56)), PACKET_OUTGOING, 2))
        frames.append((ip4(1, echo(0, 77, seq, 56)), HOST, 2))
    flows, _, stats = both_paths(make_block(frames))
    assert stats.fast and sorted(flows.values()) == [[200, 200 * 84]] * 2


def test_fast_path_udp6_and_icmp6() -> None:
    frames = [(ip6(17, udp(7, 8, 100)), HOST, 2) for _ in range(50)]
    frames += [(ip6(58, echo(128, 5, s, 8)), HOST, 2) for s in range(50)]
    flows, _, stats = both_paths(make_block(frames))
    assert stats.fast and sorted(flows.values()) == [[50, 50 * 56], [50, 50 * 148]]


def test_uneven_frames_fall_back_to_the_slow_path() -> None:
    frames = [(ip4(17, udp(5000, 9, i % 7)), HOST, 2) for i in range(100)]
    flows, _, stats = both_paths(make_block(frames))
    assert not stats.fast and sum(v[0] for v in flows.values()) == 100


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.block")))
def test_real_kernel_blocks(name: str) -> None:
    block = (FIXTURES / name).read_bytes()
    num = struct.unpack_from("=12xI", block)[0]
    flows, _, stats = both_paths(block)
    assert stats.packets == num and stats.fast == name.startswith("flood")
    decoded = {decode_key(k): v for k, v in flows.items()}
    sizes = {d.protocol: v[1] // v[0] for d, v in decoded.items() if d.outgoing}
    if name.startswith("flood_udp4"):
        assert sizes[17] == 20 + 8 + 64
    elif name.startswith("flood_udp6"):
        assert sizes[17] == 40 + 8 + 64
    elif name.startswith("flood_icmp4"):
        assert sizes[1] == 84 and {d.icmp_type for d in decoded} == {0, 8}
    else:  # mixed: the 3000-byte datagram left as three fragments
        frag = [v for d, v in decoded.items() if d.protocol == 17 and d.dst_port == 0]
        assert frag == [[2, 1568]]


# --- hostile input -----------------------------------------------------------------------


def test_block_framing_errors() -> None:
    good = bytearray(make_block([(FRAMES[0], HOST, 2), (FRAMES[1], HOST, 2)]))
    with pytest.raises(ParseError):
        account_block(good[:20], {}, 10)
    lying = bytearray(good)
    struct.pack_into("=I", lying, 12, 5)  # claims five frames, chain has two
    with pytest.raises(ParseError):
        account_block(lying, {}, 10)
    outside = bytearray(good)
    struct.pack_into("=I", outside, 16, len(good) - 10)
    with pytest.raises(ParseError):
        account_block(outside, {}, 10)
    assert account_block(good, {}, 10).packets == 2


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=600), st.integers(0, 2**32 - 1), st.binary(max_size=400))
def test_random_bytes_raise_only_parse_error(data: bytes, num: int, body: bytes) -> None:
    with contextlib.suppress(ParseError):
        account_block(data, {}, 10)
    # Also behind a plausible descriptor, so frame walking and header parsing get exercised.
    head = struct.pack("=IIIIII", 2, 48, 1, num % 6, 48, 48 + len(body)).ljust(48, b"\0")
    with contextlib.suppress(ParseError):
        account_block(head + body, {}, 10)


FLOOD = make_block(flood4(40) + [(f, HOST, 2) for f in FRAMES])
UNIFORM = make_block(flood4(40))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.sampled_from([FLOOD, UNIFORM]),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8),
)
def test_mutated_blocks_agree_between_paths(base: bytes, flips: list[tuple[int, int]]) -> None:
    block = bytearray(base)
    for pos, value in flips:
        block[pos % len(block)] = value
    results = []
    for fast in (True, False):
        flows: dict[bytes, list[int]] = {}
        try:
            stats = account_block(bytes(block), flows, 10, fast=fast)
        except ParseError:
            results.append(None)
        else:
            results.append((flows, stats.packets, stats.truncated + stats.malformed))
    assert results[0] == results[1]


def test_checksum_helper_matches_known_vector() -> None:
    # Guards the fixture builder: RFC 1071 example words sum to 0xddf2 -> checksum 0x220d.
    assert csum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D

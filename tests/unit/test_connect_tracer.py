"""Pure tests of the connect tracer's pieces: instruction encoder, BTF reader, event decoder."""

from __future__ import annotations

import contextlib
import socket
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hostmedic.collectors import bpf
from hostmedic.collectors.btf import (
    KIND_ARRAY,
    KIND_INT,
    KIND_PTR,
    KIND_STRUCT,
    KIND_TYPEDEF,
    KIND_UNION,
    VMLINUX_BTF,
    parse_btf,
)
from hostmedic.collectors.connect_tracer import (
    SockLayout,
    build_program,
    layout_from_btf,
    parse_event,
)
from hostmedic.errors import ParseError

# -- instruction encoder ---------------------------------------------------------------------


def test_known_instructions_encode_to_known_bytes() -> None:
    assert bpf.assemble([bpf.mov_imm(bpf.R0, 0)]) == bytes.fromhex("b700000000000000")
    assert bpf.assemble([bpf.exit_()]) == bytes.fromhex("9500000000000000")
    # r1 = *(u64 *)(r6 + 8): dst in the low nibble, src in the high nibble.
    assert bpf.assemble([bpf.ldx(8, bpf.R1, bpf.R6, 8)]) == bytes.fromhex("7961080000000000")
    # *(u16 *)(r10 - 2) = r9
    assert bpf.assemble([bpf.stx(2, bpf.FP, -2, bpf.R9)]) == bytes.fromhex("6b9afeff00000000")
    # *(u64 *)(r10 - 16) = 0
    assert bpf.assemble([bpf.st_imm(8, bpf.FP, -16, 0)]) == bytes.fromhex("7a0af0ff00000000")
    assert bpf.assemble([bpf.alu_imm(bpf.ADD, bpf.R1, -16)]) == bytes.fromhex("07010000f0ffffff")
    assert bpf.assemble([bpf.alu_imm(bpf.RSH, bpf.R0, 32)]) == bytes.fromhex("7700000020000000")
    assert bpf.assemble([bpf.mov_reg(bpf.R6, bpf.R1)]) == bytes.fromhex("bf16000000000000")
    assert bpf.assemble([bpf.call(bpf.FN_PROBE_READ_KERNEL)]) == bytes.fromhex("8500000071000000")
    # ld_imm64 with BPF_PSEUDO_MAP_FD: two slots, src=1.
    assert bpf.assemble(bpf.ld_map_fd(bpf.R1, 5)) == bytes.fromhex(
        "1811000005000000" + "0000000000000000"
    )


def test_jump_labels_count_instruction_slots() -> None:
    prog = [
        bpf.jmp_imm(bpf.JEQ, bpf.R1, 2, "end"),  # skips the 2-slot ld_imm64 and the mov
        *bpf.ld_map_fd(bpf.R1, 3),
        bpf.jmp_imm(bpf.JNE, bpf.R2, 7, "end", wide=False),
        bpf.Label("end"),
        bpf.exit_(),
        bpf.ja("end"),  # backwards
    ]
    code = bpf.assemble(prog)
    insns = [struct.unpack_from("<BBhi", code, i) for i in range(0, len(code), 8)]
    assert insns[0] == (0x15, 0x01, 3, 2)
    assert insns[3] == (0x56, 0x02, 0, 7)  # JMP32 | JNE | K
    assert insns[5] == (0x05, 0x00, -2, 0)


def test_assembler_rejects_bad_labels() -> None:
    with pytest.raises(ValueError, match="undefined"):
        bpf.assemble([bpf.ja("nowhere")])
    with pytest.raises(ValueError, match="twice"):
        bpf.assemble([bpf.Label("a"), bpf.Label("a")])


# -- BTF reader on synthetic data --------------------------------------------------------------


class _BtfBuilder:
    """Writes a little-endian BTF blob with just enough kinds for the tests."""

    def __init__(self) -> None:
        self.types = bytearray()
        self.strings = bytearray(b"\0")
        self.count = 0

    def s(self, text: str) -> int:
        if not text:
            return 0
        off = len(self.strings)
        self.strings += text.encode() + b"\0"
        return off

    def add(self, name: str, kind: int, vlen: int, size_or_type: int, extra: bytes = b"") -> int:
        self.types += struct.pack("<III", self.s(name), kind << 24 | vlen, size_or_type) + extra
        self.count += 1
        return self.count

    def int_(self, name: str, size: int) -> int:
        return self.add(name, KIND_INT, 0, size, struct.pack("<I", size * 8))

    def compound(self, kind: int, name: str, size: int, members: list[tuple[str, int, int]]) -> int:
        extra = b"".join(struct.pack("<III", self.s(n), t, off * 8) for n, t, off in members)
        return self.add(name, kind, len(members), size, extra)

    def blob(self) -> bytes:
        hdr = struct.pack(
            "<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(self.types), len(self.types), len(self.strings)
        )
        return hdr + bytes(self.types) + bytes(self.strings)


def _sock_common_blob() -> bytes:
    """A cut-down ``struct sock_common`` with the real nesting of anonymous unions/structs."""
    b = _BtfBuilder()
    u16 = b.int_("unsigned short", 2)
    u32 = b.int_("unsigned int", 4)
    be16 = b.add("__be16", KIND_TYPEDEF, 0, u16)
    u8 = b.int_("unsigned char", 1)
    addrs = b.compound(KIND_STRUCT, "", 8, [("skc_daddr", u32, 0), ("skc_rcv_saddr", u32, 4)])
    addrpair = b.compound(KIND_UNION, "", 8, [("skc_addrpair", u32, 0), ("", addrs, 0)])
    ports = b.compound(KIND_STRUCT, "", 4, [("skc_dport", be16, 0), ("skc_num", u16, 2)])
    portpair = b.compound(KIND_UNION, "", 4, [("skc_portpair", u32, 0), ("", ports, 0)])
    arr = b.add("", KIND_ARRAY, 0, 0, struct.pack("<III", u8, u32, 16))
    in6 = b.compound(KIND_STRUCT, "in6_addr", 16, [("s6_addr", arr, 0)])
    netp = b.add("", KIND_PTR, 0, 0)
    possible = b.compound(KIND_STRUCT, "", 8, [("net", netp, 0)])
    possible_t = b.add("possible_net_t", KIND_TYPEDEF, 0, possible)
    members = [
        ("", addrpair, 0),
        ("skc_hash", u32, 8),
        ("", portpair, 12),
        ("skc_family", u16, 16),
        ("skc_net", possible_t, 48),
        ("skc_v6_daddr", in6, 56),
        ("skc_v6_rcv_saddr", in6, 72),
    ]
    sc = b.compound(KIND_STRUCT, "sock_common", 136, members)
    b.compound(KIND_STRUCT, "sock", 800, [("__sk_common", sc, 0), ("sk_protocol", u16, 532)])
    ns = b.compound(KIND_STRUCT, "ns_common", 24, [("stashed", netp, 0), ("inum", u32, 16)])
    b.compound(KIND_STRUCT, "net", 4000, [("passive", u32, 0), ("ns", ns, 160)])
    return b.blob()


def test_btf_reader_flattens_anonymous_members() -> None:
    btf = parse_btf(_sock_common_blob())
    assert btf.field("sock_common", "skc_daddr").offset_bytes == 0
    assert btf.field("sock_common", "skc_rcv_saddr").offset_bytes == 4
    assert btf.field("sock_common", "skc_dport").offset_bytes == 12
    num = btf.field("sock_common", "skc_num")
    assert (num.offset_bytes, num.size_bytes) == (14, 2)
    v6 = btf.field("sock_common", "skc_v6_daddr")
    assert (v6.offset_bytes, v6.size_bytes) == (56, 16)
    assert btf.field("sock_common", "skc_net.net").offset_bytes == 48
    assert btf.field("net", "ns.inum").offset_bytes == 176
    with pytest.raises(KeyError):
        btf.field("sock_common", "skc_nonexistent")
    with pytest.raises(KeyError):
        btf.field("no_such_struct", "x")


def test_layout_and_program_from_synthetic_btf() -> None:
    layout = layout_from_btf(_sock_common_blob())
    assert layout.protocol.offset_bytes == 532
    assert layout.netns_inum is not None and layout.netns_inum.offset_bytes == 176
    code = build_program(layout, pending_fd=7, events_fd=8)
    assert len(code) % 8 == 0 and len(code) // 8 < 4096
    ld_maps = [
        struct.unpack_from("<BBhi", code, i)
        for i in range(0, len(code), 8)
        if code[i] == 0x18 and code[i + 1] >> 4 == bpf.PSEUDO_MAP_FD
    ]
    assert {imm for *_x, imm in ld_maps} == {7, 8}


def test_program_reads_a_bitfield_protocol() -> None:
    """Before 5.6 sk_protocol was an 8-bit bitfield; the program shifts and masks it."""
    layout = layout_from_btf(_sock_common_blob())
    old = SockLayout(layout.fields, type(layout.protocol)(65, 0, 8, 520), None)
    code = build_program(old, 3, 4, bpf.FN_PROBE_READ)
    assert bytes.fromhex("7701000008000000") in code  # r1 >>= 8
    assert bytes.fromhex("57010000ff000000") in code  # r1 &= 0xff
    assert bytes.fromhex("8500000071000000") not in code  # no probe_read_kernel


def _hostile_variants() -> list[bytes]:
    good = _sock_common_blob()
    hdr = bytearray(good)
    bad_magic = b"\x00\x00" + good[2:]
    swapped = b"\xeb\x9f" + good[2:]
    long_types = bytearray(good)
    struct.pack_into("<I", long_types, 12, 10**6)  # type_len past the end
    unknown_kind = bytearray(good)
    unknown_kind[24 + 7] = 31  # first type's kind byte
    hdr[2] = 2  # BTF version 2
    return [b"", good[:10], bad_magic, swapped, bytes(long_types), bytes(unknown_kind), bytes(hdr)]


@pytest.mark.parametrize("data", _hostile_variants())
def test_hostile_btf_raises_parse_error(data: bytes) -> None:
    with pytest.raises(ParseError):
        parse_btf(data)


def test_btf_typedef_cycle_and_dangling_ids_raise_parse_error() -> None:
    b = _BtfBuilder()
    b.add("a", KIND_TYPEDEF, 0, 2)
    b.add("b", KIND_TYPEDEF, 0, 1)
    b.compound(KIND_STRUCT, "s", 8, [("x", 1, 0), ("y", 99, 4)])
    btf = parse_btf(b.blob())
    with pytest.raises(ParseError):
        btf.field("s", "x")  # size of a typedef cycle
    with pytest.raises(ParseError):
        btf.field("s", "y")  # member type id 99 does not exist


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_corrupted_btf_never_crashes(data: st.DataObject) -> None:
    blob = bytearray(_sock_common_blob())
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(blob) - 1))
        blob[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(blob)))
    with contextlib.suppress(ParseError, KeyError):  # the only acceptable failures
        layout_from_btf(bytes(blob[:cut]))


@pytest.mark.skipif(not VMLINUX_BTF.exists(), reason="kernel exposes no BTF")
def test_real_vmlinux_btf_has_sock_common_layout() -> None:
    layout = layout_from_btf(Path(VMLINUX_BTF).read_bytes())
    f = layout.fields
    assert f["skc_family"].size_bytes == 2
    assert f["skc_dport"].size_bytes == f["skc_num"].size_bytes == 2
    assert f["skc_num"].offset_bytes == f["skc_dport"].offset_bytes + 2
    assert f["skc_daddr"].size_bytes == f["skc_rcv_saddr"].size_bytes == 4
    if "skc_v6_daddr" in f:
        assert f["skc_v6_daddr"].size_bytes == 16
    assert layout.protocol.bitfield_bits or layout.protocol.size_bytes == 2
    build_program(layout, 3, 4)


# -- event decoder ----------------------------------------------------------------------------

_VALUE = struct.Struct("=IIQ16sHH2sH16s16s")


def _value(family: int, saddr: bytes, daddr: bytes, state: int = 1, comm: bytes = b"curl") -> bytes:
    return _VALUE.pack(
        4242, 4026531840, 123456789, comm, family, 40000, b"\x01\xbb", state, saddr, daddr
    )


def test_parse_event_ipv4() -> None:
    key = struct.pack("=QQ", 0xFFFF888012345678, 123456789)
    ev = parse_event(key, _value(socket.AF_INET, bytes([127, 0, 0, 1]), bytes([198, 18, 0, 9])))
    assert (ev.family, ev.local_ip, ev.local_port) == (socket.AF_INET, "127.0.0.1", 40000)
    assert (ev.remote_ip, ev.remote_port) == ("198.18.0.9", 443)
    assert (ev.pid, ev.comm, ev.monotonic_ns) == (4242, "curl", 123456789)
    assert ev.netns_inode == 4026531840 and ev.established


def test_parse_event_ipv6_and_v4_mapped() -> None:
    key = bytes(16)
    ev = parse_event(
        key,
        _value(
            socket.AF_INET6,
            socket.inet_pton(socket.AF_INET6, "::1"),
            socket.inet_pton(socket.AF_INET6, "2001:db8::5"),
            state=7,
        ),
    )
    assert (ev.local_ip, ev.remote_ip, ev.established) == ("::1", "2001:db8::5", False)
    mapped = socket.inet_pton(socket.AF_INET6, "::ffff:127.0.0.1")
    ev = parse_event(key, _value(socket.AF_INET6, mapped, mapped, comm=b"x" * 16))
    assert (ev.family, ev.local_ip, ev.comm) == (socket.AF_INET6, "127.0.0.1", "x" * 16)


def test_parse_event_rejects_bad_entries() -> None:
    with pytest.raises(ParseError):
        parse_event(bytes(16), bytes(71))
    with pytest.raises(ParseError):
        parse_event(bytes(8), bytes(72))
    with pytest.raises(ParseError):
        parse_event(bytes(16), _value(1, bytes(16), bytes(16)))

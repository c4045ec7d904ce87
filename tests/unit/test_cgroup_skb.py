"""Pure tests of the in-kernel UDP/ICMP counter: its program, its map entries, and finding
the cgroup-v2 mount (collectors/datagram_programs.py, cgroup_skb.py, cgroupfs.py)."""

from __future__ import annotations

import contextlib
import socket
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hostmedic.collectors import bpf
from hostmedic.collectors.cgroup_skb import parse_entry
from hostmedic.collectors.cgroupfs import find_cgroup2_root, parse_mountinfo
from hostmedic.collectors.datagram_programs import (
    KEY,
    VALUE,
    build_flush_program,
    build_program,
    build_release_program,
)
from hostmedic.errors import ParseError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cgroup"
_INSN = struct.Struct("<BBhi")


def test_atomic_add_and_register_jumps_encode_to_known_bytes() -> None:
    # lock *(u64 *)(r0 + 8) += r9: STX | ATOMIC | DW, imm = BPF_ADD
    assert bpf.assemble([bpf.atomic_add(8, bpf.R0, 8, bpf.R9)]) == bytes.fromhex("db90080000000000")
    prog = [bpf.jmp_reg(bpf.JGT, bpf.R3, bpf.R9, "end"), bpf.exit_(), bpf.Label("end")]
    assert bpf.assemble(prog)[:8] == bytes.fromhex("2d93010000000000")


def test_atomic_exchange_encodes_to_known_bytes() -> None:
    # r7 = xchg(*(u64 *)(r6 + 16), r7): STX | ATOMIC | DW, imm = BPF_XCHG | BPF_FETCH
    assert bpf.assemble([bpf.atomic_xchg(8, bpf.R6, 16, bpf.R7)]) == bytes.fromhex(
        "db761000e1000000"
    )


def test_compare_and_exchange_and_wide_constants_encode_to_known_bytes() -> None:
    # r0 = cmpxchg(*(u64 *)(r8 + 0), r0, r2): STX | ATOMIC | DW, imm = BPF_CMPXCHG | BPF_FETCH
    assert bpf.assemble([bpf.atomic_cmpxchg(8, bpf.R8, 0, bpf.R2)]) == bytes.fromhex(
        "db280000f1000000"
    )
    # r3 = 0x9e3779b97f4a7c15: ld_imm64, low half first
    assert bpf.assemble(bpf.ld_imm64(bpf.R3, 0x9E3779B97F4A7C15)) == bytes.fromhex(
        "1803000015 7c4a7f 00000000b979379e".replace(" ", "")
    )


N_U64 = 13


def test_the_socket_storage_btf_describes_an_int_key_and_a_u64_array() -> None:
    blob, key_id, value_id = bpf.u64_array_btf(N_U64)
    magic, version, _flags, hdr_len, type_off, type_len, str_off, str_len = struct.unpack_from(
        "=HBBIIIII", blob
    )
    assert (magic, version, hdr_len, type_off, str_off) == (0xEB9F, 1, 24, 0, type_len)
    assert len(blob) == 24 + type_len + str_len and blob.endswith(b"\0int\0u64\0")
    types = struct.unpack_from("=IIIIIIIIIIIIII", blob, 24)
    assert types[1] >> 24 == 1 and types[2] == 4  # type 1: a 4-byte int (the key)
    assert types[5] >> 24 == 1 and types[6] == 8  # type 2: a u64
    assert types[9] >> 24 == 3 and types[11:] == (2, 1, N_U64)  # type 3: u64[n]
    assert (key_id, value_id) == (1, 3)


def _insns(code: bytes) -> list[tuple[int, int, int, int]]:
    return [_INSN.unpack_from(code, i) for i in range(0, len(code), 8)]


def _calls(code: bytes) -> set[int]:
    return {imm for op, _r, _o, imm in _insns(code) if op == 0x85}


def _every_exit_returns(code: bytes, value: int) -> bool:
    insns = _insns(code)
    exits = [i for i, (op, *_rest) in enumerate(insns) if op == 0x95]
    return bool(exits) and all(
        (insns[i - 1][0], insns[i - 1][1] & 0x0F, insns[i - 1][3]) == (0xB7, bpf.R0, value)
        for i in exits
    )


def _calls_before_counting(code: bytes) -> list[int]:
    """The helper calls made before the first atomic add (the fast path's hit)."""
    calls = []
    for op, _regs, _off, imm in _insns(code):
        if op == 0xDB and imm == 0:  # STX | ATOMIC | DW, BPF_ADD
            return calls
        if op == 0x85:
            calls.append(imm)
    raise AssertionError("no atomic add")


@pytest.mark.parametrize("slots", [-1, 8])
@pytest.mark.parametrize("outgoing", [False, True])
def test_the_program_only_ever_allows(outgoing: bool, slots: int) -> None:
    """Every exit returns 1: the counter can never drop a packet. The fast path's hit
    calls no helper but the array lookup (which the verifier inlines)."""
    code = build_program(7, outgoing=outgoing, slots_fd=slots)
    assert _every_exit_returns(code, 1)  # r0 = 1 right before each exit
    assert len(code) // 8 < 300  # a few dozen instructions per packet
    assert bpf.FN_SK_STORAGE_GET not in _calls(code)
    if slots >= 0:
        assert _calls_before_counting(code) == [bpf.FN_MAP_LOOKUP_ELEM]


def test_the_release_hook_allows_and_the_iterator_returns_zero() -> None:
    release, flush = build_release_program(7, 8), build_flush_program(7)
    assert _every_exit_returns(release, 1) and _every_exit_returns(flush, 0)
    # the closing process names the sender; the iterator keeps the stored one
    assert bpf.FN_GET_CURRENT_PID_TGID in _calls(release)
    assert bpf.FN_GET_CURRENT_PID_TGID not in _calls(flush)
    assert bpf.FN_SK_STORAGE_GET not in _calls(release) | _calls(flush)


def test_only_the_egress_program_asks_who_sends() -> None:
    assert bpf.FN_GET_CURRENT_PID_TGID in _calls(build_program(7, outgoing=True))
    assert bpf.FN_GET_CURRENT_PID_TGID not in _calls(build_program(7, outgoing=False))


def _key(
    family: int, proto: int, out: int, kind: int, lport: int, local: str, remote: str
) -> bytes:
    def raw(ip: str) -> bytes:
        return socket.inet_pton(family, ip).ljust(16, b"\0")

    return KEY.pack(
        0x51E0, raw(local), raw(remote), lport.to_bytes(2, "big"), (53).to_bytes(2, "big"),
        family, proto, out, kind,
    )  # fmt: skip


def test_entries_decode_udp_and_icmp_echo() -> None:
    """The key names the socket by its tag (an address: never reported); the cookie that
    names it to user space is in the value."""
    value = VALUE.pack(3 * 76, 3, 5, 4242, 4, 99)
    udp = parse_entry(_key(socket.AF_INET, 17, 1, 0, 40000, "198.18.1.1", "198.18.1.2"), value)
    assert (udp.local_ip, udp.local_port, udp.remote_ip, udp.remote_port) == (
        "198.18.1.1", 40000, "198.18.1.2", 53,
    )  # fmt: skip
    assert (udp.packets, udp.ip_bytes, udp.netns_cookie, udp.tgid, udp.ifindex) == (
        3, 228, 5, 4242, 4,
    )  # fmt: skip
    assert udp.outgoing and udp.icmp_type is None and udp.socket_cookie == 99
    echo = parse_entry(_key(socket.AF_INET6, 58, 0, 129, 777, "2001:db8::1", "2001:db8::2"), value)
    assert (echo.icmp_type, echo.icmp_echo_id, echo.local_port, echo.remote_port) == (
        129, 777, 0, 0,
    )  # fmt: skip
    other = parse_entry(_key(socket.AF_INET6, 58, 0, 135, 777, "2001:db8::1", "::"), value)
    assert other.icmp_echo_id is None and other.remote_ip == "::"


def test_tcp_entries_carry_option_bytes_under_the_socket_alone() -> None:
    key = KEY.pack(0x51E0, bytes(16), bytes(16), bytes(2), bytes(2), socket.AF_INET, 6, 0, 0)
    sack = parse_entry(key, VALUE.pack(3 * 12, 3, 5, 0, 4, 99))
    assert (sack.protocol, sack.socket_cookie, sack.outgoing) == (6, 99, False)
    assert (sack.packets, sack.ip_bytes, sack.icmp_type) == (3, 36, None)


@given(st.binary(min_size=0, max_size=80), st.binary(min_size=0, max_size=40))
def test_hostile_entries_decode_or_raise_parse_error(key: bytes, value: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse_entry(key, value)


def test_an_unknown_family_is_a_parse_error() -> None:
    bad = bytearray(_key(socket.AF_INET, 17, 1, 0, 1, "198.18.1.1", "198.18.1.2"))
    bad[44] = 99
    with pytest.raises(ParseError, match="family"):
        parse_entry(bytes(bad), VALUE.pack(0, 0, 0, 0, 0, 0))


def test_cgroup2_root_on_a_hybrid_host() -> None:
    """Recorded on this machine: cgroup v1 controllers plus cgroup2 at .../unified."""
    mounts = parse_mountinfo((FIXTURES / "mountinfo-hybrid.txt").read_text())
    assert find_cgroup2_root(mounts) == "/sys/fs/cgroup/unified"


def test_cgroup2_root_on_a_unified_host_and_none_without() -> None:
    unified = (
        "25 30 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 "
        "cgroup2 rw,nsdelegate,memory_recursiveprot\n"
        "26 30 0:23 / /mnt/my\\040disk rw - ext4 /dev/vdb rw\n"
    )
    mounts = parse_mountinfo(unified)
    assert find_cgroup2_root(mounts) == "/sys/fs/cgroup"
    assert mounts[1].mount_point == "/mnt/my disk"
    # a container's view: its own subtree of the hierarchy is not the root
    nested = "40 30 0:22 /docker/abc /sys/fs/cgroup ro - cgroup2 cgroup2 rw\n"
    assert find_cgroup2_root(parse_mountinfo(nested)) is None


def test_garbage_mountinfo_is_a_parse_error() -> None:
    with pytest.raises(ParseError):
        parse_mountinfo("no separator here\n")

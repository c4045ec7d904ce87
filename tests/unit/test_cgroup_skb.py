"""Pure tests of the in-kernel UDP/ICMP counter: its program, its map entries, and finding
the cgroup-v2 mount (collectors/cgroup_skb.py, collectors/cgroupfs.py)."""

from __future__ import annotations

import contextlib
import socket
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hostmedic.collectors import bpf
from hostmedic.collectors.cgroup_skb import KEY, VALUE, build_program, parse_entry
from hostmedic.collectors.cgroupfs import find_cgroup2_root, parse_mountinfo
from hostmedic.errors import ParseError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cgroup"
_INSN = struct.Struct("<BBhi")


def test_atomic_add_and_register_jumps_encode_to_known_bytes() -> None:
    # lock *(u64 *)(r0 + 8) += r9: STX | ATOMIC | DW, imm = BPF_ADD
    assert bpf.assemble([bpf.atomic_add(8, bpf.R0, 8, bpf.R9)]) == bytes.fromhex("db90080000000000")
    prog = [bpf.jmp_reg(bpf.JGT, bpf.R3, bpf.R9, "end"), bpf.exit_(), bpf.Label("end")]
    assert bpf.assemble(prog)[:8] == bytes.fromhex("2d93010000000000")


@pytest.mark.parametrize("outgoing", [False, True])
def test_the_program_only_ever_allows(outgoing: bool) -> None:
    """Every exit returns 1: the counter can never drop a packet."""
    code = build_program(7, outgoing=outgoing)
    insns = [_INSN.unpack_from(code, i) for i in range(0, len(code), 8)]
    exits = [i for i, (op, *_rest) in enumerate(insns) if op == 0x95]
    assert exits, "no exit instruction"
    for i in exits:
        op, regs, _off, imm = insns[i - 1]
        assert (op, regs & 0x0F, imm) == (0xB7, bpf.R0, 1)  # r0 = 1 right before
    assert len(insns) < 200  # a few dozen instructions per packet


def test_only_the_egress_program_asks_who_sends() -> None:
    def calls(code: bytes) -> set[int]:
        insns = [_INSN.unpack_from(code, i) for i in range(0, len(code), 8)]
        return {imm for op, _r, _o, imm in insns if op == 0x85}

    assert bpf.FN_GET_CURRENT_PID_TGID in calls(build_program(7, outgoing=True))
    assert bpf.FN_GET_CURRENT_PID_TGID not in calls(build_program(7, outgoing=False))


def _key(
    family: int, proto: int, out: int, kind: int, lport: int, local: str, remote: str
) -> bytes:
    def raw(ip: str) -> bytes:
        return socket.inet_pton(family, ip).ljust(16, b"\0")

    return KEY.pack(
        99, raw(local), raw(remote), lport.to_bytes(2, "big"), (53).to_bytes(2, "big"),
        family, proto, out, kind,
    )  # fmt: skip


def test_entries_decode_udp_and_icmp_echo() -> None:
    value = VALUE.pack(3 * 76, 3, 5, 4242, 4)
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


def test_tcp_entries_carry_option_bytes_under_the_cookie_alone() -> None:
    key = KEY.pack(99, bytes(16), bytes(16), bytes(2), bytes(2), socket.AF_INET, 6, 0, 0)
    sack = parse_entry(key, VALUE.pack(3 * 12, 3, 5, 0, 4))
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
        parse_entry(bytes(bad), VALUE.pack(0, 0, 0, 0, 0))


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

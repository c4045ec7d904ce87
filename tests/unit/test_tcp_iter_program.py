"""Pure tests of the changed-only TCP iterator: its output parser on recorded runs and on
hostile input, its layout lookup and its assembled program.

``tcp_iter.bin`` / ``tcp_iter_idle.bin`` were recorded by
tests/fixtures/sockdiag/record_fixtures.py in the same moment as ``tcp4.bin`` and
``tcp6.bin``: the iterator must report exactly what sock_diag reported.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hostmedic.collectors import bpf
from hostmedic.collectors.btf import VMLINUX_BTF, parse_btf
from hostmedic.collectors.sockdiag import DIAG_MSG, parse_diag_messages
from hostmedic.collectors.tcp_iter_program import (
    COUNTERS,
    RECORD_SIZE,
    build_program,
    layout_from_btf,
    parse_output,
)
from hostmedic.errors import ParseError
from tests.unit.test_connect_tracer import _sock_common_blob

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sockdiag"
SAME = (
    "family", "protocol", "state", "local_ip", "local_port", "remote_ip", "remote_port",
    "inode", "uid", "cookie", "bytes_sent", "bytes_received", "segs_out", "segs_in",
    "has_timestamps",
)  # fmt: skip


def load(name: str) -> bytes:
    return (FIXTURES / f"{name}.bin").read_bytes()


def fields(record: object) -> tuple[object, ...]:
    return tuple(getattr(record, f) for f in SAME)


def test_first_run_reports_every_socket_as_sock_diag_does() -> None:
    records, count = parse_output(load("tcp_iter"))
    dumped = parse_diag_messages(load("tcp4"))[0] + parse_diag_messages(load("tcp6"))[0]
    assert sorted(map(fields, records)) == sorted(map(fields, dumped))
    assert count == len(dumped) == 9  # 3 listeners, 3 connections' two ends
    mapped = [r for r in records if r.local_port == 40020 and r.state == 1]
    assert (mapped[0].family, mapped[0].local_ip) == (socket.AF_INET6, "127.0.0.1")
    client = next(r for r in records if r.local_port == 40001)
    assert (client.bytes_sent, client.bytes_received) == (1000, 2500)
    # what the iterator does not read stays unknown rather than wrong
    assert client.bytes_acked is client.data_segs_out is client.cgroup_id is None


def test_a_run_where_nothing_moved_is_the_trailer_alone() -> None:
    assert parse_output(load("tcp_iter_idle")) == ([], 9)


def test_a_run_cut_short_has_no_count() -> None:
    records, count = parse_output(load("tcp_iter")[:-RECORD_SIZE])
    assert (len(records), count) == (9, None)


def _record(family: int, count: int = 0) -> bytes:
    msg = DIAG_MSG.pack(family, 1, 80, 443, bytes(16), bytes(16), 0, 1, 0, 0, 5)
    return msg + COUNTERS.pack(1, count, 0, 1, 1)


@pytest.mark.parametrize(
    "data",
    [
        load("tcp_iter")[:-1],  # torn record
        _record(0, 3) + _record(2),  # trailer before a record
        _record(0, 3) + _record(0, 3),  # two trailers
        _record(7),  # not an inet family
    ],
    ids=["torn", "trailer-first", "two-trailers", "family"],
)
def test_hostile_output_raises_parse_error(data: bytes) -> None:
    with pytest.raises(ParseError):
        parse_output(data)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_corrupted_output_never_crashes(data: st.DataObject) -> None:
    blob = bytearray(load("tcp_iter"))
    for _ in range(data.draw(st.integers(1, 8))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(ParseError):  # the only acceptable failure
        parse_output(bytes(blob[: data.draw(st.integers(0, len(blob)))]))


def test_a_kernel_without_the_tcp_iterator_types_has_no_layout() -> None:
    with pytest.raises(KeyError):
        layout_from_btf(parse_btf(_sock_common_blob()))


@pytest.mark.skipif(not VMLINUX_BTF.exists(), reason="kernel exposes no BTF")
def test_program_from_the_real_kernel_layout() -> None:
    layout = layout_from_btf(parse_btf(Path(VMLINUX_BTF).read_bytes()))
    assert layout.v6_daddr is not None and layout.tstamp_bit in range(8)
    code = build_program(layout, storage_fd=7, count_fd=8)
    insns = [struct.unpack_from("<BBhi", code, i) for i in range(0, len(code), 8)]
    loads = {(regs >> 4, imm) for op, regs, _off, imm in insns if op == 0x18}
    assert loads == {(bpf.PSEUDO_MAP_FD, 7), (bpf.PSEUDO_MAP_VALUE, 8)}
    calls = [imm for op, _regs, _off, imm in insns if op == 0x85]
    assert calls.count(bpf.FN_SEQ_WRITE) == 2  # a record, the trailer
    assert insns[-1][0] == 0x95 and insns[-2][3] == 0  # every run returns 0 (no skip)


def test_the_new_instruction_encodings() -> None:
    """Byte swap to network order and direct access to an array map's value, as the kernel
    defines them (BPF_ALU | BPF_END | BPF_TO_BE; ld_imm64 with BPF_PSEUDO_MAP_VALUE)."""
    assert bpf.assemble([bpf.to_be(bpf.R1, 16)]) == bytes.fromhex("dc01000010000000")
    assert bpf.assemble(bpf.ld_map_value(bpf.R7, 5, 8)) == bytes.fromhex(
        "18270000050000000000000008000000"
    )

"""The ``iter/tcp`` program that reports only the TCP sockets whose counters moved; pure.

A sock_diag dump makes the kernel fill a ``tcp_info`` for every socket and user space walk
every record to find the ~1 % that changed (at 50,000 sockets: ~75 ms in the kernel, as
much again in Python). This BPF iterator walks the same sockets in the kernel, keeps each
full socket's last reported (segs_out, segs_in, state) in its own socket storage, and
prints a record only for a socket that is new or whose counters or state moved: user space
parses a few hundred records instead of 50,000.

Each record is an ``inet_diag_msg`` (the layout sock_diag replies start with, so
``sockdiag.build_record`` turns it into the same :class:`SocketRecord`) followed by the
counters the ledger uses (:data:`COUNTERS`). After the last socket the program prints one
trailer record with family 0 and the number of full sockets it walked (listeners
included; counted in an array map under the run's iterator session id, so a run cut
short leaves nothing behind): user space compares it with the sockets it remembers.
TIME_WAIT and request sockets are not full sockets and are skipped (their bytes arrive in
destroy events), as the per-tick dump skips them.

Struct offsets come from the kernel's BTF (:func:`layout_from_btf`); the program reads
``struct tcp_sock`` fields directly (BTF-typed pointer loads) and the socket's inode
(``SOCK_INODE(sk->sk_socket)->i_ino``, outside ``struct socket``) with
``bpf_probe_read_kernel``.
"""

from __future__ import annotations

import socket
import struct
import sys
from dataclasses import dataclass

from hostmedic.collectors import bpf
from hostmedic.collectors.bpf import (
    ADD,
    AND,
    FP,
    JEQ,
    JNE,
    R0,
    R1,
    R2,
    R3,
    R4,
    R6,
    R7,
    R9,
    RSH,
    Insn,
    Label,
)
from hostmedic.collectors.btf import Btf
from hostmedic.collectors.sockdiag import DIAG_MSG, SocketRecord, build_record
from hostmedic.errors import ParseError

ITER_TARGET = "bpf_iter_tcp"
PROGRAM_NAME = "hm_tcp_changed"
# After the inet_diag_msg: tcpi_options (bit 0: timestamps), bytes_sent, bytes_received,
# segs_out, segs_in. The trailer carries the number of full sockets in bytes_sent.
COUNTERS = struct.Struct("=B7xQQII")
RECORD_SIZE = DIAG_MSG.size + COUNTERS.size  # 104
# Socket storage: the (segs_out, segs_in, state) last reported.
STORAGE_SIZE = 16
_SEEN_OUT, _SEEN_IN, _SEEN_STATE = 0, 4, 8
# The count map's one value: the run (iterator session id) it counts, and its count.
COUNT_SIZE = 16
_COUNT_SESSION, _COUNT = 0, 8
# The record on the stack, and where each field goes (inet_diag_msg offsets).
_REC = -RECORD_SIZE
_M_FAMILY, _M_STATE, _M_SPORT, _M_DPORT, _M_SRC, _M_DST = 0, 1, 4, 6, 8, 24
_M_COOKIE, _M_UID, _M_INODE = 44, 64, 68
_C = DIAG_MSG.size
_C_OPTIONS, _C_SENT, _C_RECEIVED, _C_SEGS_OUT, _C_SEGS_IN = _C, _C + 8, _C + 16, _C + 24, _C + 28


@dataclass(frozen=True, slots=True)
class TcpLayout:
    """Kernel structure offsets the program reads, found in BTF."""

    ctx_meta: int  # bpf_iter__tcp.meta
    meta_session: int  # bpf_iter_meta.session_id: one per run
    ctx_sk: int  # bpf_iter__tcp.sk_common
    ctx_uid: int  # bpf_iter__tcp.uid
    family: int  # sock_common members
    state: int
    num: int  # local port, host order
    dport: int  # remote port, network order
    rcv_saddr: int
    daddr: int
    v6_rcv_saddr: int | None  # None: a kernel without IPv6
    v6_daddr: int | None
    sk_socket: int  # sock.sk_socket
    socket_ino: int  # i_ino from the start of struct socket (socket_alloc.vfs_inode.i_ino)
    bytes_sent: int  # tcp_sock members
    bytes_received: int
    segs_out: int
    segs_in: int
    tstamp_byte: int  # tcp_sock.rx_opt.tstamp_ok: the byte holding it and its bit
    tstamp_bit: int


def layout_from_btf(btf: Btf) -> TcpLayout:
    """The offsets from the kernel's BTF; KeyError when a member is missing or not shaped
    as expected, ParseError for bad BTF."""

    def at(struct_name: str, path: str, size: int) -> int:
        f = btf.field(struct_name, path)
        if f.size_bytes != size:
            raise KeyError(f"{struct_name}.{path} is {f.size_bytes} bytes, expected {size}")
        return f.offset_bytes

    def v6(path: str) -> int | None:
        try:
            return at("sock_common", path, 16)
        except KeyError:
            return None

    tstamp = btf.field("tcp_sock", "rx_opt.tstamp_ok")
    if tstamp.bitfield_bits != 1 or sys.byteorder != "little":
        raise KeyError("tcp_sock.rx_opt.tstamp_ok is not a one-bit field on a little-endian CPU")
    starts = (btf.field("sock", "__sk_common"), btf.field("socket_alloc", "socket"))
    if any(f.offset_bytes for f in starts):
        raise KeyError("struct sock or socket_alloc is not laid out as expected")
    return TcpLayout(
        ctx_meta=at("bpf_iter__tcp", "meta", 8),
        meta_session=at("bpf_iter_meta", "session_id", 8),
        ctx_sk=at("bpf_iter__tcp", "sk_common", 8),
        ctx_uid=at("bpf_iter__tcp", "uid", 4),
        family=at("sock_common", "skc_family", 2),
        state=at("sock_common", "skc_state", 1),
        num=at("sock_common", "skc_num", 2),
        dport=at("sock_common", "skc_dport", 2),
        rcv_saddr=at("sock_common", "skc_rcv_saddr", 4),
        daddr=at("sock_common", "skc_daddr", 4),
        v6_rcv_saddr=v6("skc_v6_rcv_saddr"),
        v6_daddr=v6("skc_v6_daddr"),
        sk_socket=at("sock", "sk_socket", 8),
        socket_ino=at("socket_alloc", "vfs_inode", btf.size_of(btf.find("inode")))
        + at("inode", "i_ino", 8),
        bytes_sent=at("tcp_sock", "bytes_sent", 8),
        bytes_received=at("tcp_sock", "bytes_received", 8),
        segs_out=at("tcp_sock", "segs_out", 4),
        segs_in=at("tcp_sock", "segs_in", 4),
        tstamp_byte=tstamp.offset_bytes,
        tstamp_bit=tstamp.bit_offset - 8 * tstamp.offset_bytes,
    )


def _field(size: int, src_off: int, dst_off: int) -> list[Insn]:
    """Copy one field of the socket (r7) into the record on the stack."""
    return [bpf.ldx(size, R1, R7, src_off), bpf.stx(size, FP, _REC + dst_off, R1)]


def _seq_write(lay: TcpLayout) -> list[Insn]:
    """Print the record: ``bpf_seq_write(ctx->meta->seq, record, RECORD_SIZE)``."""
    return [
        bpf.ldx(8, R1, R6, lay.ctx_meta),
        bpf.ldx(8, R1, R1, 0),  # meta->seq
        bpf.mov_reg(R2, FP),
        bpf.alu_imm(ADD, R2, _REC),
        bpf.mov_imm(R3, RECORD_SIZE),
        bpf.call(bpf.FN_SEQ_WRITE),
    ]


def _addresses(lay: TcpLayout) -> list[Insn | Label]:
    """Both addresses: 16 bytes each for AF_INET6, the first 4 bytes for AF_INET."""
    v4: list[Insn | Label] = [*_field(4, lay.rcv_saddr, _M_SRC), *_field(4, lay.daddr, _M_DST)]
    if lay.v6_rcv_saddr is None or lay.v6_daddr is None:
        return v4
    v6 = [
        *[insn for i in range(0, 16, 4) for insn in _field(4, lay.v6_rcv_saddr + i, _M_SRC + i)],
        *[insn for i in range(0, 16, 4) for insn in _field(4, lay.v6_daddr + i, _M_DST + i)],
    ]
    return [
        bpf.jmp_imm(JEQ, R9, socket.AF_INET6, "v6"),
        *v4,
        bpf.ja("copied"),
        Label("v6"),
        *v6,
        Label("copied"),
    ]


def build_program(lay: TcpLayout, storage_fd: int, count_fd: int) -> bytes:
    """Assemble the iterator program; pure. ``storage_fd``: a socket storage map with
    :data:`STORAGE_SIZE`-byte values; ``count_fd``: an array map with one
    :data:`COUNT_SIZE`-byte value (the run it counts and the full sockets walked so far)."""
    zero = [bpf.st_imm(8, FP, _REC + off, 0) for off in range(0, RECORD_SIZE, 8)]
    return bpf.assemble([
        bpf.mov_reg(R6, R1),
        *zero,
        # a run's first call starts its count afresh (a run cut short left its count)
        bpf.ldx(8, R1, R6, lay.ctx_meta),
        bpf.ldx(8, R1, R1, lay.meta_session),
        *bpf.ld_map_value(R2, count_fd),
        bpf.ldx(8, R3, R2, _COUNT_SESSION),
        bpf.jmp_reg(JEQ, R1, R3, "counting"),
        bpf.stx(8, R2, _COUNT_SESSION, R1),
        bpf.st_imm(8, R2, _COUNT, 0),
        Label("counting"),
        bpf.ldx(8, R7, R6, lay.ctx_sk),
        bpf.jmp_imm(JEQ, R7, 0, "trailer"),
        bpf.mov_reg(R1, R7),
        bpf.call(bpf.FN_SKC_TO_TCP_SOCK),  # NULL for TIME_WAIT and request sockets
        bpf.jmp_imm(JEQ, R0, 0, "out"),
        bpf.mov_reg(R7, R0),
        *bpf.ld_map_value(R1, count_fd),
        bpf.ldx(8, R2, R1, _COUNT),
        bpf.alu_imm(ADD, R2, 1),
        bpf.stx(8, R1, _COUNT, R2),
        # moved since the last report? (a new storage slot is zeroed; no socket has state 0)
        *bpf.ld_map_fd(R1, storage_fd),
        bpf.mov_reg(R2, R7),
        bpf.mov_imm(R3, 0),
        bpf.mov_imm(R4, bpf.SK_STORAGE_GET_F_CREATE),
        bpf.call(bpf.FN_SK_STORAGE_GET),
        bpf.jmp_imm(JEQ, R0, 0, "report"),  # no memory for a slot: report it every time
        bpf.ldx(4, R1, R7, lay.segs_out),
        bpf.ldx(4, R2, R7, lay.segs_in),
        bpf.ldx(1, R3, R7, lay.state),
        bpf.ldx(4, R4, R0, _SEEN_OUT),
        bpf.jmp_reg(JNE, R1, R4, "moved"),
        bpf.ldx(4, R4, R0, _SEEN_IN),
        bpf.jmp_reg(JNE, R2, R4, "moved"),
        bpf.ldx(4, R4, R0, _SEEN_STATE),
        bpf.jmp_reg(JEQ, R3, R4, "out"),
        Label("moved"),
        bpf.stx(4, R0, _SEEN_OUT, R1),
        bpf.stx(4, R0, _SEEN_IN, R2),
        bpf.stx(4, R0, _SEEN_STATE, R3),
        Label("report"),
        bpf.ldx(2, R9, R7, lay.family),
        bpf.stx(1, FP, _REC + _M_FAMILY, R9),
        *_field(1, lay.state, _M_STATE),
        bpf.ldx(2, R1, R7, lay.num),
        bpf.to_be(R1, 16),
        bpf.stx(2, FP, _REC + _M_SPORT, R1),
        *_field(2, lay.dport, _M_DPORT),
        *_addresses(lay),
        bpf.mov_reg(R1, R7),
        bpf.call(bpf.FN_GET_SOCKET_COOKIE),
        bpf.stx(4, FP, _REC + _M_COOKIE, R0),  # inet_diag's cookie: two u32, low first
        bpf.alu_imm(RSH, R0, 32),
        bpf.stx(4, FP, _REC + _M_COOKIE + 4, R0),
        bpf.ldx(4, R1, R6, lay.ctx_uid),
        bpf.stx(4, FP, _REC + _M_UID, R1),
        # the inode, as sock_i_ino(): 0 for a socket without a struct socket (orphaned)
        bpf.ldx(8, R3, R7, lay.sk_socket),
        bpf.jmp_imm(JEQ, R3, 0, "counters"),
        bpf.alu_imm(ADD, R3, lay.socket_ino),
        bpf.mov_reg(R1, FP),
        bpf.alu_imm(ADD, R1, _REC + _M_INODE),
        bpf.mov_imm(R2, 4),  # inet_diag's inode is 32 bits: the low half (little-endian)
        bpf.call(bpf.FN_PROBE_READ_KERNEL),
        Label("counters"),
        bpf.ldx(1, R1, R7, lay.tstamp_byte),
        bpf.alu_imm(RSH, R1, lay.tstamp_bit),
        bpf.alu_imm(AND, R1, 1),
        bpf.stx(1, FP, _REC + _C_OPTIONS, R1),
        *_field(8, lay.bytes_sent, _C_SENT),
        *_field(8, lay.bytes_received, _C_RECEIVED),
        *_field(4, lay.segs_out, _C_SEGS_OUT),
        *_field(4, lay.segs_in, _C_SEGS_IN),
        *_seq_write(lay),
        bpf.ja("out"),
        Label("trailer"),  # called once more after the last socket: print the count
        *bpf.ld_map_value(R7, count_fd),
        bpf.ldx(8, R1, R7, _COUNT),
        bpf.stx(8, FP, _REC + _C_SENT, R1),
        *_seq_write(lay),
        Label("out"),
        bpf.mov_imm(R0, 0),
        bpf.exit_(),
    ])  # fmt: skip


def parse_output(data: bytes) -> tuple[list[SocketRecord], int | None]:
    """The records an iterator run printed, and the trailer's socket count (None when the
    run stopped before its end); pure. ParseError for a torn record or a bad family."""
    if len(data) % RECORD_SIZE:
        raise ParseError(
            f"TCP iterator output is {len(data)} bytes, not a multiple of {RECORD_SIZE}"
        )
    records: list[SocketRecord] = []
    count: int | None = None
    view = memoryview(data)
    for off in range(0, len(data), RECORD_SIZE):
        msg = DIAG_MSG.unpack_from(view, off)
        options, sent, received, segs_out, segs_in = COUNTERS.unpack_from(view, off + _C)
        if msg[0] == 0:
            if count is not None or off + RECORD_SIZE != len(data):
                raise ParseError("TCP iterator trailer is not the last record")
            count = sent
            continue
        tcpi = (options, None, received, segs_out, segs_in, None, None, sent, None)
        records.append(build_record(socket.IPPROTO_TCP, msg, None, tcpi))
    return records, count

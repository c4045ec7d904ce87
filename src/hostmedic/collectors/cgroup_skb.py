"""Count UDP/ICMP traffic per socket inside the kernel, with a cgroup_skb eBPF program.

The kernel keeps no per-socket byte counters for connectionless traffic. Tapping packets
(AF_PACKET) costs the kernel a clone of every outgoing packet before any filter runs: about
a fifth of the machine's maximum packet rate under a flood. A ``BPF_PROG_TYPE_CGROUP_SKB``
program attached to the cgroup-v2 root instead runs *in* the socket path of every packet
that a socket sends or receives, on every cgroup and in every network namespace, and only
adds to a counter. It never drops anything (it always returns 1, "allow") and coexists with
other programs on the same hooks (link-based attach is multi-attach).

sock_diag counts TCP payload and segments exactly; for TCP the program only looks at the
header length and, in the rare segment whose options go beyond the usual timestamp option
(SACK blocks during loss), adds the extra option bytes under the socket cookie alone
(handshake segments excluded: their options are known). For other IP traffic it reads the
IP and transport headers by direct packet access and adds the IP-level bytes and the
packet count to an LRU hash keyed by::

    socket cookie | local address | remote address | local port | remote port |
    family | protocol | outgoing | ICMP type

(ICMP echo messages carry their echo id as the local port.) ``skb->len`` at these hooks is
the IP datagram's length; a GSO/GRO super-packet counts its segments, each with its own IP
and UDP header. When an entry is created (once per flow per read, off the per-packet path)
the namespace (netns cookie), the interface and, on egress, the sending thread group id
are stored beside the counters: a socket that is born and closed between two reads still
names its process. Every byte of key costs hashing time on every packet, hence the split.

Packets without a socket (the kernel's own answers to ping, forwarded packets, datagrams to
a closed port) never reach these hooks, except kernel ICMP replies sent from its control
socket; the monitor handles those. The attachment lives exactly as long as the link fds
(``close()``, or the process dying), so a killed hostmedic leaves nothing attached.
``build_program`` and ``parse_entry`` are pure.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import sys

from hostmedic.analysis.skb_flows import SkbFlow
from hostmedic.collectors import bpf
from hostmedic.collectors.bpf import (
    ADD,
    ALU64,
    AND,
    FP,
    JEQ,
    JGT,
    JLE,
    JNE,
    JSET,
    LSH,
    MUL,
    R0,
    R1,
    R2,
    R3,
    R4,
    R5,
    R6,
    R7,
    R8,
    R9,
    RSH,
    SUB,
    BpfError,
    Insn,
    Label,
    X,
)
from hostmedic.collectors.cgroupfs import open_cgroup2_root
from hostmedic.errors import FactUnavailable, ParseError

# Key (64 bytes) and value (24 bytes) of the counters map. Ports and echo ids are in
# network byte order; an IPv4 address fills the first 4 bytes of its 16-byte field.
KEY = struct.Struct("=Q16s16s2s2sBBBB")
VALUE = struct.Struct("=QQQII")
_K_COOKIE, _K_LOCAL, _K_REMOTE, _K_LPORT, _K_RPORT = 0, 8, 24, 40, 42
_K_FAMILY, _K_PROTO, _K_OUT, _K_TYPE = 44, 45, 46, 47
# Stack frame: the key at -56, the initial value at -88.
_KEY = -KEY.size
_VAL = _KEY - VALUE.size
# struct __sk_buff offsets (uapi, stable).
_SKB_LEN, _SKB_PROTOCOL, _SKB_IFINDEX, _SKB_DATA, _SKB_DATA_END, _SKB_GSO_SEGS = (
    0, 16, 40, 76, 80, 164,
)  # fmt: skip
_ETH_P_IP_BE, _ETH_P_IPV6_BE = 0x0008, 0xDD86  # skb->protocol is big-endian in a u32
_IPV4_FRAGMENT_OFFSET_BE = 0xFF1F  # htons(0x1fff), as a little-endian u16 load sees it
_BPF_NOEXIST = 1
_TCP_SYN = 0x02
_TCP_USUAL_HEADER = 32  # 20 bytes + the timestamp option (NOP, NOP, 10 bytes)
_ECHO = {socket.IPPROTO_ICMP: (0, 8), socket.IPPROTO_ICMPV6: (128, 129)}
PROGRAM_NAME = "hm_datagrams"


def _copy(src: int, src_off: int, dst_off: int, size: int) -> list[Insn]:
    """Copy ``size`` bytes from a packet pointer to the stack in 4-byte words."""
    out: list[Insn] = []
    for i in range(0, size, 4):
        out += [bpf.ldx(4, R2, src, src_off + i), bpf.stx(4, FP, dst_off + i, R2)]
    return out


def _add_counters() -> list[Insn]:
    """r0 = value pointer: add r7 bytes and r9 packets (other CPUs may add concurrently)."""
    return [bpf.atomic_add(8, R0, 0, R7), bpf.atomic_add(8, R0, 8, R9)]


def build_program(counters_fd: int, *, outgoing: bool) -> bytes:
    """Assemble the program for one hook (egress when ``outgoing``); pure."""
    src_at, dst_at = (_K_LOCAL, _K_REMOTE) if outgoing else (_K_REMOTE, _K_LOCAL)
    sport_at, dport_at = (_K_LPORT, _K_RPORT) if outgoing else (_K_RPORT, _K_LPORT)
    k = _KEY
    # On egress the program runs in the sending thread (sendmsg): remember who it is.
    tgid = (
        [bpf.call(bpf.FN_GET_CURRENT_PID_TGID), bpf.alu_imm(bpf.RSH, R0, 32)]
        if outgoing
        else [bpf.mov_imm(R0, 0)]
    )
    prog: list[Insn | Label] = [
        bpf.mov_reg(R6, R1),
        *[bpf.st_imm(8, FP, k + off, 0) for off in range(0, KEY.size, 8)],
        bpf.ldx(4, R2, R6, _SKB_PROTOCOL),
        bpf.ldx(4, R8, R6, _SKB_DATA),
        bpf.ldx(4, R9, R6, _SKB_DATA_END),
        bpf.jmp_imm(JEQ, R2, _ETH_P_IP_BE, "v4"),
        bpf.jmp_imm(JNE, R2, _ETH_P_IPV6_BE, "out"),
        # IPv6: fixed 40-byte header; extension headers are counted without ports
        bpf.mov_reg(R3, R8),
        bpf.alu_imm(ADD, R3, 40),
        bpf.jmp_reg(JGT, R3, R9, "out"),
        bpf.ldx(1, R4, R8, 6),
        bpf.st_imm(1, FP, k + _K_FAMILY, socket.AF_INET6),
        bpf.mov_imm(R5, 40),
        bpf.jmp_imm(JEQ, R4, socket.IPPROTO_TCP, "tcp"),
        *_copy(R8, 8, k + src_at, 16),
        *_copy(R8, 24, k + dst_at, 16),
        bpf.ja("l4"),
        Label("v4"),
        bpf.mov_reg(R3, R8),
        bpf.alu_imm(ADD, R3, 20),
        bpf.jmp_reg(JGT, R3, R9, "out"),
        bpf.ldx(1, R4, R8, 9),
        bpf.st_imm(1, FP, k + _K_FAMILY, socket.AF_INET),
        bpf.ldx(1, R5, R8, 0),
        bpf.alu_imm(AND, R5, 0x0F),
        bpf.alu_imm(LSH, R5, 2),
        bpf.ldx(2, R3, R8, 6),
        bpf.alu_imm(AND, R3, _IPV4_FRAGMENT_OFFSET_BE),
        bpf.jmp_imm(JEQ, R4, socket.IPPROTO_TCP, "tcp4"),
        *_copy(R8, 12, k + src_at, 4),
        *_copy(R8, 16, k + dst_at, 4),
        bpf.jmp_imm(JNE, R3, 0, "count"),  # a later fragment carries no transport header
        Label("l4"),
        # r4 = protocol, r5 = transport header offset (bounded: 20..60 or 40)
        bpf.stx(1, FP, k + _K_PROTO, R4),
        bpf.mov_reg(R3, R8),
        Insn(ALU64 | ADD | X, R3, R5),
        bpf.mov_reg(R2, R3),
        bpf.alu_imm(ADD, R2, 8),
        bpf.jmp_reg(JGT, R2, R9, "count"),
        bpf.jmp_imm(JEQ, R4, socket.IPPROTO_UDP, "ports"),
        bpf.jmp_imm(JEQ, R4, socket.IPPROTO_UDPLITE, "ports"),
        bpf.jmp_imm(JEQ, R4, socket.IPPROTO_ICMP, "icmp4"),
        bpf.jmp_imm(JEQ, R4, socket.IPPROTO_ICMPV6, "icmp6"),
        bpf.ja("count"),
        Label("ports"),
        bpf.ldx(2, R2, R3, 0),
        bpf.stx(2, FP, k + sport_at, R2),
        bpf.ldx(2, R2, R3, 2),
        bpf.stx(2, FP, k + dport_at, R2),
        bpf.ja("count"),
        Label("icmp4"),
        bpf.ldx(1, R2, R3, 0),
        bpf.stx(1, FP, k + _K_TYPE, R2),
        bpf.jmp_imm(JEQ, R2, _ECHO[socket.IPPROTO_ICMP][0], "echo"),
        bpf.jmp_imm(JEQ, R2, _ECHO[socket.IPPROTO_ICMP][1], "echo"),
        bpf.ja("count"),
        Label("icmp6"),
        bpf.ldx(1, R2, R3, 0),
        bpf.stx(1, FP, k + _K_TYPE, R2),
        bpf.jmp_imm(JEQ, R2, _ECHO[socket.IPPROTO_ICMPV6][0], "echo"),
        bpf.jmp_imm(JNE, R2, _ECHO[socket.IPPROTO_ICMPV6][1], "count"),
        Label("echo"),
        bpf.ldx(2, R2, R3, 4),
        bpf.stx(2, FP, k + _K_LPORT, R2),
        Label("count"),
        # bytes (r7) and packets (r9); a GSO/GRO packet is gso_segs wire packets, each
        # with its own IP + 8-byte UDP header (r5 + 8)
        bpf.ldx(4, R7, R6, _SKB_LEN),
        bpf.ldx(4, R9, R6, _SKB_GSO_SEGS),
        bpf.jmp_imm(JGT, R9, 1, "segments"),
        bpf.mov_imm(R9, 1),
        bpf.ja("key"),
        Label("segments"),
        bpf.mov_reg(R2, R9),
        bpf.alu_imm(SUB, R2, 1),
        bpf.alu_imm(ADD, R5, 8),
        Insn(ALU64 | MUL | X, R2, R5),
        Insn(ALU64 | ADD | X, R7, R2),
        bpf.ja("key"),
        # TCP (sock_diag counts its payload and segments): only the option bytes beyond
        # the 12-byte timestamp option, which tcp_info cannot tell — SACK blocks of ACKs
        # sent or received during loss, MD5 signatures. Handshake segments are known.
        Label("tcp4"),
        bpf.jmp_imm(JNE, R3, 0, "out"),
        Label("tcp"),
        bpf.mov_reg(R3, R8),
        Insn(ALU64 | ADD | X, R3, R5),
        bpf.mov_reg(R2, R3),
        bpf.alu_imm(ADD, R2, 14),
        bpf.jmp_reg(JGT, R2, R9, "out"),
        bpf.ldx(1, R2, R3, 13),
        bpf.jmp_imm(JSET, R2, _TCP_SYN, "out"),
        bpf.ldx(1, R7, R3, 12),
        bpf.alu_imm(RSH, R7, 2),
        bpf.alu_imm(AND, R7, 0x3C),  # the TCP header's length in bytes
        bpf.jmp_imm(JLE, R7, _TCP_USUAL_HEADER, "out"),
        bpf.alu_imm(SUB, R7, _TCP_USUAL_HEADER),
        bpf.st_imm(1, FP, k + _K_PROTO, socket.IPPROTO_TCP),
        bpf.ldx(4, R9, R6, _SKB_GSO_SEGS),
        bpf.jmp_imm(JGT, R9, 1, "tcp_segments"),
        bpf.mov_imm(R9, 1),
        Label("tcp_segments"),
        Insn(ALU64 | MUL | X, R7, R9),
        Label("key"),
        bpf.st_imm(1, FP, k + _K_OUT, int(outgoing)),
        bpf.mov_reg(R1, R6),
        bpf.call(bpf.FN_GET_SOCKET_COOKIE),
        bpf.stx(8, FP, k + _K_COOKIE, R0),
        *bpf.ld_map_fd(R1, counters_fd),
        bpf.mov_reg(R2, FP),
        bpf.alu_imm(ADD, R2, k),
        bpf.call(bpf.FN_MAP_LOOKUP_ELEM),
        bpf.jmp_imm(JEQ, R0, 0, "insert"),
        *_add_counters(),
        bpf.ja("out"),
        # A new entry (once per flow per read): the namespace, the sender and the interface
        # go into the value, off the per-packet path (a socket never changes namespace).
        Label("insert"),
        bpf.stx(8, FP, _VAL, R7),
        bpf.stx(8, FP, _VAL + 8, R9),
        bpf.mov_reg(R1, R6),
        bpf.call(bpf.FN_GET_NETNS_COOKIE),
        bpf.stx(8, FP, _VAL + 16, R0),
        *tgid,
        bpf.stx(4, FP, _VAL + 24, R0),
        bpf.ldx(4, R2, R6, _SKB_IFINDEX),
        bpf.stx(4, FP, _VAL + 28, R2),
        *bpf.ld_map_fd(R1, counters_fd),
        bpf.mov_reg(R2, FP),
        bpf.alu_imm(ADD, R2, k),
        bpf.mov_reg(R3, FP),
        bpf.alu_imm(ADD, R3, _VAL),
        bpf.mov_imm(R4, _BPF_NOEXIST),
        bpf.call(bpf.FN_MAP_UPDATE_ELEM),
        bpf.jmp_imm(JEQ, R0, 0, "out"),
        # another CPU inserted the same key first: add to its entry
        *bpf.ld_map_fd(R1, counters_fd),
        bpf.mov_reg(R2, FP),
        bpf.alu_imm(ADD, R2, k),
        bpf.call(bpf.FN_MAP_LOOKUP_ELEM),
        bpf.jmp_imm(JEQ, R0, 0, "out"),
        *_add_counters(),
        Label("out"),
        bpf.mov_imm(R0, 1),  # always allow: this program only counts
        bpf.exit_(),
    ]
    return bpf.assemble(prog)


def _ip(family: int, raw: bytes) -> str:
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    if raw[:12] == b"\0" * 10 + b"\xff\xff":
        return socket.inet_ntop(socket.AF_INET, raw[12:])
    return socket.inet_ntop(socket.AF_INET6, raw)


def parse_entry(key: bytes, value: bytes) -> SkbFlow:
    """Decode one counters map entry; ParseError for a wrong size or family. Pure."""
    if len(key) != KEY.size or len(value) != VALUE.size:
        raise ParseError(
            f"counter entry of {len(key)}+{len(value)} bytes, expected {KEY.size}+{VALUE.size}"
        )
    cookie, local, remote, lport, rport, family, proto, out, kind = KEY.unpack(key)
    if family not in (socket.AF_INET, socket.AF_INET6):
        raise ParseError(f"counter entry with address family {family}")
    ip_bytes, packets, netns, tgid, ifindex = VALUE.unpack(value)
    icmp = proto in _ECHO
    echo = icmp and kind in _ECHO[proto]
    return SkbFlow(
        netns_cookie=netns,
        socket_cookie=cookie,
        family=family,
        protocol=proto,
        outgoing=bool(out),
        local_ip=_ip(family, local),
        local_port=0 if icmp else int.from_bytes(lport, "big"),
        remote_ip=_ip(family, remote),
        remote_port=0 if icmp else int.from_bytes(rport, "big"),
        icmp_type=kind if icmp else None,
        icmp_echo_id=int.from_bytes(lport, "big") if echo else None,
        ifindex=ifindex,
        packets=packets,
        ip_bytes=ip_bytes,
        tgid=tgid,
    )


def netns_cookie(sock: socket.socket) -> int:
    """The network namespace cookie of the namespace ``sock`` lives in (SO_NETNS_COOKIE,
    Linux 5.14+): what the program's ``bpf_get_netns_cookie`` reports for it."""
    raw = sock.getsockopt(socket.SOL_SOCKET, 71, 8)  # SO_NETNS_COOKIE
    return int(struct.unpack("=Q", raw)[0])


def _unavailable(what: str, exc: BpfError) -> FactUnavailable:
    """The operator-facing reason for a failed bpf(2) step."""
    if exc.errno == errno.EPERM:
        return FactUnavailable(
            f"{what} was refused (EPERM): it needs root (CAP_BPF, CAP_NET_ADMIN, CAP_PERFMON)",
            key="reason.need_bpf",
        )
    if exc.errno == errno.ENOSYS:
        return FactUnavailable(f"no bpf(2) support: {exc.strerror}")
    if exc.log:
        last = " | ".join(exc.log.strip().splitlines()[-3:])
        return FactUnavailable(f"the kernel's BPF verifier rejected the program: {last}")
    return FactUnavailable(f"{what} failed: {exc.strerror}")


class CgroupSkbCounter:
    """Loads the program on both cgroup hooks; :meth:`read` pops the counters.

    Raises FactUnavailable with the reason when it cannot work (not root, no cgroup v2,
    BPF refused, a kernel without the helpers). ``close()`` detaches (closes the link
    fds) and frees the map; the kernel does the same if the process dies.
    ``use_host_mount=False`` always takes the private cgroup2 mount (for tests).
    """

    def __init__(self, max_entries: int = 65536, *, use_host_mount: bool = True) -> None:
        if sys.byteorder != "little":
            raise FactUnavailable("in-kernel UDP/ICMP counting needs a little-endian machine")
        self._fds: list[int] = []
        try:
            self._attach(max_entries, use_host_mount)
        except BpfError as exc:
            self.close()
            raise _unavailable("loading the in-kernel UDP/ICMP counter", exc) from None
        except BaseException:
            self.close()
            raise

    def _attach(self, max_entries: int, use_host_mount: bool) -> None:
        self._map = bpf.map_create(
            bpf.MAP_TYPE_LRU_HASH, KEY.size, VALUE.size, max_entries, PROGRAM_NAME
        )
        self._fds.append(self._map)
        self._drain = bpf.MapDrain(self._map, KEY.size, VALUE.size)
        cgroup = open_cgroup2_root(mounted=use_host_mount)
        try:
            for outgoing, hook in (
                (False, bpf.ATTACH_CGROUP_INET_INGRESS),
                (True, bpf.ATTACH_CGROUP_INET_EGRESS),
            ):
                code = build_program(self._map, outgoing=outgoing)
                prog = bpf.prog_load(bpf.PROG_TYPE_CGROUP_SKB, code, PROGRAM_NAME)
                self._fds.append(prog)
                self._fds.append(bpf.link_create(prog, cgroup, hook, "attaching to cgroup v2"))
        finally:
            os.close(cgroup)

    @property
    def prog_ids(self) -> list[int]:
        """Kernel-wide ids of the two programs (to check they are gone after close)."""
        return [bpf.object_id(fd) for fd in self._fds[1::2]]

    def read(self) -> list[SkbFlow]:
        """Every flow counted since the previous read (popped from the map)."""
        if not self._fds:
            raise ValueError("CgroupSkbCounter is closed")
        return [parse_entry(k, v) for k, v in self._drain.pop()]

    def close(self) -> None:
        """Detach (links first) and free the programs and the map; idempotent."""
        while self._fds:
            os.close(self._fds.pop())

    def __enter__(self) -> CgroupSkbCounter:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

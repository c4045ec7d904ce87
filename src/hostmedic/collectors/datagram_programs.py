"""The eBPF programs of the in-kernel UDP/ICMP counter, assembled in Python; pure.

* ``build_program``: one per cgroup_skb hook (ingress, egress). For TCP it only looks at the
  header length and, in the rare segment whose options go beyond the usual timestamp
  option (SACK blocks during loss), adds the extra option bytes under the socket cookie
  alone (handshake segments excluded: their options are known). For other IP traffic it
  reads the IP and transport headers by direct packet access and adds the IP-level bytes
  and the packet count to an LRU hash keyed by::

      socket | local address | remote address | local port | remote port |
      family | protocol | outgoing | ICMP type

  (ICMP echo messages carry their echo id as the local port.) The socket is named by its
  *tag* (its address relative to the slot map's, see the fast path: free to compute), or
  by its cookie where there is no slot map. ``skb->len`` at these hooks is the IP
  datagram's length; a GSO/GRO super-packet counts its segments, each with its own IP and
  UDP header. When an entry is created (once per flow per read, off the per-packet path)
  the namespace (netns cookie), the interface, the socket cookie and, on egress, the
  sending thread group id are stored beside the counters: a socket that is born and
  closed between two reads still names its process. Every byte of key costs hashing time
  on every packet, and every helper call ~20 ns: the hash path calls one (the lookup).
* The fast path, inside ``build_program``: a datagram of a *connected* UDP socket to or
  from its own peer goes to the socket's slot in a direct-mapped cache (an ``ARRAY`` map
  of 2**:data:`SLOT_BITS` :data:`SLOT` entries, indexed by a hash of the socket's address):
  no helper call at all, no hashing of the key, no cookie. Helper calls are what a packet
  pays for here (~20 ns each on a VM with retpolines, more than the rest of the program;
  BENCHMARKS.md), and array lookups are inlined by the verifier. A socket takes a free
  slot with its first datagram (there it calls helpers, once); a slot taken by another
  socket sends it to the hash map.
* ``build_flush_program``: an iterator over the slot map that moves every slot's counts
  into the hash map with atomic exchanges (run before each read) and frees idle slots.
* ``build_release_program``: ``cgroup/sock_release``, the same for a socket being closed.

Every exit of the hook programs returns 1 ("allow"): the counter never drops a packet.
"""

from __future__ import annotations

import socket
import struct

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
    Insn,
    Label,
    X,
)

# Key (48 bytes) and value (40 bytes) of the counters map. Ports and echo ids are in
# network byte order; an IPv4 address fills the first 4 bytes of its 16-byte field. The
# key's first field names the socket (its tag, or its cookie without a slot map); the
# value: bytes, packets, netns cookie, sender, interface, socket cookie.
KEY = struct.Struct("=Q16s16s2s2sBBBB")
VALUE = struct.Struct("=QQQIIQ")
_K_SOCKET, _K_LOCAL, _K_REMOTE, _K_LPORT, _K_RPORT = 0, 8, 24, 40, 42
_K_FAMILY, _K_PROTO, _K_OUT, _K_TYPE = 44, 45, 46, 47
# A slot of the connected sockets' cache (the fast path): the owning socket's tag, then
# cumulative-since-flush bytes and packets out, then in; the socket's counters-map key
# (direction byte 0); the namespace, the first sender, the interface and the socket
# cookie, as the counters map stores them. An ARRAY map of SLOTS of them, direct-mapped
# by a hash of the tag.
SLOT = struct.Struct("=QQQQQ48sQIIQ")
_S_TAG, _S_TX, _S_RX, _S_KEY, _S_NETNS, _S_TGID, _S_IFINDEX, _S_COOKIE = (
    0, 8, 24, 40, 88, 96, 100, 104,
)  # fmt: skip
SLOT_BITS = 13  # 8,192 slots (896 KiB): more connected sockets than most servers hold
# A slot's tag: 0 free, 1 being filled or flushed, else its socket's address minus the
# slot map's (both are kernel objects, at least 8-byte aligned: never 0 or 1).
_FREE, _BUSY = 0, 1
_GOLDEN = 0x9E3779B97F4A7C15  # multiplicative hashing: the top bits mix every bit
# Stack frame: the key at -48, the counters value at -88, a slot index at -96, a tag at -104.
_KEY = -KEY.size
_VAL = _KEY - VALUE.size
_V_NETNS, _V_TGID, _V_IFINDEX, _V_COOKIE = 16, 24, 28, 32  # in VALUE
_IDX = _VAL - 8
_TAG = _IDX - 8
# struct __sk_buff offsets (uapi, stable).
_SKB_LEN, _SKB_PROTOCOL, _SKB_IFINDEX, _SKB_DATA, _SKB_DATA_END, _SKB_GSO_SEGS, _SKB_SK = (
    0, 16, 40, 76, 80, 164, 168,
)  # fmt: skip
# struct bpf_sock offsets (uapi, stable).
_SK_PROTOCOL, _SK_DST_PORT, _SK_STATE = 12, 48, 72
_TCP_ESTABLISHED = 1  # a connected UDP socket's state
# struct bpf_iter__bpf_map_elem: meta, map, key, value
_ITER_VALUE = 24
ITER_TARGET = "bpf_iter_bpf_map_elem"
_ETH_P_IP_BE, _ETH_P_IPV6_BE = 0x0008, 0xDD86  # skb->protocol is big-endian in a u32
_IPV4_FRAGMENT_OFFSET_BE = 0xFF1F  # htons(0x1fff), as a little-endian u16 load sees it
_BPF_NOEXIST = 1
_TCP_SYN = 0x02
_TCP_USUAL_HEADER = 32  # 20 bytes + the timestamp option (NOP, NOP, 10 bytes)
ECHO_TYPES = {socket.IPPROTO_ICMP: (0, 8), socket.IPPROTO_ICMPV6: (128, 129)}
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


def _count(counters_fd: int, prefix: str, fill: list[Insn], done: str) -> list[Insn | Label]:
    """Add r7 bytes and r9 packets to the counters entry keyed at FP + _KEY, creating it
    (``fill`` writes the namespace, sender and interface into the new value) if need be;
    then ``goto done``. Clobbers r0-r5."""
    k = _KEY
    return [
        *bpf.ld_map_fd(R1, counters_fd),
        bpf.mov_reg(R2, FP),
        bpf.alu_imm(ADD, R2, k),
        bpf.call(bpf.FN_MAP_LOOKUP_ELEM),
        bpf.jmp_imm(JEQ, R0, 0, prefix + "insert"),
        *_add_counters(),
        bpf.ja(done),
        Label(prefix + "insert"),
        bpf.stx(8, FP, _VAL, R7),
        bpf.stx(8, FP, _VAL + 8, R9),
        *fill,
        *bpf.ld_map_fd(R1, counters_fd),
        bpf.mov_reg(R2, FP),
        bpf.alu_imm(ADD, R2, k),
        bpf.mov_reg(R3, FP),
        bpf.alu_imm(ADD, R3, _VAL),
        bpf.mov_imm(R4, _BPF_NOEXIST),
        bpf.call(bpf.FN_MAP_UPDATE_ELEM),
        bpf.jmp_imm(JEQ, R0, 0, done),
        # another CPU inserted the same key first: add to its entry
        *bpf.ld_map_fd(R1, counters_fd),
        bpf.mov_reg(R2, FP),
        bpf.alu_imm(ADD, R2, k),
        bpf.call(bpf.FN_MAP_LOOKUP_ELEM),
        bpf.jmp_imm(JEQ, R0, 0, done),
        *_add_counters(),
        bpf.ja(done),
    ]


def _sender(known: bool) -> list[Insn]:
    """r0 = the current thread group id where it names the sender (``known``: egress runs
    in the sending thread, the release hook in the closing one), else 0 (ingress runs in
    whatever context received the packet)."""
    if known:
        return [bpf.call(bpf.FN_GET_CURRENT_PID_TGID), bpf.alu_imm(RSH, R0, 32)]
    return [bpf.mov_imm(R0, 0)]


def _same_flow() -> list[Insn]:
    """``goto slow`` unless the key stored at r0 + _S_KEY is the packet's (FP + _KEY) for
    everything but the cookie, the direction and the ICMP type: addresses, ports, family
    and protocol. A socket that connected elsewhere since it took its slot fails it."""
    out: list[Insn] = []
    for off, size in ((8, 8), (16, 8), (24, 8), (32, 8), (_K_LPORT, 4), (_K_FAMILY, 2)):
        out += [
            bpf.ldx(size, R2, R0, _S_KEY + off),
            bpf.ldx(size, R3, FP, _KEY + off),
            bpf.jmp_reg(JNE, R2, R3, "slow"),
        ]
    return out


def _slot_of(slots_fd: int, bits: int, fail: str) -> list[Insn | Label]:
    """r0 = the slot of the socket tagged r8 among 2**bits (``goto fail`` if none);
    clobbers r1-r5. The array lookup is inlined by the verifier: no helper call."""
    return [
        bpf.mov_reg(R2, R8),
        *bpf.ld_imm64(R3, _GOLDEN),
        Insn(ALU64 | MUL | X, R2, R3),
        bpf.alu_imm(RSH, R2, 64 - bits),
        bpf.stx(4, FP, _IDX, R2),
        *bpf.ld_map_fd(R1, slots_fd),
        bpf.mov_reg(R2, FP),
        bpf.alu_imm(ADD, R2, _IDX),
        bpf.call(bpf.FN_MAP_LOOKUP_ELEM),
        bpf.jmp_imm(JEQ, R0, 0, fail),
    ]


def _tag(slots_fd: int, sock: int) -> list[Insn]:
    """r8 = the tag of the socket pointed to by ``sock``: its address relative to the slot
    map's. (A difference of two pointers is a plain number to the verifier, which allows
    it to a privileged loader; it is only ever hashed and compared.)"""
    return [*bpf.ld_map_fd(R1, slots_fd), bpf.mov_reg(R8, sock), Insn(ALU64 | SUB | X, R8, R1)]


def _fast_path(slots_fd: int, bits: int, outgoing: bool) -> list[Insn | Label]:
    """A datagram of a *connected* UDP socket to or from its own peer goes to the socket's
    slot in the direct-mapped cache: no helper call, no hashing of the key, no cookie.
    Anything else (unconnected sockets, another peer, a fragment without ports, another
    interface, a slot taken by another socket) falls through to ``slow``. Expects
    r4 = protocol, r6 = skb, r7/r9 = bytes/packets, the key at FP + _KEY."""
    counters = _S_TX if outgoing else _S_RX
    return [
        bpf.jmp_imm(JNE, R4, socket.IPPROTO_UDP, "slow"),
        bpf.ldx(8, R8, R6, _SKB_SK),
        bpf.jmp_imm(JEQ, R8, 0, "slow"),
        bpf.ldx(4, R2, R8, _SK_STATE),
        bpf.jmp_imm(JNE, R2, _TCP_ESTABLISHED, "slow"),
        *_tag(slots_fd, R8),
        *_slot_of(slots_fd, bits, "slow"),
        bpf.ldx(8, R2, R0, _S_TAG),
        bpf.jmp_reg(JNE, R2, R8, "claim"),
        Label("stored"),
        *_same_flow(),
        bpf.ldx(4, R2, R0, _S_IFINDEX),
        bpf.ldx(4, R3, R6, _SKB_IFINDEX),
        bpf.jmp_reg(JNE, R2, R3, "slow"),
        bpf.atomic_add(8, R0, counters, R7),
        bpf.atomic_add(8, R0, counters + 8, R9),
        bpf.ja("out"),
        # The socket's first datagram since it had a slot: take the slot if it is free and
        # empty (a freed socket's late counts wait there for the flush), mark it busy while
        # filling it, then publish the tag (an exchange: ordered after the fill).
        Label("claim"),
        bpf.jmp_imm(JNE, R2, _FREE, "slow"),
        bpf.ldx(8, R2, R0, _S_TX + 8),
        bpf.ldx(8, R3, R0, _S_RX + 8),
        Insn(ALU64 | bpf.OR | X, R2, R3),
        bpf.jmp_imm(JNE, R2, 0, "slow"),
        bpf.stx(8, FP, _TAG, R8),
        bpf.mov_reg(R8, R0),
        bpf.mov_imm(R0, _FREE),
        bpf.mov_imm(R2, _BUSY),
        bpf.atomic_cmpxchg(8, R8, _S_TAG, R2),
        bpf.jmp_imm(JNE, R0, _FREE, "slow"),
        *[bpf.st_imm(8, R8, off, 0) for off in range(_S_TX, _S_KEY, 8)],
        bpf.mov_reg(R1, R6),
        bpf.call(bpf.FN_GET_SOCKET_COOKIE),
        bpf.stx(8, R8, _S_COOKIE, R0),
        bpf.ldx(8, R2, FP, _TAG),
        bpf.stx(8, FP, _KEY + _K_SOCKET, R2),
        bpf.st_imm(1, FP, _KEY + _K_OUT, 0),
        *_copy_key(FP, _KEY, R8, _S_KEY),
        bpf.st_imm(1, FP, _KEY + _K_OUT, int(outgoing)),
        bpf.mov_reg(R1, R6),
        bpf.call(bpf.FN_GET_NETNS_COOKIE),
        bpf.stx(8, R8, _S_NETNS, R0),
        *_sender(outgoing),
        bpf.stx(4, R8, _S_TGID, R0),
        bpf.ldx(4, R2, R6, _SKB_IFINDEX),
        bpf.stx(4, R8, _S_IFINDEX, R2),
        bpf.ldx(8, R2, FP, _TAG),
        bpf.atomic_xchg(8, R8, _S_TAG, R2),
        bpf.mov_reg(R0, R8),
        bpf.ja("stored"),
    ]


def _socket_name(slots_fd: int) -> list[Insn | Label]:
    """The key's first field for the hash path: the socket's tag where there is a slot
    map (no helper call: the same name the slot cache's flush writes, so a socket's
    datagrams add up in one entry whichever path they took), else its cookie. Expects
    r6 = skb; clobbers r0-r2 and r8."""
    if slots_fd < 0:
        return [
            bpf.mov_reg(R1, R6),
            bpf.call(bpf.FN_GET_SOCKET_COOKIE),
            bpf.stx(8, FP, _KEY + _K_SOCKET, R0),
        ]
    return [
        bpf.ldx(8, R2, R6, _SKB_SK),
        bpf.jmp_imm(JEQ, R2, 0, "named"),  # no socket: the name stays 0
        *_tag(slots_fd, R2),
        bpf.stx(8, FP, _KEY + _K_SOCKET, R8),
        Label("named"),
    ]


def _copy_key(src: int, src_off: int, dst: int, dst_off: int) -> list[Insn]:
    """Copy a counters key (48 bytes) in 8-byte words."""
    out: list[Insn] = []
    for i in range(0, KEY.size, 8):
        out += [bpf.ldx(8, R2, src, src_off + i), bpf.stx(8, dst, dst_off + i, R2)]
    return out


def _flush(counters_fd: int, *, closing: bool) -> list[Insn | Label]:
    """Move what the slot at r6 counted since its last flush into the counters map (both
    directions), then ``goto flushed``; r8 ends non-zero if there was anything. Each count
    is taken with an atomic exchange, so a datagram counted meanwhile is in this flush or
    the next, never in both or none. ``closing`` (the socket-release hook): the sender is
    the closing process."""
    fill = [
        bpf.ldx(8, R2, R6, _S_NETNS),
        bpf.stx(8, FP, _VAL + _V_NETNS, R2),
        *(_sender(True) if closing else [bpf.ldx(4, R0, R6, _S_TGID)]),
        bpf.stx(4, FP, _VAL + _V_TGID, R0),
        bpf.ldx(4, R2, R6, _S_IFINDEX),
        bpf.stx(4, FP, _VAL + _V_IFINDEX, R2),
        bpf.ldx(8, R2, R6, _S_COOKIE),
        bpf.stx(8, FP, _VAL + _V_COOKIE, R2),
    ]
    prog: list[Insn | Label] = [bpf.mov_imm(R8, 0), *_copy_key(R6, _S_KEY, FP, _KEY)]
    for direction, at in (("tx", _S_TX), ("rx", _S_RX)):
        done = "flushed" if direction == "rx" else "flushed_tx"
        prog += [
            bpf.mov_imm(R7, 0),
            bpf.atomic_xchg(8, R6, at, R7),
            bpf.mov_imm(R9, 0),
            bpf.atomic_xchg(8, R6, at + 8, R9),
            bpf.mov_reg(R2, R7),
            Insn(ALU64 | bpf.OR | X, R2, R9),
            Insn(ALU64 | bpf.OR | X, R8, R2),
            bpf.jmp_imm(JEQ, R2, 0, done),
            bpf.st_imm(1, FP, _KEY + _K_OUT, int(direction == "tx")),
            *_count(counters_fd, direction, fill, done),
        ]
        if direction == "tx":
            prog.append(Label(done))
    return prog


def _take(tag: int) -> list[Insn]:
    """Mark the slot at r6 busy if its tag is still ``tag`` (a register), else ``goto
    out``: a slot is flushed by one program at a time."""
    return [
        bpf.mov_reg(R0, tag),
        bpf.mov_imm(R3, _BUSY),
        bpf.atomic_cmpxchg(8, R6, _S_TAG, R3),
        bpf.jmp_reg(JNE, R0, tag, "out"),
    ]


def build_release_program(counters_fd: int, slots_fd: int, slot_bits: int = SLOT_BITS) -> bytes:
    """cgroup/sock_release: a closing UDP socket's last counts go to the counters map, with
    the closing process as the sender, and its slot is freed. Returns 1 (the hook's
    "allow"); pure."""
    return bpf.assemble([
        bpf.mov_reg(R6, R1),
        bpf.ldx(4, R2, R6, _SK_PROTOCOL),
        bpf.jmp_imm(JNE, R2, socket.IPPROTO_UDP, "out"),
        *_tag(slots_fd, R6),
        *_slot_of(slots_fd, slot_bits, "out"),
        bpf.ldx(8, R2, R0, _S_TAG),
        bpf.jmp_reg(JNE, R2, R8, "out"),
        bpf.mov_reg(R6, R0),
        *_take(R8),
        *_flush(counters_fd, closing=True),
        Label("flushed"),
        bpf.mov_imm(R2, _FREE),
        bpf.atomic_xchg(8, R6, _S_TAG, R2),
        Label("out"),
        bpf.mov_imm(R0, 1),
        bpf.exit_(),
    ])  # fmt: skip


def build_flush_program(counters_fd: int) -> bytes:
    """An iterator over the slot map, run right before each read: moves every slot's
    counts into the counters map and frees the slots that counted nothing since the
    previous flush (their socket went quiet or away; it takes a slot again with its next
    datagram). A free slot is only visited when a freed socket's late counts wait in it.
    Pure."""
    return bpf.assemble([
        bpf.ldx(8, R6, R1, _ITER_VALUE),
        bpf.jmp_imm(JEQ, R6, 0, "out"),
        bpf.ldx(8, R2, R6, _S_TAG),
        bpf.jmp_imm(JEQ, R2, _BUSY, "out"),
        bpf.jmp_imm(JNE, R2, _FREE, "take"),
        bpf.ldx(8, R3, R6, _S_TX + 8),
        bpf.ldx(8, R4, R6, _S_RX + 8),
        Insn(ALU64 | bpf.OR | X, R3, R4),
        bpf.jmp_imm(JEQ, R3, 0, "out"),
        Label("take"),
        bpf.stx(8, FP, _TAG, R2),
        *_take(R2),
        *_flush(counters_fd, closing=False),
        Label("flushed"),
        bpf.ldx(8, R2, FP, _TAG),
        bpf.jmp_imm(JNE, R8, 0, "keep"),
        bpf.mov_imm(R2, _FREE),  # idle since the previous flush: free it
        Label("keep"),
        bpf.atomic_xchg(8, R6, _S_TAG, R2),
        Label("out"),
        bpf.mov_imm(R0, 0),
        bpf.exit_(),
    ])  # fmt: skip


def build_program(
    counters_fd: int, *, outgoing: bool, slots_fd: int = -1, slot_bits: int = SLOT_BITS
) -> bytes:
    """Assemble the program for one hook (egress when ``outgoing``); pure. With a slot map
    (``slots_fd``, 2**slot_bits slots), connected UDP sockets take the fast path."""
    src_at, dst_at = (_K_LOCAL, _K_REMOTE) if outgoing else (_K_REMOTE, _K_LOCAL)
    sport_at, dport_at = (_K_LPORT, _K_RPORT) if outgoing else (_K_RPORT, _K_LPORT)
    k = _KEY
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
        bpf.jmp_imm(JEQ, R2, ECHO_TYPES[socket.IPPROTO_ICMP][0], "echo"),
        bpf.jmp_imm(JEQ, R2, ECHO_TYPES[socket.IPPROTO_ICMP][1], "echo"),
        bpf.ja("count"),
        Label("icmp6"),
        bpf.ldx(1, R2, R3, 0),
        bpf.stx(1, FP, k + _K_TYPE, R2),
        bpf.jmp_imm(JEQ, R2, ECHO_TYPES[socket.IPPROTO_ICMPV6][0], "echo"),
        bpf.jmp_imm(JNE, R2, ECHO_TYPES[socket.IPPROTO_ICMPV6][1], "count"),
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
        *(_fast_path(slots_fd, slot_bits, outgoing) if slots_fd >= 0 else []),
        Label("slow"),
        *_socket_name(slots_fd),
        # A new entry (once per flow per read): the namespace, the sender, the interface
        # and the cookie go into the value, off the per-packet path (a socket never
        # changes namespace).
        *_count(
            counters_fd,
            "",
            [
                bpf.mov_reg(R1, R6),
                bpf.call(bpf.FN_GET_NETNS_COOKIE),
                bpf.stx(8, FP, _VAL + _V_NETNS, R0),
                *_sender(outgoing),
                bpf.stx(4, FP, _VAL + _V_TGID, R0),
                bpf.ldx(4, R2, R6, _SKB_IFINDEX),
                bpf.stx(4, FP, _VAL + _V_IFINDEX, R2),
                bpf.mov_reg(R1, R6),
                bpf.call(bpf.FN_GET_SOCKET_COOKIE),
                bpf.stx(8, FP, _VAL + _V_COOKIE, R0),
            ],
            "out",
        ),
        Label("out"),
        bpf.mov_imm(R0, 1),  # always allow: this program only counts
        bpf.exit_(),
    ]
    return bpf.assemble(prog)

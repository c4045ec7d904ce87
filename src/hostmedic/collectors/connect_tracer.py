"""Exact pid/comm for every outbound TCP connect(), even ones that last a few milliseconds.

sock_diag destroy events report a short-lived connection's final counters but no process,
and /proc/*/fd polling misses anything that lives between two samples. This collector loads
a small hand-assembled eBPF program on the raw tracepoint ``sock:inet_sock_set_state``
(attached with BPF_RAW_TRACEPOINT_OPEN by name: no tracefs mount, no kprobes, no bcc,
no kernel headers) that only *observes*:

* newstate == SYN_SENT: runs inside the connect() caller (tcp_v4/v6_connect), so it stores
  sk pointer → (tgid, comm, ktime) in the ``pending`` LRU map. The source port is usually
  not assigned yet at this point (inet_hash_connect runs just after), so nothing else is read.
* oldstate == SYN_SENT (→ ESTABLISHED, or → CLOSE for a refused/failed connect): often in
  softirq, where the current task is meaningless, but the sk pointer is the same; the
  program reads the now-complete 4-tuple and the netns inode from the socket and moves the
  entry into the ``events`` LRU map keyed by (sk, start ktime), so neither a reused socket
  address nor a reused 4-tuple overwrites an undrained event.

Struct offsets (``struct sock_common`` members, ``sock.sk_protocol``, ``net.ns.inum``) come
from the kernel's BTF at load time. Both maps are LRU hashes, so kernel memory is bounded
(about 9 MB + 0.7 MB at the default 65,536 events) and old undrained events are evicted
first. ``parse_event`` is the pure decoder of one map entry.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

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
    R8,
    R9,
    RSH,
    BpfError,
    Insn,
    Label,
)
from hostmedic.collectors.btf import Btf, FieldLayout, parse_btf, vmlinux_btf
from hostmedic.errors import FactUnavailable, ParseError

TRACEPOINT = "inet_sock_set_state"
TCP_ESTABLISHED = 1
TCP_SYN_SENT = 2
TCP_CLOSE = 7

# events map: key = (sk pointer, start ktime); value below (72 bytes).
_EV_KEY = struct.Struct("=QQ")
# tgid, netns inode, start ns, comm, family, sport (host order), dport (wire order), newstate,
# saddr, daddr (4 bytes used for AF_INET).
_EV_VALUE = struct.Struct("=IIQ16sHH2sH16s16s")
_PENDING_VALUE_SIZE = 32  # tgid u32, pad, start ns u64, comm[16]
_V4_MAPPED = b"\0" * 10 + b"\xff\xff"

# Stack frame of the program (offsets from r10).
_KEY_PENDING = -8
_SCRATCH = -16
_KEY_EV = -32
_EV = -32 - _EV_VALUE.size  # -104
_MAX_SPAN = 256
# Where each field of the event value (see _EV_VALUE) sits in that frame.
_EV_TGID, _EV_NETNS, _EV_START, _EV_COMM = _EV, _EV + 4, _EV + 8, _EV + 16
_EV_FAMILY, _EV_SPORT, _EV_DPORT, _EV_STATE = _EV + 32, _EV + 34, _EV + 36, _EV + 38
_EV_SADDR, _EV_DADDR = _EV + 40, _EV + 56

_SOCK_COMMON_FIELDS = ("skc_daddr", "skc_rcv_saddr", "skc_dport", "skc_num", "skc_family")
_SOCK_COMMON_V6 = ("skc_v6_daddr", "skc_v6_rcv_saddr")


@dataclass(frozen=True, slots=True)
class ConnectEvent:
    """One outbound TCP connect(): the 4-tuple and the process that called connect().

    ``monotonic_ns`` is when connect() started (CLOCK_MONOTONIC, comparable with
    ``time.monotonic_ns()``). ``established`` is False when the handshake failed (refused,
    timed out, unreachable). IPv4-mapped IPv6 addresses are shown as plain IPv4, the same
    way sockdiag shows them, so events join on (family, addresses, ports).
    """

    family: int
    local_ip: str
    local_port: int
    remote_ip: str
    remote_port: int
    pid: int
    comm: str
    monotonic_ns: int
    netns_inode: int = 0
    established: bool = True


@dataclass(frozen=True, slots=True)
class SockLayout:
    """Kernel structure offsets the program needs, found in BTF."""

    fields: dict[str, FieldLayout]  # sock_common members, by name
    protocol: FieldLayout  # sock.sk_protocol (a bitfield before 5.6)
    netns_inum: FieldLayout | None  # net.ns.inum; None when not found (netns reported as 0)


def layout_from_btf(data: bytes | Btf) -> SockLayout:
    """Extract the offsets from BTF (a raw blob or parsed); ParseError for bad BTF, KeyError
    if absent."""
    btf = data if isinstance(data, Btf) else parse_btf(data)
    fields = {name: btf.field("sock_common", name) for name in _SOCK_COMMON_FIELDS}
    for name in _SOCK_COMMON_V6:
        # A kernel built without IPv6 lacks these: it only ever reports AF_INET events.
        with contextlib.suppress(KeyError):
            fields[name] = btf.field("sock_common", name)
    base = btf.field("sock", "__sk_common").offset_bytes
    if base:
        raise KeyError("struct sock does not start with __sk_common")
    try:
        fields["skc_net"] = btf.field("sock_common", "skc_net")
        netns: FieldLayout | None = btf.field("net", "ns.inum")
    except KeyError:
        netns = None  # kernel built without network namespaces, or an unfamiliar layout
    for name, layout in fields.items():
        if layout.bitfield_bits:
            raise KeyError(f"sock_common.{name} is a bitfield")
    return SockLayout(fields, btf.field("sock", "sk_protocol"), netns)


def _probe_read(helper: int, dst_off: int, size: int, src_reg: int, src_off: int) -> list[Insn]:
    return [
        bpf.mov_reg(R1, FP),
        bpf.alu_imm(ADD, R1, dst_off),
        bpf.mov_imm(R2, size),
        bpf.mov_reg(R3, src_reg),
        bpf.alu_imm(ADD, R3, src_off),
        bpf.call(helper),
    ]


def _copy(buf: int, src_off: int, dst_off: int, size: int) -> list[Insn]:
    """Copy ``size`` bytes stack→stack in 4-byte words (only 4-byte alignment is assured)."""
    step = 4 if size >= 4 else size
    out: list[Insn] = []
    for i in range(0, size, step):
        out += [bpf.ldx(step, R2, FP, buf + src_off + i), bpf.stx(step, FP, dst_off + i, R2)]
    return out


def build_program(
    layout: SockLayout, pending_fd: int, events_fd: int, probe_read: int = bpf.FN_PROBE_READ_KERNEL
) -> bytes:
    """Assemble the tracepoint program for the given offsets and map fds (pure)."""
    f = layout.fields
    start = min(x.offset_bytes for x in f.values()) & ~7
    end = max(x.offset_bytes + x.size_bytes for x in f.values())
    span = (end - start + 7) & ~7
    if span > _MAX_SPAN:
        raise KeyError(f"struct sock_common fields span {span} bytes, more than {_MAX_SPAN}")
    buf = _EV - span  # copy of sock_common[start:start+span] on the stack

    def at(name: str) -> int:
        return f[name].offset_bytes - start

    proto = layout.protocol
    if proto.bitfield_bits:
        word = (proto.bit_offset // 32) * 4
        read_proto = [
            *_probe_read(probe_read, _SCRATCH, 4, R7, word),
            bpf.ldx(4, R1, FP, _SCRATCH),
            bpf.alu_imm(RSH, R1, proto.bit_offset - word * 8),
            bpf.alu_imm(AND, R1, (1 << proto.bitfield_bits) - 1),
        ]
    else:
        read_proto = [
            *_probe_read(probe_read, _SCRATCH, proto.size_bytes, R7, proto.offset_bytes),
            bpf.ldx(proto.size_bytes, R1, FP, _SCRATCH),
        ]
    if "skc_v6_daddr" in f:
        v6 = _copy(buf, at("skc_v6_rcv_saddr"), _EV_SADDR, 16)
        v6 += _copy(buf, at("skc_v6_daddr"), _EV_DADDR, 16)
    else:
        v6 = []  # unreachable at run time: such a kernel has no AF_INET6 sockets
    netns: list[Insn] = []
    if layout.netns_inum is not None:
        netns = [
            bpf.ldx(8, R3, FP, buf + at("skc_net")),
            bpf.jmp_imm(JEQ, R3, 0, "store"),
            # On failure the helper zeroes the destination: netns is then reported as 0.
            *_probe_read(probe_read, _EV_NETNS, 4, R3, layout.netns_inum.offset_bytes),
        ]
    prog: list[Insn | Label] = [
        bpf.mov_reg(R6, R1),
        bpf.ldx(8, R7, R6, 0),  # ctx[0]: struct sock *sk
        bpf.ldx(8, R8, R6, 8),  # ctx[1]: oldstate
        bpf.ldx(8, R9, R6, 16),  # ctx[2]: newstate
        bpf.stx(8, FP, _KEY_PENDING, R7),
        bpf.st_imm(8, FP, _SCRATCH, 0),
        *read_proto,
        # MPTCP and SCTP sockets fire the same tracepoint.
        bpf.jmp_imm(JNE, R1, socket.IPPROTO_TCP, "out"),
        bpf.jmp_imm(JEQ, R9, TCP_SYN_SENT, "syn_sent", wide=False),
        bpf.jmp_imm(JNE, R8, TCP_SYN_SENT, "out", wide=False),
        # Leaving SYN_SENT: the 4-tuple is complete now.
        *bpf.ld_map_fd(R1, pending_fd),
        bpf.mov_reg(R2, FP),
        bpf.alu_imm(ADD, R2, _KEY_PENDING),
        bpf.call(bpf.FN_MAP_LOOKUP_ELEM),
        bpf.jmp_imm(JEQ, R0, 0, "out"),  # connect() started before we attached
        *[bpf.st_imm(8, FP, off, 0) for off in range(_EV, _KEY_EV, 8)],
        bpf.ldx(4, R1, R0, 0),
        bpf.stx(4, FP, _EV_TGID, R1),
        bpf.ldx(8, R1, R0, 8),
        bpf.stx(8, FP, _EV_START, R1),
        bpf.stx(8, FP, _KEY_EV + 8, R1),
        bpf.stx(8, FP, _KEY_EV, R7),
        bpf.ldx(8, R1, R0, 16),
        bpf.stx(8, FP, _EV_COMM, R1),
        bpf.ldx(8, R1, R0, 24),
        bpf.stx(8, FP, _EV_COMM + 8, R1),
        bpf.stx(2, FP, _EV_STATE, R9),
        *_probe_read(probe_read, buf, span, R7, start),
        bpf.jmp_imm(JNE, R0, 0, "forget", wide=False),
        bpf.ldx(2, R1, FP, buf + at("skc_family")),
        bpf.stx(2, FP, _EV_FAMILY, R1),
        bpf.ldx(2, R2, FP, buf + at("skc_num")),
        bpf.stx(2, FP, _EV_SPORT, R2),
        bpf.ldx(2, R2, FP, buf + at("skc_dport")),
        bpf.stx(2, FP, _EV_DPORT, R2),
        bpf.jmp_imm(JEQ, R1, socket.AF_INET6 if v6 else -1, "v6"),
        bpf.jmp_imm(JNE, R1, socket.AF_INET, "forget"),
        *_copy(buf, at("skc_rcv_saddr"), _EV_SADDR, 4),
        *_copy(buf, at("skc_daddr"), _EV_DADDR, 4),
        bpf.ja("netns"),
        Label("v6"),
        *v6,
        Label("netns"),
        *netns,
        Label("store"),
        *bpf.ld_map_fd(R1, events_fd),
        bpf.mov_reg(R2, FP),
        bpf.alu_imm(ADD, R2, _KEY_EV),
        bpf.mov_reg(R3, FP),
        bpf.alu_imm(ADD, R3, _EV),
        bpf.mov_imm(R4, 0),
        bpf.call(bpf.FN_MAP_UPDATE_ELEM),
        Label("forget"),
        *bpf.ld_map_fd(R1, pending_fd),
        bpf.mov_reg(R2, FP),
        bpf.alu_imm(ADD, R2, _KEY_PENDING),
        bpf.call(bpf.FN_MAP_DELETE_ELEM),
        bpf.ja("out"),
        # Entering SYN_SENT: we run in the connect() caller's context.
        Label("syn_sent"),
        *[bpf.st_imm(8, FP, _EV + off, 0) for off in range(0, _PENDING_VALUE_SIZE, 8)],
        bpf.call(bpf.FN_GET_CURRENT_PID_TGID),
        bpf.alu_imm(RSH, R0, 32),
        bpf.stx(4, FP, _EV, R0),
        bpf.call(bpf.FN_KTIME_GET_NS),
        bpf.stx(8, FP, _EV + 8, R0),
        bpf.mov_reg(R1, FP),
        bpf.alu_imm(ADD, R1, _EV + 16),
        bpf.mov_imm(R2, 16),
        bpf.call(bpf.FN_GET_CURRENT_COMM),
        *bpf.ld_map_fd(R1, pending_fd),
        bpf.mov_reg(R2, FP),
        bpf.alu_imm(ADD, R2, _KEY_PENDING),
        bpf.mov_reg(R3, FP),
        bpf.alu_imm(ADD, R3, _EV),
        bpf.mov_imm(R4, 0),
        bpf.call(bpf.FN_MAP_UPDATE_ELEM),
        Label("out"),
        bpf.mov_imm(R0, 0),
        bpf.exit_(),
    ]
    return bpf.assemble(prog)


def _ip_text(family: int, raw: bytes) -> str:
    if family == socket.AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    if raw[:12] == _V4_MAPPED:
        return socket.inet_ntop(socket.AF_INET, raw[12:])
    return socket.inet_ntop(socket.AF_INET6, raw)


def parse_event(key: bytes, value: bytes) -> ConnectEvent:
    """Decode one ``events`` map entry (key, value) into a ConnectEvent; pure."""
    if len(key) != _EV_KEY.size or len(value) != _EV_VALUE.size:
        raise ParseError(f"connect event of {len(key)}+{len(value)} bytes, expected 16+72")
    tgid, netns, start, comm, family, sport, dport, state, saddr, daddr = _EV_VALUE.unpack(value)
    if family not in (socket.AF_INET, socket.AF_INET6):
        raise ParseError(f"connect event with address family {family}")
    return ConnectEvent(
        family=family,
        local_ip=_ip_text(family, saddr),
        local_port=sport,
        remote_ip=_ip_text(family, daddr),
        remote_port=int.from_bytes(dport, "big"),
        pid=tgid,
        comm=comm.split(b"\0", 1)[0].decode("utf-8", "replace"),
        monotonic_ns=start,
        netns_inode=netns,
        established=state == TCP_ESTABLISHED,
    )


def effective_caps() -> int | None:
    """The process's effective capability set (/proc/self/status CapEff), None if unknown."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    except (OSError, IndexError, ValueError):
        return None
    return None


def _permission_reason() -> str:
    """Explain an EPERM from bpf(2) in plain English, from what /proc and /sys show."""
    parts = ["the kernel refused to load the BPF program (EPERM)"]
    caps = effective_caps() or 0
    sys_admin, perfmon, cap_bpf = (bool(caps >> bit & 1) for bit in (21, 38, 39))
    if sys_admin or (cap_bpf and perfmon):
        parts.append(
            "although the process has the needed capabilities: kernel lockdown or a security "
            "module (SELinux, AppArmor, a BPF LSM policy) forbids it"
        )
    elif cap_bpf:
        parts.append("tracing programs need CAP_PERFMON as well as CAP_BPF")
    else:
        parts.append("it needs root, or CAP_BPF plus CAP_PERFMON")
        try:
            unpriv = Path("/proc/sys/kernel/unprivileged_bpf_disabled").read_text().strip()
            # Tracing programs are never allowed unprivileged; the sysctl only adds to that.
            if unpriv != "0":
                parts.append(f"kernel.unprivileged_bpf_disabled={unpriv} also forbids it")
        except OSError:
            pass
    try:
        lockdown = Path("/sys/kernel/security/lockdown").read_text()
        if "[none]" not in lockdown:
            parts.append(f"kernel lockdown is active ({lockdown.strip()})")
    except OSError:
        pass  # no securityfs or no lockdown LSM: nothing to report
    return "; ".join(parts)


class ConnectTracer:
    """Loads and attaches the program; raises FactUnavailable with a precise reason when BPF is
    not permitted / not supported (not root, kernel.unprivileged_bpf_disabled, lockdown, no
    BTF...). Use as a context manager, or call close(): detaching is closing the fds."""

    def __init__(self, max_entries: int = 65536) -> None:
        if sys.byteorder != "little":
            raise FactUnavailable("the connect tracer supports little-endian machines only")
        try:
            layout = layout_from_btf(vmlinux_btf())
        except (KeyError, ParseError) as exc:
            raise FactUnavailable(f"unexpected kernel socket layout in BTF: {exc}") from None
        self._fds: list[int] = []
        try:
            self._pending = self._create_map(max(1024, max_entries // 8), 8, _PENDING_VALUE_SIZE)
            self._events = self._create_map(max_entries, _EV_KEY.size, _EV_VALUE.size)
            self._drain = bpf.MapDrain(self._events, _EV_KEY.size, _EV_VALUE.size)
            self._prog = self._load(layout)
            self._link = self._attach()
        except BaseException:
            self.close()
            raise

    def _create_map(self, entries: int, key_size: int, value_size: int) -> int:
        try:
            fd = bpf.map_create(bpf.MAP_TYPE_LRU_HASH, key_size, value_size, entries, "hm_connect")
        except BpfError as exc:
            if exc.errno == errno.EPERM:
                raise FactUnavailable(_permission_reason()) from None
            if exc.errno == errno.ENOSYS:
                raise FactUnavailable(f"no bpf(2) support: {exc.strerror}") from None
            raise FactUnavailable(f"cannot create a BPF LRU hash map: {exc}") from None
        self._fds.append(fd)
        return fd

    def _load(self, layout: SockLayout) -> int:
        log = ""
        for helper in (bpf.FN_PROBE_READ_KERNEL, bpf.FN_PROBE_READ):
            code = build_program(layout, self._pending, self._events, helper)
            try:
                fd = bpf.prog_load(bpf.PROG_TYPE_RAW_TRACEPOINT, code, "hm_connect")
            except BpfError as exc:
                if exc.errno == errno.EPERM:
                    raise FactUnavailable(_permission_reason()) from None
                log = exc.log
                if f"#{bpf.FN_PROBE_READ_KERNEL}" in log and helper == bpf.FN_PROBE_READ_KERNEL:
                    continue  # pre-5.5 kernel: only the generic bpf_probe_read exists
                break
            self._fds.append(fd)
            return fd
        last = " | ".join(log.strip().splitlines()[-3:])
        raise FactUnavailable(f"the kernel's BPF verifier rejected the program: {last}")

    def _attach(self) -> int:
        try:
            fd = bpf.raw_tracepoint_open(TRACEPOINT, self._prog)
        except BpfError as exc:
            if exc.errno == errno.EPERM:
                raise FactUnavailable(_permission_reason()) from None
            if exc.errno == errno.ENOENT:
                raise FactUnavailable(f"the kernel has no {TRACEPOINT} tracepoint") from None
            raise FactUnavailable(f"cannot attach to raw tracepoint {TRACEPOINT}: {exc}") from None
        self._fds.append(fd)
        return fd

    @property
    def prog_id(self) -> int:
        """Kernel-wide id of the loaded program (for checking it is gone after close)."""
        return bpf.object_id(self._prog)

    def drain(self) -> list[ConnectEvent]:
        """Read and delete all recorded connects, oldest first (batched on 5.6+ kernels)."""
        if not self._fds:
            raise ValueError("ConnectTracer is closed")
        entries = self._drain.pop()
        events = [parse_event(k, v) for k, v in entries]
        events.sort(key=lambda e: e.monotonic_ns)
        return events

    def close(self) -> None:
        """Detach (closing the link fd) and release the program and maps; idempotent."""
        while self._fds:
            os.close(self._fds.pop())  # link first, maps last: the reverse of creation

    def __enter__(self) -> ConnectTracer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

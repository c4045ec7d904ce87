"""Count UDP/ICMP traffic per socket inside the kernel, with cgroup_skb eBPF programs.

The kernel keeps no per-socket byte counters for connectionless traffic. Tapping packets
(AF_PACKET) costs the kernel a clone of every outgoing packet before any filter runs: about
a fifth of the machine's maximum packet rate under a flood. A ``BPF_PROG_TYPE_CGROUP_SKB``
program attached to the cgroup-v2 root instead runs *in* the socket path of every packet
that a socket sends or receives, on every cgroup and in every network namespace, and only
adds to a counter. It never drops anything (it always returns 1, "allow") and coexists with
other programs on the same hooks (link-based attach is multi-attach). The programs and the
map layouts are in ``datagram_programs.py``; this module loads, attaches, reads and decodes.

sock_diag counts TCP payload and segments exactly; for TCP the program only adds the option
bytes tcp_info cannot tell (SACK blocks). UDP and ICMP go to an LRU hash map of flows, which
:meth:`CgroupSkbCounter.read` pops. Connected UDP sockets (a client, a DNS resolver's query
socket, ``iperf3 -u``, most UDP floods) take a fast path without any helper call: their
counts wait in the socket's slot of a direct-mapped cache, and before each read an
iterator program moves every slot's counts into the hash map (atomic exchanges: a datagram
counted meanwhile lands in this flush or the next, never in both), as a
``cgroup/sock_release`` program does for a socket being closed; so user space sees one
kind of entry either way. Kernels without map iterators or atomic compare-and-exchange
(before 5.12), without BTF, or whose verifier refuses the fast path keep every datagram on
the hash map.

Packets without a socket (the kernel's own answers to ping, forwarded packets, datagrams to
a closed port) never reach these hooks, except kernel ICMP replies sent from its control
socket; the monitor handles those. The attachment lives exactly as long as the link fds
(``close()``, or the process dying), so a killed hostmedic leaves nothing attached.
``parse_entry`` is pure.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import struct
import sys

from hostmedic.analysis.skb_flows import SkbFlow
from hostmedic.collectors import bpf
from hostmedic.collectors.bpf import BpfError
from hostmedic.collectors.cgroupfs import open_cgroup2_root
from hostmedic.collectors.datagram_programs import (
    ECHO_TYPES,
    ITER_TARGET,
    KEY,
    PROGRAM_NAME,
    SLOT,
    SLOT_BITS,
    VALUE,
    build_flush_program,
    build_program,
    build_release_program,
)
from hostmedic.errors import FactUnavailable, ParseError

log = logging.getLogger(__name__)


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
    _socket, local, remote, lport, rport, family, proto, out, kind = KEY.unpack(key)
    if family not in (socket.AF_INET, socket.AF_INET6):
        raise ParseError(f"counter entry with address family {family}")
    ip_bytes, packets, netns, tgid, ifindex, cookie = VALUE.unpack(value)
    icmp = proto in ECHO_TYPES
    echo = icmp and kind in ECHO_TYPES[proto]
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
    ``use_host_mount=False`` always takes the private cgroup2 mount (for tests);
    ``fast_path=False`` sends connected sockets through the hash map too (for comparisons);
    ``slot_bits`` sizes the fast path's cache (2**slot_bits slots; tests make it small).
    """

    def __init__(
        self,
        max_entries: int = 65536,
        *,
        use_host_mount: bool = True,
        fast_path: bool = True,
        slot_bits: int = SLOT_BITS,
    ) -> None:
        if sys.byteorder != "little":
            raise FactUnavailable("in-kernel UDP/ICMP counting needs a little-endian machine")
        self._fds: list[int] = []
        self._iterator = -1
        self._progs: list[int] = []
        self.slots_fd = -1  # the connected sockets' slot map (-1: no fast path)
        self.fast_path_unavailable = ""  # why there is none
        self._slot_bits = slot_bits
        try:
            self._attach(max_entries, use_host_mount, fast_path)
        except BpfError as exc:
            self.close()
            raise _unavailable("loading the in-kernel UDP/ICMP counter", exc) from None
        except BaseException:
            self.close()
            raise

    def _attach(self, max_entries: int, use_host_mount: bool, fast_path: bool) -> None:
        self._map = bpf.map_create(
            bpf.MAP_TYPE_LRU_HASH, KEY.size, VALUE.size, max_entries, PROGRAM_NAME
        )
        self._fds.append(self._map)
        self._drain = bpf.MapDrain(self._map, KEY.size, VALUE.size)
        cgroup = open_cgroup2_root(mounted=use_host_mount)
        try:
            fast = self._open_fast_path(cgroup) if fast_path else []
            try:
                hooks = self._load_hooks(self.slots_fd)
            except BpfError as exc:
                if not fast:
                    raise
                for fd in fast:  # e.g. a verifier that refuses the fast path: do without
                    self._fds.remove(fd)
                    os.close(fd)
                self._progs = [p for p in self._progs if p not in fast]
                self._fast_path_refused(exc)
                hooks = self._load_hooks(-1)
            for prog, hook in hooks:
                self._fds.append(bpf.link_create(prog, cgroup, hook, "attaching to cgroup v2"))
        finally:
            os.close(cgroup)

    def _load_hooks(self, slots: int) -> list[tuple[int, int]]:
        """Load the ingress and egress programs: (program fd, hook) pairs."""
        hooks: list[tuple[int, int]] = []
        try:
            for outgoing, hook in (
                (False, bpf.ATTACH_CGROUP_INET_INGRESS),
                (True, bpf.ATTACH_CGROUP_INET_EGRESS),
            ):
                code = build_program(
                    self._map, outgoing=outgoing, slots_fd=slots, slot_bits=self._slot_bits
                )
                hooks.append((bpf.prog_load(bpf.PROG_TYPE_CGROUP_SKB, code, PROGRAM_NAME), hook))
        except BaseException:
            for prog, _hook in hooks:
                os.close(prog)
            raise
        self._fds += [prog for prog, _hook in hooks]
        self._progs += [prog for prog, _hook in hooks]
        return hooks

    def _fast_path_refused(self, exc: Exception) -> None:
        self._iterator = self.slots_fd = -1
        if isinstance(exc, BpfError):
            exc = _unavailable("loading the fast path", exc)
        self.fast_path_unavailable = str(exc)
        log.info("connected UDP sockets counted through the hash map: %s", exc)

    def _open_fast_path(self, cgroup: int) -> list[int]:
        """The slot map of connected UDP sockets, its flushing iterator and its
        socket-release program (their fds); none (every datagram through the hash map)
        when the kernel lacks any of them (map iterators and the release hook 5.9,
        compare-and-exchange 5.12, BTF)."""
        fds: list[int] = []
        try:
            from hostmedic.collectors.btf import KIND_FUNC, vmlinux_btf

            target = vmlinux_btf().find(ITER_TARGET, (KIND_FUNC,))
            fds.append(
                bpf.map_create(bpf.MAP_TYPE_ARRAY, 4, SLOT.size, 1 << self._slot_bits, PROGRAM_NAME)
            )
            slots = fds[-1]
            flush = bpf.prog_load(
                bpf.PROG_TYPE_TRACING, build_flush_program(self._map), PROGRAM_NAME,
                attach_type=bpf.ATTACH_TRACE_ITER, attach_btf_id=target,
            )  # fmt: skip
            fds.append(flush)
            iterator = bpf.link_create(
                flush, 0, bpf.ATTACH_TRACE_ITER, "creating the flush iterator",
                iter_map_fd=slots,
            )  # fmt: skip
            fds.append(iterator)
            release = bpf.prog_load(
                bpf.PROG_TYPE_CGROUP_SOCK, build_release_program(self._map, slots, self._slot_bits),
                PROGRAM_NAME, attach_type=bpf.ATTACH_CGROUP_INET_SOCK_RELEASE,
            )  # fmt: skip
            fds.append(release)
            fds.append(
                bpf.link_create(
                    release, cgroup, bpf.ATTACH_CGROUP_INET_SOCK_RELEASE, "attaching to cgroup v2"
                )
            )
        except (BpfError, FactUnavailable, KeyError, ParseError) as exc:
            for fd in fds:
                os.close(fd)
            self._fast_path_refused(exc)
            return []
        self._fds += fds
        self._progs += [flush, release]
        self._iterator, self.slots_fd = iterator, slots
        return fds

    @property
    def prog_ids(self) -> list[int]:
        """Kernel-wide ids of the programs (to check they are gone after close); the egress
        program is the last."""
        return [bpf.object_id(fd) for fd in self._progs]

    def read(self) -> list[SkbFlow]:
        """Every flow counted since the previous read (popped from the map)."""
        if not self._fds:
            raise ValueError("CgroupSkbCounter is closed")
        if self._iterator >= 0:
            try:
                bpf.iter_run(self._iterator)
            except OSError as exc:  # transient (no memory): the counts wait in their slots
                log.info("flushing the connected sockets' counts failed: %s", exc)
        return [parse_entry(k, v) for k, v in self._drain.pop()]

    def close(self) -> None:
        """Detach (links first) and free the programs and the map; idempotent."""
        self._iterator = self.slots_fd = -1
        self._progs = []
        while self._fds:
            os.close(self._fds.pop())

    def __enter__(self) -> CgroupSkbCounter:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

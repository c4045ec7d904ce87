"""Count UDP/ICMP/other non-TCP packets per flow with an AF_PACKET TPACKET_V3 ring.

The kernel keeps no per-socket byte counters for connectionless traffic, so
:class:`PacketCounter` watches every interface of one network namespace: a classic BPF filter
(:func:`hostmedic.collectors.packets.build_filter`) drops TCP and non-IP frames in the
kernel and snaps the rest to their headers, the kernel batches them into ring blocks, and a
daemon thread folds each retired block into a bounded flow dict with
:func:`~hostmedic.collectors.packets.account_block`. TCP is counted elsewhere from
tcp_info, so bulk TCP never reaches user space here. Pure Python on purpose: a memory-mapped
ring read block-at-a-time was measured several times cheaper than one recv per packet.

Ring sizing: 8 blocks of 512 KiB (4 MiB). A header-only frame takes 128-160 bytes in the
ring, so a block holds ~3-4k packets: at a few hundred thousand packets per second a block
fills in ~10 ms and the ring buffers ~100 ms of stalls (GIL contention, a slow snapshot)
before the kernel drops. Eight blocks rather than four keep only 1/8 of the ring out of the
kernel's hands while Python walks one. Under low traffic the kernel retires a partly filled
block after ``retire_ms``, which bounds how stale a snapshot can be.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import mmap
import os
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Self

from hostmedic.collectors.netlink import run_in_netns
from hostmedic.collectors.packets import account_block, build_filter
from hostmedic.errors import FactUnavailable, ParseError

SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
TPACKET_V3 = 2
SO_ATTACH_FILTER = 26
ETH_P_ALL = 0x0003
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1

_STATUS = struct.Struct("<I")  # tpacket_hdr_v1.block_status at offset 8 of each block
_STATS_V3 = struct.Struct("=III")  # tp_packets, tp_drops, tp_freeze_q_cnt


class _SockaddrLL(ctypes.Structure):
    _fields_ = [
        ("family", ctypes.c_ushort),
        ("protocol", ctypes.c_ushort),
        ("ifindex", ctypes.c_int),
        ("hatype", ctypes.c_ushort),
        ("pkttype", ctypes.c_ubyte),
        ("halen", ctypes.c_ubyte),
        ("addr", ctypes.c_ubyte * 8),
    ]


@dataclass(frozen=True, slots=True)
class CaptureSnapshot:
    """Flows counted since the previous snapshot (or start), with what could not be kept.

    ``flows`` maps raw keys (decode with ``packets.decode_key``) to ``(packets, ip_bytes)``.
    ``folded_*`` counts packets of new flows seen once ``max_flows`` keys existed.
    ``kernel_drops``/``kernel_packets`` are deltas since the previous snapshot (reading
    PACKET_STATISTICS resets the kernel's counters); drops mean the ring was full.
    ``skipped_packets`` reached the ring but could not be classified (truncated/malformed).
    """

    flows: dict[bytes, tuple[int, int]]
    folded_packets: int
    folded_bytes: int
    skipped_packets: int
    kernel_packets: int
    kernel_drops: int
    bad_blocks: int
    duration_s: float


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _open_ring(block_size: int, block_nr: int, retire_ms: int, snaplen: int) -> socket.socket:
    # Protocol 0 receives nothing until bind(), so the filter and ring are in place before
    # the first frame arrives and no unfiltered packet is ever queued.
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    except PermissionError as exc:
        raise FactUnavailable(
            "needs CAP_NET_RAW to count UDP/ICMP packets", key="reason.need_cap_net_raw"
        ) from exc
    try:
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
        prog = build_filter(snaplen)
        buf = ctypes.create_string_buffer(prog, len(prog))
        fprog = struct.pack("HL", len(prog) // 8, ctypes.addressof(buf))
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        req = struct.pack(
            "=7I", block_size, block_nr, 2048, block_size * block_nr // 2048, retire_ms, 0, 0
        )
        sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
        addr = _SockaddrLL(socket.AF_PACKET, socket.htons(ETH_P_ALL), 0)
        libc = _libc()
        if libc.bind(sock.fileno(), ctypes.byref(addr), ctypes.sizeof(addr)) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EPERM, errno.EACCES):
            raise FactUnavailable(
                "needs CAP_NET_RAW to count UDP/ICMP packets", key="reason.need_cap_net_raw"
            ) from exc
        raise FactUnavailable(
            f"cannot set up a TPACKET_V3 packet ring: {exc.strerror or exc}"
        ) from exc
    return sock


class PacketCounter:
    """Per-flow packet/byte counts of non-TCP IP traffic on all interfaces of a namespace.

    ``netns_path`` (e.g. ``/run/netns/NAME``) opens the socket inside that namespace from a
    helper thread, leaving the caller's namespace untouched. Counting runs on a daemon
    thread between :meth:`start` and :meth:`stop`; read with :meth:`snapshot_and_reset`.
    At most ``max_flows`` distinct keys are kept per snapshot interval, the rest is folded.
    Loopback and same-namespace veth traffic is seen twice (sent and received): both
    copies are kept, marked by the key's direction. Usable as a context manager.
    """

    def __init__(
        self,
        netns_path: str | None = None,
        *,
        max_flows: int = 50_000,
        block_size: int = 512 * 1024,
        block_nr: int = 8,
        retire_ms: int = 64,
        snaplen: int = 256,
    ) -> None:
        if block_size % mmap.PAGESIZE or block_size % 2048 or block_nr < 2:
            raise ValueError("block_size must be a page multiple and block_nr at least 2")

        def factory() -> socket.socket:
            return _open_ring(block_size, block_nr, retire_ms, snaplen)

        self._sock = run_in_netns(netns_path, factory) if netns_path else factory()
        try:
            self._ring = mmap.mmap(self._sock.fileno(), block_size * block_nr)
        except OSError as exc:
            self._sock.close()
            raise FactUnavailable(f"cannot map the packet ring: {exc.strerror}") from exc
        self._block_size, self._block_nr = block_size, block_nr
        self._max_flows = max_flows
        self._lock = threading.Lock()
        self._flows: dict[bytes, list[int]] = {}
        self._folded = [0, 0]
        self._skipped = 0
        self._bad_blocks = 0
        self._since = time.monotonic()
        self._wake_r, self._wake_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.error: BaseException | None = None  # set if the capture thread died

    def start(self) -> None:
        """Start the capture thread (once)."""
        if self._thread is not None or self._closed:
            raise RuntimeError("PacketCounter can be started once")
        self._since = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="hostmedic-capture", daemon=True)
        self._thread.start()

    @property
    def native_thread_id(self) -> int | None:
        """Kernel thread id of the capture thread (for CPU accounting), None before start."""
        return self._thread.native_id if self._thread is not None else None

    def _run(self) -> None:
        try:
            self._loop()
        except (OSError, ValueError) as exc:  # surfaced to the owner via .error
            self.error = exc

    def _loop(self) -> None:
        poller = select.poll()
        poller.register(self._sock.fileno(), select.POLLIN | select.POLLERR)
        poller.register(self._wake_r, select.POLLIN)
        ring, size, nr = self._ring, self._block_size, self._block_nr
        status = _STATUS.unpack_from
        idx = 0  # the kernel fills blocks in ring order, so user space follows the same order
        while not self._stop.is_set():
            base = idx * size
            if not status(ring, base + 8)[0] & TP_STATUS_USER:
                poller.poll(1000)
                continue
            with memoryview(ring) as mv, mv[base : base + size] as block, self._lock:
                try:
                    st = account_block(block, self._flows, self._max_flows)
                except ParseError:
                    self._bad_blocks += 1
                else:
                    self._folded[0] += st.folded_packets
                    self._folded[1] += st.folded_bytes
                    self._skipped += st.truncated + st.malformed + st.tcp_skipped
            # Hand the block back only after it is fully read.
            _STATUS.pack_into(ring, base + 8, TP_STATUS_KERNEL)
            idx = (idx + 1) % nr

    def snapshot_and_reset(self) -> CaptureSnapshot:
        """Swap out the flows counted so far and return them with drop/fold counters."""
        now = time.monotonic()
        with self._lock:
            flows, self._flows = self._flows, {}
            folded, self._folded = self._folded, [0, 0]
            skipped, self._skipped = self._skipped, 0
            bad, self._bad_blocks = self._bad_blocks, 0
            since, self._since = self._since, now
        raw = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, _STATS_V3.size)
        packets, drops, _freeze = _STATS_V3.unpack(raw)
        return CaptureSnapshot(
            flows={k: (v[0], v[1]) for k, v in flows.items()},
            folded_packets=folded[0],
            folded_bytes=folded[1],
            skipped_packets=skipped,
            kernel_packets=packets,
            kernel_drops=drops,
            bad_blocks=bad,
            duration_s=now - since,
        )

    def stop(self) -> None:
        """Stop the capture thread and release the ring and socket; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        with contextlib.suppress(BlockingIOError):  # a wake-up byte is already queued
            os.write(self._wake_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._ring.close()
        self._sock.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

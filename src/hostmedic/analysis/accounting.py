"""The bandwidth ledger: turns socket counters and captured datagrams into per-flow,
per-process, per-remote and per-interface traffic with iftop's 2 s / 10 s / 40 s windows.

Pure: no I/O and no clock. The monitor (collectors/bandwidth.py) reads the machine and
feeds one *tick* at a time. TCP bytes come from tcp_info (exact, kernel-kept), turned into
IP-level bytes by adding one IP + TCP header per segment; UDP/ICMP bytes come from
captured packets, which already carry IP lengths. Whatever the interfaces counted and no
flow explains lands in an explicit *unattributed* bucket instead of being hidden.
"""

from __future__ import annotations

import itertools
import socket
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from hostmedic.facts.bandwidth import FlowKey, Rates, Traffic

WINDOWS_S = (2.0, 10.0, 40.0)
HISTORY_SLACK_S = 5.0  # keep a little more than 40 s: window starts snap to tick times
FLOW_IDLE_EVICT_S = 60.0
SERIES_IDLE_EVICT_S = 600.0
IPV4_HEADER_BYTES = 20
IPV6_HEADER_BYTES = 40
TCP_HEADER_BYTES = 20
TCP_TIMESTAMP_OPTION_BYTES = 12
# Linux's SYN and SYN-ACK carry MSS, SACK-permitted, window scale (and timestamps):
# 20 option bytes with timestamps, 12 without.
TCP_SYN_OPTION_BYTES = {True: 20, False: 12}
# TCP states in which the peer's FIN has arrived (tcp_info counts it as one received byte).
FIN_RECEIVED_STATES = frozenset({6, 7, 8, 9, 11})  # TIME_WAIT CLOSE CLOSE_WAIT LAST_ACK CLOSING


def tcp_ip_traffic(
    *,
    family: int,
    bytes_sent: int,
    bytes_received: int,
    segs_out: int,
    segs_in: int,
    has_timestamps: bool,
    accepted: bool = False,
    fin_received: bool = False,
) -> Traffic:
    """IP-level traffic of one TCP socket from its tcp_info payload and segment counters.

    tcp_info counts payload; every segment on the wire also carries an IP header and a TCP
    header (32 bytes with the timestamp option, which Linux negotiates by default). The
    handshake differs: SYN and SYN-ACK carry more options than data segments, an accepted
    socket never counts the SYN-ACK (its request socket sent it), and a received FIN
    counts as one byte. These are constant per socket, so deltas stay exact.
    """
    ip_header = IPV6_HEADER_BYTES if family == socket.AF_INET6 else IPV4_HEADER_BYTES
    data_options = TCP_TIMESTAMP_OPTION_BYTES if has_timestamps else 0
    per_segment = ip_header + TCP_HEADER_BYTES + data_options
    syn_extra = TCP_SYN_OPTION_BYTES[has_timestamps] - data_options
    tx_bytes = bytes_sent + segs_out * per_segment
    rx_bytes = bytes_received - (1 if fin_received and bytes_received else 0)
    rx_bytes += segs_in * per_segment
    tx_packets = segs_out
    if accepted:  # their SYN is in segs_in; our SYN-ACK is nowhere in this socket's counters
        rx_bytes += syn_extra if segs_in else 0
        tx_bytes += per_segment + syn_extra
        tx_packets += 1
    else:  # our SYN is in segs_out, their SYN-ACK in segs_in
        tx_bytes += syn_extra if segs_out else 0
        rx_bytes += syn_extra if segs_in else 0
    return Traffic(tx_bytes=tx_bytes, rx_bytes=rx_bytes, tx_packets=tx_packets, rx_packets=segs_in)


def _growth(now: Traffic, before: Traffic) -> Traffic:
    """What a socket's counters grew by; never negative (a counter that appears to shrink,
    e.g. a socket whose accepted/listener status changed, adds nothing)."""
    d = now - before
    return Traffic(
        max(d.tx_bytes, 0), max(d.rx_bytes, 0), max(d.tx_packets, 0), max(d.rx_packets, 0)
    )


@dataclass(frozen=True, slots=True)
class TcpSample:
    """Cumulative counters of one TCP socket at one read (live dump or destroy event)."""

    cookie: int
    netns_inode: int
    local_ip: str
    local_port: int
    remote_ip: str
    remote_port: int
    inode: int
    traffic: Traffic


class TcpDeltaTracker:
    """Remembers each socket's last counters (by cookie) and yields what is new.

    The first update is a baseline: sockets already open then count only from now on.
    A socket first seen later was born after the previous read, so all of its bytes
    belong to the window. Closed sockets (destroy events) give their final counters once.
    """

    # Forgotten sockets kept for a late destroy event (see forget_vanished): bounded.
    VANISHED_MAX = 65_536

    def __init__(self) -> None:
        self._last: dict[int, Traffic] = {}
        self._vanished: dict[int, Traffic] = {}
        self._baselined = False

    @property
    def remembered(self) -> int:
        """How many open sockets' counters are remembered."""
        return len(self._last)

    def __contains__(self, cookie: object) -> bool:
        """Whether the socket with this cookie is open and remembered."""
        return cookie in self._last

    def update(
        self,
        live: Iterable[TcpSample],
        closed: Iterable[TcpSample] = (),
        *,
        changed_only: bool = False,
    ) -> list[tuple[TcpSample, Traffic]]:
        """Growth of every socket since the previous update.

        ``live`` lists the open sockets; with ``changed_only`` it may hold only those whose
        counters moved: the others keep their remembered counters (then
        :meth:`forget_vanished` forgets sockets that went without a destroy event).
        Without it, a socket missing from ``live`` is gone.
        """
        deltas: list[tuple[TcpSample, Traffic]] = []
        last = self._last
        # changed-only updates change the remembered counters in place: rebuilding a dict
        # of every open socket each tick costs ~5 ms at 50,000 sockets
        seen: dict[int, Traffic] = last if changed_only else {}
        for sample in live:
            before = last.get(sample.cookie)
            seen[sample.cookie] = sample.traffic
            if before is None and not self._baselined:
                continue
            if before is not None and before == sample.traffic:
                continue
            delta = _growth(sample.traffic, before or Traffic())
            if not delta.is_zero:
                deltas.append((sample, delta))
        for sample in closed:
            before = (
                seen.pop(sample.cookie, None)
                or last.get(sample.cookie)
                or self._vanished.pop(sample.cookie, None)
            )
            if before is None and not self._baselined:
                continue
            delta = _growth(sample.traffic, before or Traffic())
            if not delta.is_zero:
                deltas.append((sample, delta))
        self._last = seen
        self._baselined = True
        return deltas

    def forget_vanished(self, alive: Collection[int], untracked: int = 0) -> None:
        """Forget the remembered sockets not in ``alive`` (the cookies of every open
        socket, ``untracked`` of which never come in ``live``: listeners).

        A socket leaves the kernel's tables before its destroy event when it is closed
        under its owner (a reset while the process still holds it): its counters are kept
        aside, so the event, when it comes, adds only what is new."""
        if len(self._last) + untracked == len(alive):
            return  # nothing vanished (every open socket is remembered)
        kept: dict[int, Traffic] = {}
        for cookie, traffic in self._last.items():
            if cookie in alive:
                kept[cookie] = traffic
            else:
                self._vanished[cookie] = traffic
        self._last = kept
        excess = len(self._vanished) - self.VANISHED_MAX
        for cookie in list(itertools.islice(self._vanished, max(excess, 0))):
            del self._vanished[cookie]  # the oldest first


@dataclass(frozen=True, slots=True)
class Datagram:
    """Captured non-TCP packets of one direction of one flow during one tick."""

    interface: str | None
    outgoing: bool
    protocol: str
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int
    packets: int
    ip_bytes: int

    @property
    def local(self) -> tuple[str, int]:
        return (self.src_ip, self.src_port) if self.outgoing else (self.dst_ip, self.dst_port)

    @property
    def remote(self) -> tuple[str, int]:
        return (self.dst_ip, self.dst_port) if self.outgoing else (self.src_ip, self.src_port)

    @property
    def traffic(self) -> Traffic:
        if self.outgoing:
            return Traffic(tx_bytes=self.ip_bytes, tx_packets=self.packets)
        return Traffic(rx_bytes=self.ip_bytes, rx_packets=self.packets)


@dataclass(frozen=True, slots=True)
class UdpBinding:
    """A UDP socket as the kernel lists it: local address, peer when connected, inode."""

    netns_inode: int
    local_ip: str
    local_port: int
    remote_ip: str
    remote_port: int
    inode: int


_WILDCARDS = ("0.0.0.0", "::")


class UdpSocketIndex:
    """Finds the socket a UDP datagram belongs to, the way the kernel would deliver it:
    a connected socket matching both ends first, then a socket bound to the local port
    on that address, then one bound to the wildcard address."""

    def __init__(self, bindings: Iterable[UdpBinding]) -> None:
        self._connected: dict[tuple[str, int, str, int], UdpBinding] = {}
        self._bound: dict[tuple[str, int], UdpBinding] = {}
        for b in bindings:
            if b.remote_port:
                self._connected[(b.local_ip, b.local_port, b.remote_ip, b.remote_port)] = b
            else:
                self._bound.setdefault((b.local_ip, b.local_port), b)

    def find(self, local: tuple[str, int], remote: tuple[str, int]) -> UdpBinding | None:
        hit = self._connected.get((*local, *remote)) or self._bound.get(local)
        if hit is None:
            for wildcard in _WILDCARDS:
                hit = self._bound.get((wildcard, local[1]))
                if hit is not None:
                    break
        return hit


class Series:
    """One row's history: cumulative traffic, the last 40 s of ticks, and the peak."""

    __slots__ = ("cumulative", "last_active_s", "peak_rx", "peak_tx", "ticks")

    def __init__(self) -> None:
        self.cumulative = Traffic()
        self.ticks: deque[tuple[float, Traffic]] = deque()
        self.peak_tx = 0.0
        self.peak_rx = 0.0
        self.last_active_s = 0.0

    def add(self, time_s: float, delta: Traffic) -> None:
        self.cumulative = self.cumulative + delta
        if self.ticks and self.ticks[-1][0] == time_s:
            self.ticks[-1] = (time_s, self.ticks[-1][1] + delta)
        else:
            self.ticks.append((time_s, delta))
        self.last_active_s = time_s

    def trim(self, now_s: float) -> None:
        horizon = now_s - WINDOWS_S[-1] - HISTORY_SLACK_S
        while self.ticks and self.ticks[0][0] <= horizon:
            self.ticks.popleft()

    def since(self, start_s: float) -> Traffic:
        """Traffic of the ticks after ``start_s`` (a tick's delta covers the time since the
        previous tick, so a window starting at a tick boundary is exact)."""
        total = Traffic()
        for t, delta in reversed(self.ticks):
            if t <= start_s:
                break
            total = total + delta
        return total

    def rates(self, now_s: float, window_starts: Mapping[float, float]) -> Rates:
        """Averages over the last 2 s, 10 s and 40 s, and the peak 2 s rate.

        ``window_starts`` maps each span to the tick boundary where its window begins
        (:meth:`Ledger.window_starts`); dividing by the exact time since that boundary keeps
        the average right even when ticks are not exactly one second apart.
        """
        averages: dict[str, float] = {}
        for span in WINDOWS_S:
            start = window_starts[span]
            w, seconds = self.since(start), max(now_s - start, 1e-9)
            averages[f"tx_{span:.0f}s_bytes_per_s"] = w.tx_bytes / seconds
            averages[f"rx_{span:.0f}s_bytes_per_s"] = w.rx_bytes / seconds
        return Rates(**averages, tx_peak_bytes_per_s=self.peak_tx, rx_peak_bytes_per_s=self.peak_rx)

    def update_peak(self, now_s: float, start_s: float) -> None:
        w, seconds = self.since(start_s), max(now_s - start_s, 1e-9)
        self.peak_tx = max(self.peak_tx, w.tx_bytes / seconds)
        self.peak_rx = max(self.peak_rx, w.rx_bytes / seconds)


class Ledger:
    """Accumulates attributed traffic per flow, process, remote and interface."""

    def __init__(self, start_s: float) -> None:
        self.start_s = start_s
        self.now_s = start_s
        self.flows: dict[FlowKey, Series] = {}
        self.processes: dict[tuple[int | None, int], Series] = {}
        self.remotes: dict[str, Series] = {}
        self.interfaces: dict[str, Series] = {}
        self.unattributed: dict[str, Series] = {}
        self.namespaces: dict[int, Series] = {}
        self._interface_last: dict[str, Traffic] = {}
        self._tick_times: deque[float] = deque([start_s])

    @property
    def elapsed_s(self) -> float:
        return self.now_s - self.start_s

    def window_starts(self) -> dict[float, float]:
        """For each window span, the tick time nearest to ``now - span`` (the ledger's
        start while the window is not yet full): where that window's average begins."""
        starts: dict[float, float] = {}
        for span in WINDOWS_S:
            target = self.now_s - span
            earlier = [t for t in self._tick_times if t < self.now_s]
            starts[span] = min(earlier, key=lambda t: abs(t - target)) if earlier else self.now_s
            if target <= self._tick_times[0]:
                starts[span] = self._tick_times[0]
        return starts

    def tick(
        self,
        time_s: float,
        attributed: Iterable[tuple[FlowKey, Traffic]],
        interface_counters: Mapping[str, Traffic],
        explained: Mapping[str, Traffic] | None = None,
    ) -> None:
        """Add one tick: attributed flow deltas and cumulative interface counters.

        Interface counters must already be IP-level (link-layer header removed). Flows to
        loopback or local addresses are the caller's to drop: they cross no NIC. What each
        interface's counters are explained by is ``explained`` (analysis/crossings.py,
        when flows of several namespaces cross one host's interfaces), else the sum of
        the flows whose ``interface`` it is.
        """
        self.now_s = time_s
        self._tick_times.append(time_s)
        while self._tick_times[0] < time_s - WINDOWS_S[-1] - HISTORY_SLACK_S:
            self._tick_times.popleft()
        per_interface: dict[str, Traffic] = {}
        for key, delta in attributed:
            self.flows.setdefault(key, Series()).add(time_s, delta)
            self.processes.setdefault((key.pid, key.netns_inode), Series()).add(time_s, delta)
            self.namespaces.setdefault(key.netns_inode, Series()).add(time_s, delta)
            self.remotes.setdefault(key.remote_ip, Series()).add(time_s, delta)
            if key.interface is not None and explained is None:
                per_interface[key.interface] = per_interface.get(key.interface, Traffic()) + delta
        if explained is not None:
            per_interface = dict(explained)
        for name, counters in interface_counters.items():
            before = self._interface_last.get(name)
            self._interface_last[name] = counters
            if before is None:
                continue
            delta = counters - before
            if delta.tx_bytes < 0 or delta.rx_bytes < 0:  # counter reset (device re-created)
                continue
            self.interfaces.setdefault(name, Series()).add(time_s, delta)
            self.unattributed.setdefault(name, Series()).add(
                time_s, delta - per_interface.get(name, Traffic())
            )
        self._housekeeping()

    def _housekeeping(self) -> None:
        now, peak_start = self.now_s, self.window_starts()[WINDOWS_S[0]]
        tables: tuple[dict, ...] = (  # type: ignore[type-arg]
            self.flows,
            self.processes,
            self.namespaces,
            self.remotes,
            self.interfaces,
            self.unattributed,
        )
        for table in tables:
            stale = []
            for row, series in table.items():
                series.trim(now)
                series.update_peak(now, peak_start)
                limit = FLOW_IDLE_EVICT_S if table is self.flows else SERIES_IDLE_EVICT_S
                if now - series.last_active_s > limit:
                    stale.append(row)
            for row in stale:
                del table[row]

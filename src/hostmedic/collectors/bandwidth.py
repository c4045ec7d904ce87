"""The bandwidth monitor: reads the machine once per tick and feeds the pure ledger.

Sources, each optional (what is missing is said in ``not_counted``, never hidden):
- TCP: sock_diag dumps with tcp_info (exact kernel byte/segment counters) every tick,
  plus sock_diag *destroy* events for sockets that lived between two ticks;
- owners: /proc/*/fd socket inodes (live sockets), the connect tracer (eBPF, exact pid of
  every outbound connect, even millisecond-long ones), and the listening socket's owner
  for connections accepted by a server;
- UDP / ICMP: an AF_PACKET ring that only ever sees non-TCP packets (kernel-side filter);
- interfaces: /proc/net/dev, for the unattributed bucket.
Only the current network namespace is monitored, like iftop and nethogs; traffic of
containers shows up on their host-side interface.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

from hostmedic.analysis.accounting import (
    Datagram,
    Ledger,
    TcpDeltaTracker,
    TcpSample,
    UdpBinding,
    UdpSocketIndex,
    assign_interface,
    tcp_ip_traffic,
)
from hostmedic.analysis.rollup import build_facts
from hostmedic.analysis.routes import RouteTable, parse_ipv4_routes, parse_ipv6_routes
from hostmedic.collectors import netdev
from hostmedic.collectors.procfs import SocketOwners, read_process_info
from hostmedic.errors import FactUnavailable
from hostmedic.facts.bandwidth import BandwidthFacts, FlowKey, ProcessInfo, Traffic, is_loopback

log = logging.getLogger(__name__)

TCP_LISTEN = 10
KERNEL_PID = 0
KERNEL_PROCESS = ProcessInfo(0, "[kernel]", None, False, (), 0, "root", None, None, None)
_ICMP_REQUESTS = {8, 128}  # echo request (v4, v6): answered by the kernel itself


@dataclass(frozen=True, slots=True)
class MonitorOptions:
    interval_s: float = 1.0
    capture: bool = True
    connect_tracer: bool = True
    proc_root: str = "/proc"


def _tcp_sample(rec: object, netns_inode: int) -> TcpSample:
    r = rec  # a collectors.sockdiag.SocketRecord
    traffic = tcp_ip_traffic(
        family=r.family,  # type: ignore[attr-defined]
        bytes_sent=r.bytes_sent or 0,  # type: ignore[attr-defined]
        bytes_received=r.bytes_received or 0,  # type: ignore[attr-defined]
        segs_out=r.segs_out or 0,  # type: ignore[attr-defined]
        segs_in=r.segs_in or 0,  # type: ignore[attr-defined]
        has_timestamps=bool(r.has_timestamps),  # type: ignore[attr-defined]
    )
    return TcpSample(
        cookie=r.cookie,  # type: ignore[attr-defined]
        netns_inode=netns_inode,
        local_ip=r.local_ip,  # type: ignore[attr-defined]
        local_port=r.local_port,  # type: ignore[attr-defined]
        remote_ip=r.remote_ip,  # type: ignore[attr-defined]
        remote_port=r.remote_port,  # type: ignore[attr-defined]
        inode=r.inode,  # type: ignore[attr-defined]
        traffic=traffic,
    )


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return ""


def _local_addresses() -> frozenset[str]:
    import psutil

    return frozenset(
        a.address.split("%")[0]
        for addrs in psutil.net_if_addrs().values()
        for a in addrs
        if a.family in (socket.AF_INET, socket.AF_INET6)
    )


class BandwidthMonitor:
    """Samples traffic every tick; call :meth:`facts` at any time for the rolled-up view."""

    def __init__(
        self, options: MonitorOptions | None = None, clock: Callable[[], float] = time.monotonic
    ):
        self.options = options or MonitorOptions()
        self._clock = clock
        self.not_counted: list[tuple[str, str]] = []
        self._owners = SocketOwners(self.options.proc_root)
        self._tcp = TcpDeltaTracker()
        self._cookie_owner: dict[int, int] = {}
        self._connect_owner: dict[tuple[str, int, str, int], int] = {}
        self._process_info: dict[int, ProcessInfo] = {KERNEL_PID: KERNEL_PROCESS}
        self._netns = self._own_netns()
        self._sockdiag = self._destroy = self._capture = self._tracer = None
        self.ledger: Ledger | None = None
        self._routes: RouteTable | None = None
        self._routes_read_s = -1e9
        self._interface_index: dict[int, str] = {}

    @staticmethod
    def _own_netns() -> int:
        import os

        try:
            return os.stat("/proc/self/ns/net").st_ino
        except OSError:
            return 0

    def _optional(self, what_key: str, opener: Callable[[], object]) -> object | None:
        try:
            return opener()
        except FactUnavailable as exc:
            self.not_counted.append((what_key, str(exc)))
            return None

    def start(self) -> None:
        """Open every source; the ones that cannot open are recorded in ``not_counted``."""
        from hostmedic.collectors import sockdiag

        self._sockdiag = self._optional("uncounted.tcp", sockdiag.SockDiag)
        if self._sockdiag is None:
            raise FactUnavailable(
                "cannot open a sock_diag netlink socket", key="reason.no_sockdiag"
            )
        self._destroy = self._optional("uncounted.short_tcp", sockdiag.DestroyListener)
        if self.options.connect_tracer:
            from hostmedic.collectors import connect_tracer

            self._tracer = self._optional("uncounted.connect_pids", connect_tracer.ConnectTracer)
        if self.options.capture:
            from hostmedic.collectors import capture

            counter = self._optional("uncounted.udp_icmp", capture.PacketCounter)
            if counter is not None:
                counter.start()  # type: ignore[attr-defined]
                self._capture = counter
        else:
            self.not_counted.append(
                ("uncounted.udp_icmp", "packet counting disabled (--no-capture)")
            )
        self._interface_index = {i: n for i, n in socket.if_nameindex()}
        self.ledger = Ledger(self._clock())
        self.sample()  # baseline: sockets and counters as they are now

    def _route_table(self, now: float) -> RouteTable:
        if self._routes is None or now - self._routes_read_s > 10.0:
            routes = parse_ipv4_routes(_read("/proc/net/route")) + parse_ipv6_routes(
                _read("/proc/net/ipv6_route")
            )
            self._routes = RouteTable(routes, _local_addresses())
            self._routes_read_s = now
            self._interface_index = {i: n for i, n in socket.if_nameindex()}
        return self._routes

    def sample(self) -> None:
        """One tick: read every source, attribute, add to the ledger."""
        from hostmedic.collectors.sockdiag import SockDiag

        assert self.ledger is not None and isinstance(self._sockdiag, SockDiag)
        now = self._clock()
        routes = self._route_table(now)
        self._owners.begin_tick()
        if self._tracer is not None:
            for ev in self._tracer.drain():  # type: ignore[attr-defined]
                self._connect_owner[(ev.local_ip, ev.local_port, ev.remote_ip, ev.remote_port)] = (
                    ev.pid
                )
                self._process_info.setdefault(ev.pid, self._info_of_possibly_gone(ev.pid, ev.comm))
        live_records = []
        for family in (socket.AF_INET, socket.AF_INET6):
            live_records += self._sockdiag.dump(socket.IPPROTO_TCP, family)
        closed_records = self._destroy.drain() if self._destroy is not None else []  # type: ignore[attr-defined]
        listeners = {r.local_port: r.inode for r in live_records if r.state == TCP_LISTEN}
        live = [_tcp_sample(r, self._netns) for r in live_records if r.state != TCP_LISTEN]
        closed = [_tcp_sample(r, self._netns) for r in closed_records]
        deltas = self._tcp.update(live, closed)
        attributed: list[tuple[FlowKey, Traffic]] = []
        internal = [(s, d) for s, d in deltas if routes.interface_for(s.remote_ip) != "lo"]
        owners = self._owners.owners_of(
            [s.inode for s, _ in internal] + [listeners.get(s.local_port, 0) for s, _ in internal]
        )
        for sample, delta in internal:
            pid = self._tcp_owner(sample, owners, listeners)
            key = FlowKey(
                pid,
                self._netns,
                "tcp",
                sample.local_ip,
                sample.local_port,
                sample.remote_ip,
                sample.remote_port,
            )
            attributed.append(
                (assign_interface(key, routes.interface_for(sample.remote_ip)), delta)
            )
        if self._capture is not None:
            attributed += self._datagrams(routes)
        for pid in {k.pid for k, _ in attributed if k.pid is not None}:
            if pid not in self._process_info:
                self._process_info[pid] = read_process_info(pid, self.options.proc_root)
        self.ledger.tick(now, attributed, netdev.read_interface_traffic())
        self._forget_closed(closed)

    def _tcp_owner(
        self, s: TcpSample, owners: dict[int, int], listeners: dict[int, int]
    ) -> int | None:
        pid = owners.get(s.inode) if s.inode else None
        if pid is None:
            pid = self._cookie_owner.get(s.cookie)
        if pid is None:
            pid = self._connect_owner.get((s.local_ip, s.local_port, s.remote_ip, s.remote_port))
        if pid is None and s.local_port in listeners:
            pid = owners.get(listeners[s.local_port])
        if pid is not None:
            self._cookie_owner[s.cookie] = pid
        return pid

    def _forget_closed(self, closed: list[TcpSample]) -> None:
        for s in closed:
            self._cookie_owner.pop(s.cookie, None)
            self._connect_owner.pop((s.local_ip, s.local_port, s.remote_ip, s.remote_port), None)

    def _info_of_possibly_gone(self, pid: int, comm: str) -> ProcessInfo:
        info = read_process_info(pid, self.options.proc_root)
        if info.gone:
            return ProcessInfo(pid, comm, None, False, (), None, None, None, None, None, gone=True)
        return info

    def _datagrams(self, routes: RouteTable) -> list[tuple[FlowKey, Traffic]]:
        from hostmedic.collectors.packets import decode_key
        from hostmedic.collectors.sockdiag import SockDiag

        assert isinstance(self._sockdiag, SockDiag)
        snapshot = self._capture.snapshot_and_reset()  # type: ignore[attr-defined]
        bindings = [
            UdpBinding(self._netns, r.local_ip, r.local_port, r.remote_ip, r.remote_port, r.inode)
            for family in (socket.AF_INET, socket.AF_INET6)
            for r in self._sockdiag.dump(socket.IPPROTO_UDP, family)
        ]
        index = UdpSocketIndex(bindings)
        matched: list[tuple[Datagram, int]] = []
        for raw_key, (packets, ip_bytes) in snapshot.flows.items():
            k = decode_key(raw_key)
            name = self._interface_index.get(k.ifindex)
            if name == "lo":
                continue
            d = Datagram(
                name,
                k.outgoing,
                _protocol_name(k.protocol, k.ip_version),
                k.src_ip,
                k.src_port,
                k.dst_ip,
                k.dst_port,
                packets,
                ip_bytes,
            )
            binding = index.find(d.local, d.remote) if d.protocol == "udp" else None
            matched.append((d, binding.inode if binding else 0))
        owners = self._owners.owners_of(inode for _, inode in matched)
        result = []
        for d, inode in matched:
            pid = owners.get(inode) if inode else None
            if (
                pid is None
                and d.protocol.startswith("icmp")
                and _answered_by_kernel(d, k_type=d.src_port)
            ):
                pid = KERNEL_PID
            (lip, lport), (rip, rport) = d.local, d.remote
            result.append(
                (
                    FlowKey(pid, self._netns, d.protocol, lip, lport, rip, rport, d.interface),
                    d.traffic,
                )
            )
        return result

    def facts(
        self, country_of: Callable[[str], str | None], home_country: str | None
    ) -> BandwidthFacts:
        """Roll up everything sampled since :meth:`start`."""
        assert self.ledger is not None
        speeds = {name: netdev.link_speed_mbit(name) for name in self.ledger.interfaces}
        drops = getattr(self._capture, "kernel_drops", 0) if self._capture is not None else 0
        return build_facts(
            self.ledger,
            processes=self._process_info,
            country_of=country_of,
            home_country=home_country,
            link_speeds_mbit=speeds,
            not_counted=tuple(self.not_counted),
            capture_drops=int(drops or 0),
            read_at=time.time(),
        )

    def close(self) -> None:
        """Release every kernel resource (rings, BPF programs, netlink sockets)."""
        for source in (self._capture, self._tracer, self._destroy, self._sockdiag):
            if source is None:
                continue
            closer = getattr(source, "stop", None) or source.close  # type: ignore[attr-defined]
            try:
                closer()
            except OSError as exc:
                log.debug("closing %r: %s", source, exc)

    def __enter__(self) -> BandwidthMonitor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _protocol_name(protocol: int, ip_version: int) -> str:
    return {17: "udp", 1: "icmp", 58: "icmpv6"}.get(protocol, f"ip{ip_version}-proto{protocol}")


def _answered_by_kernel(d: Datagram, k_type: int) -> bool:
    """Echo requests received and echo replies sent are the kernel's own doing."""
    del k_type
    return not d.outgoing or not is_loopback(d.src_ip)

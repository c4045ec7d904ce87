"""The bandwidth monitor: reads the machine once per tick and feeds the pure ledger.

Sources, each optional (what cannot open is said in ``not_counted``, never hidden):
- TCP: sock_diag dumps with tcp_info (exact kernel byte/segment counters) every tick,
  plus sock_diag *destroy* events for sockets that lived between two ticks;
- owners: /proc/*/fd socket inodes (live sockets), the eBPF connect tracer (exact pid of
  every outbound connect, even a millisecond-long one), and the listening socket's owner
  for connections a server accepted;
- UDP / ICMP: an eBPF counter in the kernel's socket path (cgroup_skb), or, where it
  cannot load, an AF_PACKET ring that only ever sees non-TCP packets (datagram_sources.py);
- interfaces: /proc/net/dev, for the unattributed bucket.
Only the current network namespace is monitored, like iftop and nethogs.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass
from typing import Any

import psutil

from hostmedic.analysis.accounting import (
    FIN_RECEIVED_STATES,
    Ledger,
    TcpDeltaTracker,
    TcpSample,
    UdpBinding,
    UdpSocketIndex,
    tcp_ip_traffic,
)
from hostmedic.analysis.datagrams import KERNEL, IcmpSockets, socket_inodes
from hostmedic.analysis.rollup import build_facts
from hostmedic.analysis.routes import RouteTable, parse_ipv4_routes, parse_ipv6_routes
from hostmedic.collectors import netdev
from hostmedic.collectors.cgroup_skb import netns_cookie
from hostmedic.collectors.datagram_sources import DatagramSource, open_datagram_source
from hostmedic.collectors.procfs import SocketOwners, read_process_info
from hostmedic.collectors.procnet import read_proc_net_sockets
from hostmedic.collectors.sockdiag import DestroyListener, SockDiag, SocketRecord
from hostmedic.errors import FactUnavailable
from hostmedic.facts.bandwidth import BandwidthFacts, FlowKey, ProcessInfo, Traffic

log = logging.getLogger(__name__)

TCP_LISTEN = 10
TCP_TIME_WAIT = 6
TCP_NEW_SYN_RECV = 12
# TIME_WAIT and request sockets carry no tcp_info (their bytes are in the full socket's
# destroy event), listeners carry no traffic: the per-tick dump skips all three.
CONNECTED_STATES = 0xFFFFFFFF & ~(1 << TCP_LISTEN | 1 << TCP_TIME_WAIT | 1 << TCP_NEW_SYN_RECV)
KERNEL_PID = 0
KERNEL_PROCESS = ProcessInfo(0, "[kernel]", None, False, (), 0, "root", None, None, None)
ROUTES_REFRESH_S = 10.0
CACHE_SLACK = 20_000  # entries an owner cache may hold before it is pruned
_FAMILIES = (socket.AF_INET, socket.AF_INET6)


@dataclass(frozen=True, slots=True)
class MonitorOptions:
    interval_s: float = 1.0
    capture: bool = True  # count UDP/ICMP at all
    in_kernel: bool = True  # with the cgroup_skb counter when it loads (else the ring)
    connect_tracer: bool = True
    proc_root: str = "/proc"


def tcp_sample(r: SocketRecord, netns_inode: int, listening_ports: set[int]) -> TcpSample:
    """A sock_diag record as the ledger's cumulative IP-level counters.

    A socket on a listening port was accepted; destroy events report state CLOSE, which
    (like the FIN-received states of live sockets) means the peer's FIN was counted."""
    traffic = tcp_ip_traffic(
        family=r.family,
        bytes_sent=r.bytes_sent or 0,
        bytes_received=r.bytes_received or 0,
        segs_out=r.segs_out or 0,
        segs_in=r.segs_in or 0,
        has_timestamps=bool(r.has_timestamps),
        accepted=r.local_port in listening_ports,
        fin_received=r.state in FIN_RECEIVED_STATES,
    )
    return TcpSample(
        r.cookie,
        netns_inode,
        r.local_ip,
        r.local_port,
        r.remote_ip,
        r.remote_port,
        r.inode,
        traffic,
    )


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return ""


def _local_addresses() -> frozenset[str]:
    return frozenset(
        a.address.split("%")[0]
        for addrs in psutil.net_if_addrs().values()
        for a in addrs
        if a.family in _FAMILIES
    )


def _own_netns() -> int:
    try:
        return os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return 0


def _own_netns_cookie() -> int:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
        try:
            return netns_cookie(probe)
        except OSError:  # before Linux 5.14: the in-kernel counter cannot be used anyway
            return 0


class BandwidthMonitor:
    """Samples traffic every tick; call :meth:`facts` at any time for the rolled-up view."""

    def __init__(
        self, options: MonitorOptions | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.options = options or MonitorOptions()
        self._clock = clock
        self.not_counted: list[tuple[str, str]] = []
        self._netns = _own_netns()
        self._netns_cookies = {_own_netns_cookie(): self._netns}
        self._owners = SocketOwners(self.options.proc_root)
        self._tcp = TcpDeltaTracker()
        self._cookie_owner: dict[int, int] = {}
        self._connect_owner: dict[tuple[str, int, str, int], int] = {}
        self._ping_owner: dict[int, int] = {}
        self._fingerprints: dict[int, tuple[object, ...]] = {}
        self._listeners: dict[int, int] = {}
        self._udp_previous: list[UdpBinding] = []
        self._udp_owner: dict[int, int] = {}
        self._udp_cookies: dict[int, int] = {}  # cookie -> inode, this tick's and last
        self._udp_current_cookies: dict[int, int] = {}
        self._process_info: dict[int, ProcessInfo] = {KERNEL_PID: KERNEL_PROCESS}
        self._sockdiag: SockDiag | None = None
        self._destroy: DestroyListener | None = None
        self._datagram_source: DatagramSource | None = None
        self._tracer: Any = None
        self._routes: RouteTable | None = None
        self._routes_read_s = -1e9
        self._interface_index: dict[int, str] = {}
        self.ledger: Ledger | None = None

    def _optional(self, what_key: str, opener: Callable[[], Any]) -> Any:
        try:
            return opener()
        except FactUnavailable as exc:
            self.not_counted.append((what_key, str(exc)))
            return None

    def start(self) -> None:
        """Open every source (missing ones go to ``not_counted``) and take the baseline."""
        try:
            self._sockdiag = SockDiag()
        except FactUnavailable as exc:
            raise FactUnavailable(str(exc), key="reason.no_sockdiag") from exc
        self._destroy = self._optional("uncounted.short_tcp", DestroyListener)
        if self.options.connect_tracer:
            from hostmedic.collectors.connect_tracer import ConnectTracer

            self._tracer = self._optional("uncounted.connect_pids", ConnectTracer)
        if self.options.capture:
            try:
                self._datagram_source, fallbacks = open_datagram_source(
                    self._netns, in_kernel=self.options.in_kernel
                )
                for reason in fallbacks:
                    log.info("UDP/ICMP counted with a packet ring: %s", reason)
            except FactUnavailable as exc:
                self.not_counted.append(("uncounted.udp_icmp", str(exc)))
        else:
            self.not_counted.append(("uncounted.udp_icmp", "disabled with --no-capture"))
        self.ledger = Ledger(self._clock())
        self.sample()

    def _route_table(self, now: float) -> RouteTable:
        if self._routes is None or now - self._routes_read_s > ROUTES_REFRESH_S:
            routes = parse_ipv4_routes(_read("/proc/net/route"))
            routes += parse_ipv6_routes(_read("/proc/net/ipv6_route"))
            self._routes = RouteTable(routes, _local_addresses())
            self._routes_read_s = now
            self._interface_index = dict(socket.if_nameindex())
        return self._routes

    def sample(self) -> None:
        """One tick: read every source, attribute, add to the ledger."""
        assert self.ledger is not None and self._sockdiag is not None
        routes = self._route_table(self._clock())  # may take ms: before the timestamp
        self._owners.begin_tick()
        # the counters are read right at the tick's timestamp: read ~20 ms later, they
        # carry that much more traffic than the timestamp says (±1 % on a 2 s rate)
        now = self._clock()
        interfaces = netdev.read_interface_traffic()
        tcp = socket.IPPROTO_TCP
        listeners = {
            r.local_port: r.inode
            for f in _FAMILIES
            for r in self._sockdiag.dump(tcp, f, 1 << TCP_LISTEN)
        }
        fingerprints: dict[int, tuple[object, ...]] = {}
        changes = (self._fingerprints, fingerprints)
        changed = [
            r
            for f in _FAMILIES
            for r in self._sockdiag.dump(tcp, f, CONNECTED_STATES, changes=changes)
        ]
        self._fingerprints = fingerprints
        destroyed = self._destroy.drain() if self._destroy is not None else []
        # after the destroy drain: every connect of a connection destroyed so far is traced
        self._drain_connects()
        self._listeners = listeners
        ports = set(listeners)
        closed = [tcp_sample(r, self._netns, ports) for r in destroyed]
        live = [tcp_sample(r, self._netns, ports) for r in changed]
        deltas = [
            (s, d)
            for s, d in self._tcp.update(live, closed, alive=fingerprints)
            if routes.interface_for(s.remote_ip) != "lo"
        ]
        owners = self._owners.owners_of(
            [s.inode for s, _ in deltas] + [listeners.get(s.local_port, 0) for s, _ in deltas],
            hints=self._likely_owners(s for s, _ in deltas),
        )
        attributed: list[tuple[FlowKey, Traffic]] = []
        for s, delta in deltas:
            pid = self._tcp_owner(s, owners, listeners)
            key = FlowKey(
                pid,
                self._netns,
                "tcp",
                s.local_ip,
                s.local_port,
                s.remote_ip,
                s.remote_port,
                routes.interface_for(s.remote_ip),
            )
            attributed.append((key, delta))
        if self._datagram_source is not None:
            attributed += self._datagrams(routes)
        for pid in {k.pid for k, _ in attributed if k.pid is not None}:
            if pid not in self._process_info:
                self._process_info[pid] = read_process_info(pid, self.options.proc_root)
        self.ledger.tick(now, attributed, interfaces)
        for s in closed:
            self._cookie_owner.pop(s.cookie, None)
            self._connect_owner.pop((s.local_ip, s.local_port, s.remote_ip, s.remote_port), None)
        self._bound_caches(fingerprints)

    def _bound_caches(self, alive_cookies: Container[int]) -> None:
        """Owner caches lose entries on destroy events; a missed event (listener overflow)
        must not make a long ``hostmedic top`` grow without bound."""
        if len(self._cookie_owner) > CACHE_SLACK:
            self._cookie_owner = {c: p for c, p in self._cookie_owner.items() if c in alive_cookies}
        if len(self._connect_owner) > CACHE_SLACK:  # dicts keep insertion order: oldest first
            entries = list(self._connect_owner.items())
            self._connect_owner = dict(entries[len(entries) // 2 :])
        if len(self._ping_owner) > CACHE_SLACK:
            self._ping_owner.clear()
        if len(self._process_info) > CACHE_SLACK and self.ledger is not None:
            shown = {pid for pid, _ in self.ledger.processes} | {KERNEL_PID}
            self._process_info = {p: i for p, i in self._process_info.items() if p in shown}

    def _drain_connects(self) -> None:
        if self._tracer is None:
            return
        for ev in self._tracer.drain():
            # the tracer sees the whole host; connections of other namespaces are not ours
            # and their destroy events never reach this namespace's listener
            if not ev.established or ev.netns_inode not in (0, self._netns):
                continue
            self._connect_owner[(ev.local_ip, ev.local_port, ev.remote_ip, ev.remote_port)] = ev.pid
            if ev.pid not in self._process_info:
                info = read_process_info(ev.pid, self.options.proc_root)
                if info.gone:  # exited already: keep the name the tracer saw
                    info = ProcessInfo(
                        ev.pid, ev.comm, None, False, (), None, None, None, None, None, gone=True
                    )
                self._process_info[ev.pid] = info

    def _likely_owners(self, samples: Iterable[TcpSample]) -> set[int]:
        """Pids that probably hold these sockets: the connect tracer's pid for the 4-tuple,
        and the holders of the listening socket that accepted it."""
        likely: set[int] = set()
        for s in samples:
            pid = self._connect_owner.get((s.local_ip, s.local_port, s.remote_ip, s.remote_port))
            if pid is not None:
                likely.add(pid)
            listener = self._listeners.get(s.local_port)
            if listener:
                likely.update(self._owners.holders(listener))
        return likely

    def _tcp_owner(
        self, s: TcpSample, owners: dict[int, int], listeners: dict[int, int]
    ) -> int | None:
        """inode owner, else the pid remembered for the cookie, else the connect tracer,
        else the owner of the listener that accepted the connection."""
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

    @property
    def capture_drops(self) -> int:
        """Packets the UDP/ICMP counter dropped since start (the packet ring only)."""
        return self._datagram_source.drops if self._datagram_source is not None else 0

    @property
    def datagram_method(self) -> str | None:
        """How UDP/ICMP is counted: "kernel", "ring", or None when it is not."""
        return self._datagram_source.method if self._datagram_source is not None else None

    def _interface_name(self, netns: int, ifindex: int) -> str | None:
        return self._interface_index.get(ifindex) if netns == self._netns else None

    def _datagrams(self, routes: RouteTable) -> list[tuple[FlowKey, Traffic]]:
        """Counted UDP/ICMP packets since the last tick, each paired with its owner."""
        assert self._datagram_source is not None
        counted = [
            c
            for _, c in self._datagram_source.read(self._netns_cookies, self._interface_name)
            if c.datagram.interface != "lo"
        ]
        bindings = self._udp_bindings()  # every tick: next tick may need today's sockets
        if not counted:
            return []
        pings = {
            proto: {p.local_port: p.inode for p in read_proc_net_sockets(table)}
            for proto, table in (("icmp", "icmp"), ("icmpv6", "icmp6"))
        }
        raws = {
            proto: [r.inode for r in read_proc_net_sockets(table) if r.local_port == number]
            for proto, table, number in (("icmp", "raw", 1), ("icmpv6", "raw6", 58))
        }
        paired = socket_inodes(
            counted, UdpSocketIndex(bindings), IcmpSockets(pings, raws), self._udp_cookies
        )
        owners = self._owners.owners_of(i for _, i in paired if i > 0)
        owners.update({i: pid for i, pid in self._udp_owner.items() if i not in owners})
        result = []
        for c, (d, inode) in zip(counted, paired, strict=True):
            pid = KERNEL_PID if inode == KERNEL else owners.get(inode)
            if pid is None and c.tgid and d.outgoing:
                pid = c.tgid  # the sender, seen in the kernel: its socket came and went unseen
            if c.icmp_echo_id is not None and pid != KERNEL_PID:
                # ping often exits before its last reply is counted: remember its echo id
                if pid is not None:
                    self._ping_owner[c.icmp_echo_id] = pid
                else:
                    pid = self._ping_owner.get(c.icmp_echo_id)
            (lip, lport), (rip, rport) = d.local, d.remote
            interface = d.interface or routes.interface_for(rip)
            key = FlowKey(pid, self._netns, d.protocol, lip, lport, rip, rport, interface)
            result.append((key, d.traffic))
        return result

    def _udp_bindings(self) -> list[UdpBinding]:
        """This tick's UDP sockets, then last tick's: a socket that closed since then still
        owns the datagrams it sent before closing. Owners are resolved while alive."""
        assert self._sockdiag is not None
        records = [r for f in _FAMILIES for r in self._sockdiag.dump(socket.IPPROTO_UDP, f)]
        current = [
            UdpBinding(self._netns, r.local_ip, r.local_port, r.remote_ip, r.remote_port, r.inode)
            for r in records
        ]
        cookies = {r.cookie: r.inode for r in records}
        self._udp_cookies, self._udp_current_cookies = (
            {**self._udp_current_cookies, **cookies},
            cookies,
        )
        alive = self._owners.owners_of(b.inode for b in current)
        kept = {b.inode for b in current} | {b.inode for b in self._udp_previous}
        self._udp_owner = {i: p for i, p in {**self._udp_owner, **alive}.items() if i in kept}
        bindings, self._udp_previous = current + self._udp_previous, current
        return bindings

    def facts(
        self, country_of: Callable[[str], str | None], home_country: str | None
    ) -> BandwidthFacts:
        """Roll up everything sampled since :meth:`start`."""
        assert self.ledger is not None
        return build_facts(
            self.ledger,
            processes=self._process_info,
            country_of=country_of,
            home_country=home_country,
            link_speeds_mbit={n: netdev.link_speed_mbit(n) for n in self.ledger.interfaces},
            not_counted=tuple(self.not_counted),
            capture_drops=self.capture_drops,
            read_at=time.time(),
        )

    def close(self) -> None:
        """Release every kernel resource (ring, BPF program, netlink sockets)."""
        for source in (self._datagram_source, self._tracer, self._destroy, self._sockdiag):
            if source is not None:
                source.close()

    def __enter__(self) -> BandwidthMonitor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

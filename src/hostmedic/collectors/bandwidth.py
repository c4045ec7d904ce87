"""The bandwidth monitor: reads the machine once per tick and feeds the pure ledger.

Sources, each optional (what cannot open is said in ``not_counted``, never hidden):
- TCP: sock_diag dumps with tcp_info (exact kernel byte/segment counters) every tick,
  plus sock_diag *destroy* events for sockets that lived between two ticks;
- owners: /proc/*/fd socket inodes (live sockets), the eBPF connect tracer (exact pid of
  every outbound connect, even a millisecond-long one), and the listening socket's owner
  for connections a server accepted;
- UDP / ICMP: an eBPF counter in the kernel's socket path (cgroup_skb), or, where it
  cannot load, an AF_PACKET ring that only ever sees non-TCP packets (datagram_sources.py);
  the eBPF counter also gives each TCP socket's SACK option bytes (tcp_info has none);
- interfaces: /proc/net/dev, for the unattributed bucket.
The monitor's own network namespace is the host; every namespace attached to it by a link
(a container behind a veth or a macvlan) is monitored too, with its own sock_diag sockets
(containers.py, ns_sockets.py), and explains the host interface it is attached to.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hostmedic.analysis.accounting import Ledger, TcpSample
from hostmedic.analysis.crossings import HostView, crossings
from hostmedic.analysis.rollup import build_facts
from hostmedic.analysis.skb_flows import WaitingOptions, add_option_bytes
from hostmedic.collectors import netdev
from hostmedic.collectors.btf import vmlinux_btf
from hostmedic.collectors.containers import ContainerWatch
from hostmedic.collectors.datagram_owners import DatagramOwners
from hostmedic.collectors.datagram_sources import (
    DatagramRead,
    DatagramSource,
    open_datagram_source,
)
from hostmedic.collectors.netns import NetnsView
from hostmedic.collectors.ns_sockets import ITERATOR_FROM, NamespaceSockets
from hostmedic.collectors.procfs import SocketOwners, read_process_info
from hostmedic.collectors.sockdiag import DestroyListener, SockDiag
from hostmedic.collectors.tcp_iterator import TcpIterator
from hostmedic.errors import FactUnavailable, ParseError
from hostmedic.facts.bandwidth import BandwidthFacts, FlowKey, ProcessInfo, Traffic
from hostmedic.gc_pause import cyclic_gc_paused

log = logging.getLogger(__name__)

KERNEL_PID = 0
KERNEL_PROCESS = ProcessInfo(0, "[kernel]", None, False, (), 0, "root", None, None, None)
NAMESPACES_REFRESH_S = 10.0  # routes, interfaces, containers: re-read this often
CACHE_SLACK = 20_000  # entries an owner cache may hold before it is pruned
LOOPBACK = "lo"
CAP_SYS_ADMIN = 21
FourTuple = tuple[int, str, int, str, int]  # netns, local ip, port, remote ip, port


@dataclass(frozen=True, slots=True)
class MonitorOptions:
    interval_s: float = 1.0
    capture: bool = True  # count UDP/ICMP at all
    in_kernel: bool = True  # with the cgroup_skb counter when it loads (else the ring)
    connect_tracer: bool = True
    tcp_iterator: bool = True  # read moved TCP sockets with iter/tcp when it loads ...
    tcp_iterator_from: int = ITERATOR_FROM  # ... in namespaces with this many TCP sockets
    containers: bool = True  # also monitor the namespaces attached to this one
    proc_root: str = "/proc"


def _own_netns() -> int:
    try:
        return os.stat("/proc/thread-self/ns/net").st_ino
    except OSError:
        return 0


def _can_enter_namespaces() -> bool:
    from hostmedic.collectors.connect_tracer import effective_caps

    caps = effective_caps()
    return caps is None or bool(caps >> CAP_SYS_ADMIN & 1)


def _four_tuple(netns: int, s: TcpSample) -> FourTuple:
    return (netns, s.local_ip, s.local_port, s.remote_ip, s.remote_port)


class BandwidthMonitor:
    """Samples traffic every tick; call :meth:`facts` at any time for the rolled-up view."""

    def __init__(
        self, options: MonitorOptions | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.options = options or MonitorOptions()
        self._clock = clock
        self.not_counted: list[tuple[str, str]] = []
        self._netns = _own_netns()
        self._owners = SocketOwners(self.options.proc_root)
        self._datagram_owners = DatagramOwners(self._owners)
        self._spaces: dict[int, NamespaceSockets] = {}  # the own namespace and containers
        self._watch: ContainerWatch | None = None
        self._host: HostView | None = None
        self._netns_cookies: dict[int, int] = {}  # netns cookie -> inode, monitored ones
        self._read_s = -1e9
        self._netns_totals: dict[int, Traffic] = {}  # containers' interface counters
        self._cookie_owner: dict[int, int] = {}
        self._option_bytes: dict[int, WaitingOptions] = {}  # TCP option bytes, by cookie
        self._connect_owner: dict[FourTuple, int] = {}
        self._process_info: dict[int, ProcessInfo] = {KERNEL_PID: KERNEL_PROCESS}
        self._datagram_source: DatagramSource | None = None
        self._tracer: Any = None
        self._tcp_iterator: TcpIterator | None = None
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
            sockdiag = SockDiag()
        except FactUnavailable as exc:
            raise FactUnavailable(str(exc), key="reason.no_sockdiag") from exc
        destroy = self._optional("uncounted.short_tcp", DestroyListener)
        if self.options.tcp_iterator and destroy is not None:  # it needs destroy events
            try:
                self._tcp_iterator = TcpIterator()
            except FactUnavailable as exc:
                log.info("TCP sockets read by full sock_diag dumps: %s", exc)
        self._spaces[self._netns] = NamespaceSockets(
            self._netns, sockdiag, destroy, self._tcp_iterator,
            iterate_from=self.options.tcp_iterator_from,
        )  # fmt: skip
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
        vmlinux_btf.cache_clear()  # both eBPF sources are loaded: the kernel's BTF can go
        self._watch = ContainerWatch(
            self._netns, self.options.proc_root, containers=self.options.containers
        )
        if self.options.containers and not _can_enter_namespaces():
            self.not_counted.append(
                ("uncounted.containers", "entering a container's network namespace needs "
                 "CAP_SYS_ADMIN: its traffic stays unattributed on the host interfaces")
            )  # fmt: skip
        # the first discovery of containers may take 100 ms: done before the ledger's start
        # time, which must be the baseline's (every window divides by the time since it)
        self._refresh_namespaces(wait=True)
        self.ledger = Ledger(self._clock())
        self.sample()

    def _start_refresh(self, now: float) -> None:
        """Every few seconds, re-read routes, interfaces and containers on a helper thread.
        Started right after a tick's reads, so it runs while the monitor waits for the
        next one (it competes for the interpreter with nothing time-critical)."""
        assert self._watch is not None
        if now - self._read_s >= NAMESPACES_REFRESH_S:
            self._read_s = now
            self._watch.refresh_later()

    def _refresh_namespaces(self, *, wait: bool = False) -> None:
        """Take the latest view of the namespaces (``wait``: read it now, as at start);
        open the sockets of the containers that came, close those of the ones that went."""
        assert self._watch is not None
        if wait:
            self._read_s = self._clock()
            self._watch.refresh()
        elif not self._watch.apply():
            return
        attached = self._watch.attached
        for inode in [i for i in self._spaces if i != self._netns and i not in attached]:
            self._spaces.pop(inode).close()
        for inode, container in attached.items():
            if inode not in self._spaces:
                try:
                    self._spaces[inode] = NamespaceSockets.open(
                        inode, container.ref.path, self._tcp_iterator,
                        self.options.tcp_iterator_from,
                    )  # fmt: skip
                except FactUnavailable as exc:
                    log.info("container %s not monitored: %s", container.info.label, exc)
        self._netns_cookies = {self._watch.own.netns_cookie: self._netns}
        self._netns_cookies.update(
            {c.view.netns_cookie: i for i, c in attached.items() if i in self._spaces}
        )
        self._host = self._watch.host_view()

    def _interface(self, netns: int, name_in: Callable[[NetnsView], str | None]) -> str | None:
        """The host interface a flow of ``netns`` crosses first (the host end of a
        container's link), "lo" for loopback, None when it crosses none of the host's;
        ``name_in`` names the interface in the flow's own namespace."""
        assert self._watch is not None
        if netns == self._netns:
            return name_in(self._watch.own)
        container = self._watch.attached.get(netns)
        if container is None:
            return None
        return self._host_side(netns, name_in(container.view))

    def _interface_of(self, netns: int, remote_ip: str) -> str | None:
        """:meth:`_interface` of a flow to ``remote_ip``, by the namespace's routes."""
        return self._interface(netns, lambda view: view.routes.interface_for(remote_ip))

    def _interface_name(self, netns: int, ifindex: int) -> str | None:
        """:meth:`_interface` of a packet the kernel saw on interface ``ifindex``."""
        return self._interface(netns, lambda view: view.interfaces.get(ifindex))

    def _host_side(self, netns: int, name: str | None) -> str | None:
        if name is None or name == LOOPBACK:
            return name
        assert self._watch is not None
        attachment = self._watch.attached[netns].host_interfaces.get(name)
        return attachment.host_interface if attachment is not None else None

    def sample(self) -> None:
        """One tick: read every source, attribute, add to the ledger. Tens of thousands of
        short-lived tuples and no cycles: the cyclic GC waits until after the tick."""
        with cyclic_gc_paused():
            self._sample()

    def _sample(self) -> None:
        assert self.ledger is not None and self._watch is not None
        self._refresh_namespaces()  # the view read on a helper thread since the last tick
        self._owners.begin_tick()
        # the counters are read right at the tick's timestamp: read ~20 ms later, they
        # carry that much more traffic than the timestamp says (±1 % on a 2 s rate)
        now = self._clock()
        # thread-self: the namespace this thread is in (the same as the process's, except
        # when a caller runs the monitor from a thread that entered another namespace).
        # Only the raw text now: the sockets are read right after it, before any parsing,
        # so a burst sent in between is as unlikely as can be (it would show in one row).
        dev_text = netdev.read_net_dev(f"{self.options.proc_root}/thread-self/net/dev")
        reads = {inode: space.read_tcp(self._idle(inode)) for inode, space in self._spaces.items()}
        interfaces = netdev.interface_traffic(dev_text)
        for inode, space in self._spaces.items():
            space.drain_destroyed(reads[inode])
        # after the destroy drains: every connect of a connection destroyed so far is traced
        self._drain_connects()
        tcp: list[tuple[NamespaceSockets, TcpSample, Traffic, str | None]] = []
        closed: list[tuple[int, TcpSample]] = []
        for inode, space in self._spaces.items():
            deltas, gone = space.tcp_deltas(reads[inode])
            closed += [(inode, s) for s in gone]
            for s, delta in deltas:
                interface = self._interface_of(inode, s.remote_ip)
                if interface != LOOPBACK:
                    tcp.append((space, s, delta, interface))
        counted = DatagramRead([])
        if self._datagram_source is not None:
            counted = self._datagram_source.read(self._netns_cookies, self._interface_name)
        tcp = self._with_option_bytes(tcp, counted.tcp_options)
        attributed = self._tcp_flows(tcp)
        if counted.datagrams:
            attributed += self._datagram_owners.attribute(
                counted.datagrams, self._spaces, self._net_dirs(), self._interface_of
            )
        for pid in {k.pid for k, _ in attributed if k.pid is not None}:
            if pid not in self._process_info:
                self._process_info[pid] = read_process_info(pid, self.options.proc_root)
        assert self._host is not None
        self.ledger.tick(now, attributed, interfaces, explained=crossings(attributed, self._host))
        for netns, s in closed:
            self._cookie_owner.pop(s.cookie, None)
            self._connect_owner.pop(_four_tuple(netns, s), None)
        self._bound_caches()
        self._start_refresh(now)

    def _with_option_bytes(
        self,
        tcp: list[tuple[NamespaceSockets, TcpSample, Traffic, str | None]],
        option_bytes: dict[int, Traffic],
    ) -> list[tuple[NamespaceSockets, TcpSample, Traffic, str | None]]:
        """The TCP growth with the SACK option bytes the kernel counted for each socket."""
        pairs = [(s.cookie, d) for _, s, d, _ in tcp]
        grown, self._option_bytes = add_option_bytes(pairs, self._option_bytes, option_bytes)
        return [(space, s, g, i) for (space, s, _, i), g in zip(tcp, grown, strict=True)]

    def _idle(self, netns: int) -> bool:
        """Whether a container's sockets need no dump this tick: it has no process (so no
        socket; a router namespace), or nothing crossed its interfaces since the last tick
        (its /proc/PID/net/dev unchanged). A dump walks the kernel's socket table of the
        whole machine, every namespace's sockets included, so a skipped dump matters."""
        assert self._watch is not None
        container = self._watch.attached.get(netns)
        if container is None:
            return False
        if not container.ref.pids:
            return True
        path = f"{self.options.proc_root}/{container.ref.pids[0]}/net/dev"
        try:
            counters = netdev.read_interface_traffic(path)
        except (FactUnavailable, ParseError):
            return False  # the process left: dump to be sure
        total = sum((t for name, t in counters.items() if name != LOOPBACK), Traffic())
        before, self._netns_totals[netns] = self._netns_totals.get(netns), total
        return before == total

    def _tcp_flows(
        self, tcp: list[tuple[NamespaceSockets, TcpSample, Traffic, str | None]]
    ) -> list[tuple[FlowKey, Traffic]]:
        inodes = [s.inode for _, s, _, _ in tcp]
        inodes += [space.listeners.get(s.local_port, 0) for space, s, _, _ in tcp]
        owners = self._owners.owners_of(inodes, hints=self._likely_owners(tcp))
        flows = []
        for space, s, delta, interface in tcp:
            pid = self._tcp_owner(space, s, owners)
            key = FlowKey(
                pid, space.inode, "tcp", s.local_ip, s.local_port, s.remote_ip, s.remote_port,
                interface,
            )  # fmt: skip
            flows.append((key, delta))
        return flows

    def _net_dirs(self) -> dict[int, str | None]:
        """Each monitored namespace's /proc/.../net directory (None without a process)."""
        assert self._watch is not None
        dirs: dict[int, str | None] = {self._netns: f"{self.options.proc_root}/thread-self/net"}
        for inode, c in self._watch.attached.items():
            pid = c.ref.pids[0] if c.ref.pids else None
            dirs[inode] = None if pid is None else f"{self.options.proc_root}/{pid}/net"
        return dirs

    def _bound_caches(self) -> None:
        """Owner caches lose entries on destroy events; a missed event (listener overflow)
        must not make a long ``hostmedic top`` grow without bound."""
        trackers = [space.tcp for space in self._spaces.values()]
        if len(self._cookie_owner) > sum(t.remembered for t in trackers) + CACHE_SLACK:
            # more owners than open sockets: keep those of the sockets still open (a server
            # with more open sockets than the slack is not rescanned every tick)
            self._cookie_owner = {
                c: p for c, p in self._cookie_owner.items() if any(c in t for t in trackers)
            }
        if len(self._connect_owner) > CACHE_SLACK:  # dicts keep insertion order: oldest first
            entries = list(self._connect_owner.items())
            self._connect_owner = dict(entries[len(entries) // 2 :])
        if len(self._process_info) > CACHE_SLACK and self.ledger is not None:
            shown = {pid for pid, _ in self.ledger.processes} | {KERNEL_PID}
            self._process_info = {p: i for p, i in self._process_info.items() if p in shown}

    def _drain_connects(self) -> None:
        if self._tracer is None:
            return
        for ev in self._tracer.drain():
            # the tracer sees the whole host; connections of namespaces not monitored
            # never reach a destroy listener of ours
            netns = ev.netns_inode or self._netns
            if not ev.established or netns not in self._spaces:
                continue
            key = (netns, ev.local_ip, ev.local_port, ev.remote_ip, ev.remote_port)
            self._connect_owner[key] = ev.pid
            if ev.pid not in self._process_info:
                info = read_process_info(ev.pid, self.options.proc_root)
                if info.gone:  # exited already: keep the name the tracer saw
                    info = ProcessInfo(
                        ev.pid, ev.comm, None, False, (), None, None, None, None, None, gone=True
                    )
                self._process_info[ev.pid] = info

    def _likely_owners(
        self, tcp: Iterable[tuple[NamespaceSockets, TcpSample, Traffic, str | None]]
    ) -> set[int]:
        """Pids that probably hold these sockets: the connect tracer's pid for the 4-tuple,
        and the holders of the listening socket that accepted it."""
        likely: set[int] = set()
        for space, s, _, _ in tcp:
            pid = self._connect_owner.get(_four_tuple(space.inode, s))
            if pid is not None:
                likely.add(pid)
            listener = space.listeners.get(s.local_port)
            if listener:
                likely.update(self._owners.holders(listener))
        return likely

    def _tcp_owner(
        self, space: NamespaceSockets, s: TcpSample, owners: dict[int, int]
    ) -> int | None:
        """inode owner, else the pid remembered for the cookie, else the connect tracer,
        else the owner of the listener that accepted the connection."""
        pid = owners.get(s.inode) if s.inode else None
        if pid is None:
            pid = self._cookie_owner.get(s.cookie)
        if pid is None:
            pid = self._connect_owner.get(_four_tuple(space.inode, s))
        if pid is None and s.local_port in space.listeners:
            pid = owners.get(space.listeners[s.local_port])
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

    @property
    def own(self) -> NamespaceSockets:
        """The sockets of the monitor's own namespace (for benchmarks' instrumentation)."""
        return self._spaces[self._netns]

    def facts(
        self, country_of: Callable[[str], str | None], home_country: str | None
    ) -> BandwidthFacts:
        """Roll up everything sampled since :meth:`start`."""
        assert self.ledger is not None
        containers = (
            {i: c.info for i, c in self._watch.attached.items()} if self._watch is not None else {}
        )
        return build_facts(
            self.ledger,
            processes=self._process_info,
            country_of=country_of,
            home_country=home_country,
            link_speeds_mbit={n: netdev.link_speed_mbit(n) for n in self.ledger.interfaces},
            not_counted=tuple(self.not_counted),
            capture_drops=self.capture_drops,
            read_at=time.time(),
            containers=containers,
            host_netns=self._netns,
        )

    def close(self) -> None:
        """Release every kernel resource (BPF programs, ring, netlink sockets)."""
        for source in (self._datagram_source, self._tracer):
            if source is not None:
                source.close()
        for space in self._spaces.values():
            space.close()
        self._spaces.clear()
        if self._tcp_iterator is not None:
            self._tcp_iterator.close()

    def __enter__(self) -> BandwidthMonitor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

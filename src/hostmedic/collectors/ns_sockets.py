"""The sockets of one monitored network namespace, read once per tick.

sock_diag answers for the namespace its netlink socket lives in, so every monitored
namespace (the monitor's own and each container attached to it) has its own dump socket
and its own destroy-event listener, opened once from a helper thread that entered it.
Per tick: the listening TCP ports, the TCP sockets whose counters moved, the TCP sockets
destroyed since the last tick, and the UDP sockets with their cookies (what the in-kernel
UDP counter reports). Socket cookies are unique host-wide, so one owner cache serves every
namespace.

The sockets that moved come from the changed-only ``iter/tcp`` program
(:mod:`hostmedic.collectors.tcp_iterator`: the kernel reports only them) in a namespace
with many TCP sockets, else from a sock_diag dump of every socket compared with the
previous one by cookie. A run of the iterator has a fixed cost (1.7 ms here, plus 1.2 ms
to enter a container's namespace) where a dump costs ~3.4 µs a socket: it pays from
about 1,000 sockets on (:data:`ITERATOR_FROM`), and a namespace goes back to dumps below
half that. The iterator reports no list of open sockets, only their number; a full dump
(which has the list) replaces it for one tick when the remembered sockets outnumber the
open ones (one went without a destroy event) or destroy events were lost.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Collection
from dataclasses import dataclass, field

from hostmedic.analysis.accounting import (
    FIN_RECEIVED_STATES,
    TcpDeltaTracker,
    TcpSample,
    UdpBinding,
    tcp_ip_traffic,
)
from hostmedic.collectors.sockdiag import (
    DestroyListener,
    SockDiag,
    SocketRecord,
    open_destroy_listener_in_netns,
    open_sockdiag_in_netns,
)
from hostmedic.collectors.tcp_iterator import TcpIterator
from hostmedic.errors import FactUnavailable, ParseError
from hostmedic.facts.bandwidth import Traffic

log = logging.getLogger(__name__)

TCP_LISTEN = 10
TCP_TIME_WAIT = 6
TCP_NEW_SYN_RECV = 12
# TIME_WAIT and request sockets carry no tcp_info (their bytes are in the full socket's
# destroy event): the per-tick dump skips both. Listeners come in the same dump (one walk
# of the kernel's socket tables per family instead of two): they carry no traffic, so the
# changed-only dump shows each one once, when it appears.
DUMPED_STATES = 0xFFFFFFFF & ~(1 << TCP_TIME_WAIT | 1 << TCP_NEW_SYN_RECV)
ITERATOR_FROM = 1000  # open TCP sockets (listeners included) from which the iterator pays
FAMILIES = (socket.AF_INET, socket.AF_INET6)


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


@dataclass
class TcpRead:
    """One tick's TCP reading of a namespace, before the destroy events are drained.

    A full dump gives ``alive`` (the cookie of every open socket), the iterator ``count``
    (how many are open); an idle tick neither."""

    listeners: dict[int, int]  # listening port -> the listener's inode
    changed: list[SocketRecord]
    alive: Collection[int] | None = None
    count: int | None = None
    destroyed: list[SocketRecord] = field(default_factory=list)


class NamespaceSockets:
    """Dump and destroy sockets of one namespace plus what carries over between ticks."""

    def __init__(
        self,
        inode: int,
        sockdiag: SockDiag,
        destroy: DestroyListener | None,
        iterator: TcpIterator | None = None,
        path: str | None = None,
        iterate_from: int = ITERATOR_FROM,
    ) -> None:
        """``path``: where to enter the namespace (None: it is the monitor's own);
        ``iterate_from``: how many open TCP sockets make the iterator worth its cost."""
        self.inode = inode
        self.sockdiag = sockdiag
        self.destroy = destroy
        # without destroy events, vanished sockets are only found by a full dump
        self._iterator = iterator if destroy is not None else None
        self._path = path
        self._iterate_from = iterate_from
        self._iterating = self._iterator is not None  # the first run counts the sockets
        self._counted = False
        self._full_dump_due = False
        self._overflows = 0
        self.tcp = TcpDeltaTracker()
        self.listeners: dict[int, int] = {}
        self._listener_cookies: dict[int, tuple[int, int]] = {}  # cookie -> (port, inode)
        self._fingerprints: dict[int, tuple[object, ...]] = {}
        self._udp_last: list[UdpBinding] = []
        self._udp_last_cookies: dict[int, int] = {}
        self.udp_cookies: dict[int, int] = {}  # cookie -> inode, this dump's and the last

    @classmethod
    def open(
        cls,
        inode: int,
        path: str,
        iterator: TcpIterator | None = None,
        iterate_from: int = ITERATOR_FROM,
    ) -> NamespaceSockets:
        """The sockets of the namespace at ``path`` (entered on a helper thread).
        FactUnavailable when it cannot be entered; a refused destroy listener only costs
        the short-lived connections."""
        sockdiag = open_sockdiag_in_netns(path)
        try:
            destroy: DestroyListener | None = open_destroy_listener_in_netns(path)
        except FactUnavailable:
            destroy = None
        return cls(inode, sockdiag, destroy, iterator, path, iterate_from)

    @property
    def iterating(self) -> bool:
        """Whether the changed-only iterator reads this namespace now."""
        return self._iterating

    def read_tcp(self, idle: bool = False) -> TcpRead:
        """Listeners and the sockets whose counters moved since the last tick.

        ``idle``: nothing crossed the namespace's interfaces since the last read, so no
        counter of a socket that matters can have moved: nothing is read."""
        if idle:
            return TcpRead(self.listeners, [])
        if self.destroy is not None and self.destroy.overflows != self._overflows:
            self._overflows = self.destroy.overflows
            self._full_dump_due = True  # lost destroy events: sockets vanished unseen
        read = None
        if self._iterating and self._iterator is not None and not self._full_dump_due:
            read = self._read_iterator(self._iterator)
        if read is None:
            self._full_dump_due = False
            read = self._read_dump()
        open_now = read.count if read.alive is None else len(read.alive)
        staying = self._iterating and self._counted
        threshold = self._iterate_from // 2 if staying else self._iterate_from
        self._iterating = self._iterator is not None and (open_now or 0) >= threshold
        self._counted = True
        return read

    def _read_iterator(self, iterator: TcpIterator) -> TcpRead | None:
        """The iterator's reading; None (and a full dump from now on) when it failed."""
        try:
            records, count = iterator.read(self._path)
            if count is None:
                raise ParseError("the TCP iterator stopped before its last socket")
        except (OSError, ParseError, FactUnavailable) as exc:
            log.info("namespace %d: TCP sockets read by full dumps: %s", self.inode, exc)
            self._iterator = None
            return None
        return TcpRead(self._with_listeners(records), self._moved(records), count=count)

    def _read_dump(self) -> TcpRead:
        """Every socket from sock_diag; the records of those that moved."""
        fingerprints: dict[int, tuple[object, ...]] = {}
        changes = (self._fingerprints, fingerprints)
        records = [
            r
            for f in FAMILIES
            for r in self.sockdiag.dump(socket.IPPROTO_TCP, f, DUMPED_STATES, changes=changes)
        ]
        if not self._iterating:  # the iterator's ticks do not keep them up to date
            self._fingerprints = fingerprints
        self._listener_cookies = {
            c: v for c, v in self._listener_cookies.items() if c in fingerprints
        }
        return TcpRead(self._with_listeners(records), self._moved(records), alive=fingerprints)

    def _with_listeners(self, records: list[SocketRecord]) -> dict[int, int]:
        """Remember the listeners among ``records``; every known listener by port."""
        for r in records:
            if r.state == TCP_LISTEN:
                self._listener_cookies[r.cookie] = (r.local_port, r.inode)
        return {port: inode for port, inode in self._listener_cookies.values()}

    @staticmethod
    def _moved(records: list[SocketRecord]) -> list[SocketRecord]:
        return [r for r in records if r.state != TCP_LISTEN]

    def drain_destroyed(self, read: TcpRead) -> None:
        """Add the sockets destroyed since the last tick to ``read``."""
        if self.destroy is not None:
            read.destroyed = self.destroy.drain()

    def tcp_deltas(self, read: TcpRead) -> tuple[list[tuple[TcpSample, Traffic]], list[TcpSample]]:
        """Growth of every TCP socket since the last tick, and the closed sockets' samples."""
        self.listeners = read.listeners
        ports = set(read.listeners)
        for r in read.destroyed:
            self._listener_cookies.pop(r.cookie, None)
        closed = [tcp_sample(r, self.inode, ports) for r in read.destroyed]
        live = [tcp_sample(r, self.inode, ports) for r in read.changed]
        deltas = self.tcp.update(live, closed, changed_only=True)
        listeners = len(self._listener_cookies)
        if read.alive is not None:
            self.tcp.forget_vanished(read.alive, listeners)
        elif read.count is not None and self.tcp.remembered + listeners > read.count:
            self._full_dump_due = True  # one vanished without a destroy event
        return deltas, closed

    def udp_bindings(self) -> list[UdpBinding]:
        """The UDP sockets now, then those of the previous dump: a socket that closed since
        then still owns the datagrams it sent before closing. Called on the ticks that
        counted datagrams here (a socket that sends is dumped while it sends); also
        refreshes ``udp_cookies``."""
        records = [r for f in FAMILIES for r in self.sockdiag.dump(socket.IPPROTO_UDP, f)]
        current = [
            UdpBinding(self.inode, r.local_ip, r.local_port, r.remote_ip, r.remote_port, r.inode)
            for r in records
        ]
        cookies = {r.cookie: r.inode for r in records}
        self.udp_cookies = {**self._udp_last_cookies, **cookies}
        bindings = current + self._udp_last
        self._udp_last, self._udp_last_cookies = current, cookies
        return bindings

    @property
    def udp_inodes(self) -> set[int]:
        """Inodes of the UDP sockets of the last dump (their owners are worth keeping)."""
        return {b.inode for b in self._udp_last}

    def close(self) -> None:
        """Close both netlink sockets; idempotent."""
        for source in (self.destroy, self.sockdiag):
            if source is not None:
                source.close()

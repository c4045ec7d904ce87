"""The sockets of one monitored network namespace, read once per tick.

sock_diag answers for the namespace its netlink socket lives in, so every monitored
namespace (the monitor's own and each container attached to it) has its own dump socket
and its own destroy-event listener, opened once from a helper thread that entered it.
Per tick: the listening TCP ports, the TCP sockets whose counters moved (changed-only
dumps: fingerprints by cookie), the TCP sockets destroyed since the last tick, and the UDP
sockets with their cookies (what the in-kernel UDP counter reports). Socket cookies are
unique host-wide, so one owner cache serves every namespace.
"""

from __future__ import annotations

import socket
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
from hostmedic.errors import FactUnavailable
from hostmedic.facts.bandwidth import Traffic

TCP_LISTEN = 10
TCP_TIME_WAIT = 6
TCP_NEW_SYN_RECV = 12
# TIME_WAIT and request sockets carry no tcp_info (their bytes are in the full socket's
# destroy event): the per-tick dump skips both. Listeners come in the same dump (one walk
# of the kernel's socket tables per family instead of two): they carry no traffic, so the
# changed-only dump shows each one once, when it appears.
DUMPED_STATES = 0xFFFFFFFF & ~(1 << TCP_TIME_WAIT | 1 << TCP_NEW_SYN_RECV)
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
    """One tick's TCP reading of a namespace, before the destroy events are drained."""

    listeners: dict[int, int]  # listening port -> the listener's inode
    changed: list[SocketRecord]
    fingerprints: dict[int, tuple[object, ...]]
    destroyed: list[SocketRecord] = field(default_factory=list)


class NamespaceSockets:
    """Dump and destroy sockets of one namespace plus what carries over between ticks."""

    def __init__(self, inode: int, sockdiag: SockDiag, destroy: DestroyListener | None) -> None:
        self.inode = inode
        self.sockdiag = sockdiag
        self.destroy = destroy
        self.tcp = TcpDeltaTracker()
        self.listeners: dict[int, int] = {}
        self._listener_cookies: dict[int, tuple[int, int]] = {}  # cookie -> (port, inode)
        self._fingerprints: dict[int, tuple[object, ...]] = {}
        self._udp_last: list[UdpBinding] = []
        self._udp_last_cookies: dict[int, int] = {}
        self.udp_cookies: dict[int, int] = {}  # cookie -> inode, this dump's and the last

    @classmethod
    def open(cls, inode: int, path: str) -> NamespaceSockets:
        """The sockets of the namespace at ``path`` (entered on a helper thread).
        FactUnavailable when it cannot be entered; a refused destroy listener only costs
        the short-lived connections."""
        sockdiag = open_sockdiag_in_netns(path)
        try:
            destroy: DestroyListener | None = open_destroy_listener_in_netns(path)
        except FactUnavailable:
            destroy = None
        return cls(inode, sockdiag, destroy)

    def read_tcp(self, idle: bool = False) -> TcpRead:
        """Listeners and the sockets whose counters moved since the last tick.

        ``idle``: nothing crossed the namespace's interfaces since the last read, so no
        counter of a socket that matters can have moved: the dump is skipped."""
        if idle:
            return TcpRead(self.listeners, [], self._fingerprints)
        fingerprints: dict[int, tuple[object, ...]] = {}
        changes = (self._fingerprints, fingerprints)
        records = [
            r
            for f in FAMILIES
            for r in self.sockdiag.dump(socket.IPPROTO_TCP, f, DUMPED_STATES, changes=changes)
        ]
        self._fingerprints = fingerprints
        for r in records:
            if r.state == TCP_LISTEN:
                self._listener_cookies[r.cookie] = (r.local_port, r.inode)
        self._listener_cookies = {
            c: v for c, v in self._listener_cookies.items() if c in fingerprints
        }
        listeners = {port: inode for port, inode in self._listener_cookies.values()}
        changed = [r for r in records if r.state != TCP_LISTEN]
        return TcpRead(listeners, changed, fingerprints)

    def drain_destroyed(self, read: TcpRead) -> None:
        """Add the sockets destroyed since the last tick to ``read``."""
        if self.destroy is not None:
            read.destroyed = self.destroy.drain()

    def tcp_deltas(self, read: TcpRead) -> tuple[list[tuple[TcpSample, Traffic]], list[TcpSample]]:
        """Growth of every TCP socket since the last tick, and the closed sockets' samples."""
        self.listeners = read.listeners
        ports = set(read.listeners)
        closed = [tcp_sample(r, self.inode, ports) for r in read.destroyed]
        live = [tcp_sample(r, self.inode, ports) for r in read.changed]
        listeners = len(self._listener_cookies)
        return self.tcp.update(live, closed, read.fingerprints, listeners), closed

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

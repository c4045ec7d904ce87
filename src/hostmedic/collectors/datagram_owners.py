"""Which process sent or received each counted UDP/ICMP datagram, in every monitored namespace.

UDP: the socket the kernel counter names (cookie → inode from this tick's and last tick's
sock_diag dump), else the socket the kernel would deliver to (address match, for the packet
ring), then inode → pid. A socket that came and went between two dumps is named by the
sender the kernel saw (egress only). ICMP: the kernel's own echo answers and errors belong
to pid 0; our pings to the ping socket with that echo id (/proc/net/icmp of the namespace)
or the lone raw socket; a ping that exited keeps its pid by echo id.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping

from hostmedic.analysis.accounting import UdpBinding, UdpSocketIndex
from hostmedic.analysis.datagrams import KERNEL, CountedDatagram, IcmpSockets, socket_inodes
from hostmedic.collectors.ns_sockets import NamespaceSockets
from hostmedic.collectors.procfs import SocketOwners
from hostmedic.collectors.procnet import read_proc_net_sockets
from hostmedic.facts.bandwidth import FlowKey, Traffic

KERNEL_PID = 0
CACHE_SLACK = 20_000  # entries the echo-id cache may hold before it is cleared


def _icmp_sockets(net_dir: str | None) -> IcmpSockets:
    if net_dir is None:  # no ICMP this tick, or no process that could hold a ping socket
        return IcmpSockets({}, {})
    pings = {
        proto: {p.local_port: p.inode for p in read_proc_net_sockets(table, root=net_dir)}
        for proto, table in (("icmp", "icmp"), ("icmpv6", "icmp6"))
    }
    raws = {
        proto: [
            r.inode for r in read_proc_net_sockets(table, root=net_dir) if r.local_port == number
        ]
        for proto, table, number in (("icmp", "raw", 1), ("icmpv6", "raw6", 58))
    }
    return IcmpSockets(pings, raws)


class DatagramOwners:
    """Remembers UDP socket owners for one tick more and ping owners by echo id."""

    def __init__(self, owners: SocketOwners) -> None:
        self._owners = owners
        self._udp_owner: dict[int, int] = {}
        self._ping_owner: dict[int, int] = {}

    def _bindings(
        self, spaces: Mapping[int, NamespaceSockets], busy: Iterable[int]
    ) -> dict[int, list[UdpBinding]]:
        """The UDP sockets (now and at the previous dump) of the ``busy`` namespaces; owners
        of the live ones are resolved now, while they are alive."""
        bindings = {inode: spaces[inode].udp_bindings() for inode in busy}
        alive = self._owners.owners_of(b.inode for found in bindings.values() for b in found)
        kept = {i for space in spaces.values() for i in space.udp_inodes}
        kept |= {b.inode for found in bindings.values() for b in found}
        self._udp_owner = {i: p for i, p in {**self._udp_owner, **alive}.items() if i in kept}
        return bindings

    def attribute(
        self,
        counted: Iterable[tuple[int, CountedDatagram]],
        spaces: Mapping[int, NamespaceSockets],
        net_dirs: Mapping[int, str | None],
        interface_of: Callable[[int, str], str | None],
    ) -> list[tuple[FlowKey, Traffic]]:
        """FlowKeys (with pid) for the datagrams counted this tick in ``spaces``.

        ``net_dirs`` gives each namespace's /proc/.../net directory (None: no process in
        it); ``interface_of(netns, remote_ip)`` routes a datagram whose interface the
        counter did not name."""
        by_netns: dict[int, list[CountedDatagram]] = defaultdict(list)
        for netns, c in counted:
            if netns in spaces and c.datagram.interface != "lo":
                by_netns[netns].append(c)
        bindings = self._bindings(spaces, by_netns)
        paired = []
        for netns, found in by_netns.items():
            has_icmp = any(c.icmp_type is not None for c in found)
            icmp = _icmp_sockets(net_dirs.get(netns) if has_icmp else None)
            index = UdpSocketIndex(bindings[netns])
            inodes = socket_inodes(found, index, icmp, spaces[netns].udp_cookies)
            paired += [(netns, c, inode) for c, (_, inode) in zip(found, inodes, strict=True)]
        owners = self._owners.owners_of(inode for _, _, inode in paired if inode > 0)
        owners.update({i: pid for i, pid in self._udp_owner.items() if i not in owners})
        result = []
        for netns, c, inode in paired:
            d = c.datagram
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
            interface = d.interface or interface_of(netns, rip)
            key = FlowKey(pid, netns, d.protocol, lip, lport, rip, rport, interface)
            result.append((key, d.traffic))
        if len(self._ping_owner) > CACHE_SLACK:
            self._ping_owner.clear()
        return result

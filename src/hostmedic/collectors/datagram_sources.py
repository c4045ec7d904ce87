"""Where the monitor's UDP/ICMP counts come from: the in-kernel counter, else a packet ring.

* :class:`KernelDatagrams` (default): the cgroup_skb program of ``cgroup_skb.py`` counts in
  the socket path of every namespace; nothing is copied to user space per packet and no
  packet is cloned, so a flood costs the machine little.
* :class:`RingDatagrams` (fallback, when the program cannot load: no cgroup v2, an old
  kernel, BPF refused): the AF_PACKET TPACKET_V3 ring of ``capture.py``. It sees every
  packet of the monitor's own namespace, but the kernel clones every outgoing packet for
  it (about a fifth of the maximum packet rate under a flood, like iftop and nethogs).

Both return ``(netns inode, CountedDatagram)`` pairs for the namespaces asked for; the
in-kernel counter also returns the TCP option bytes (SACK blocks) tcp_info cannot give.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from hostmedic.analysis.accounting import Datagram
from hostmedic.analysis.datagrams import CountedDatagram
from hostmedic.analysis.skb_flows import PROTOCOLS, tcp_option_bytes, to_datagrams
from hostmedic.errors import FactUnavailable
from hostmedic.facts.bandwidth import Traffic

InterfaceOf = Callable[[int, int], str | None]  # (netns inode, ifindex) -> name


@dataclass(frozen=True, slots=True)
class DatagramRead:
    """One read: the datagrams, and socket cookie → TCP option bytes (kernel only)."""

    datagrams: list[tuple[int, CountedDatagram]]
    tcp_options: dict[int, Traffic] = field(default_factory=dict)


class DatagramSource(Protocol):
    """What the monitor needs from a UDP/ICMP counter."""

    method: str  # "kernel" or "ring", for reports and benchmarks
    drops: int  # packets the counter had to drop since start (ring only)

    def read(self, netns_inodes: Mapping[int, int], interface_of: InterfaceOf) -> DatagramRead: ...

    def close(self) -> None: ...


class KernelDatagrams:
    """The in-kernel counter (cgroup_skb on the cgroup-v2 root)."""

    method = "kernel"
    drops = 0

    def __init__(self) -> None:
        from hostmedic.collectors.cgroup_skb import CgroupSkbCounter

        self._counter = CgroupSkbCounter()

    def read(self, netns_inodes: Mapping[int, int], interface_of: InterfaceOf) -> DatagramRead:
        """Counts since the last read of the namespaces whose cookies are in ``netns_inodes``."""
        flows = self._counter.read()
        datagrams = to_datagrams(flows, netns_inodes, interface_of)
        return DatagramRead(datagrams, tcp_option_bytes(flows))

    def close(self) -> None:
        self._counter.close()


class RingDatagrams:
    """The AF_PACKET ring of the monitor's own namespace (``own_netns``)."""

    method = "ring"

    def __init__(self, own_netns: int) -> None:
        from hostmedic.collectors.capture import PacketCounter

        self._own = own_netns
        self._capture = PacketCounter()
        self._capture.start()
        self.drops = 0

    def read(self, netns_inodes: Mapping[int, int], interface_of: InterfaceOf) -> DatagramRead:
        """Packets counted since the last read (of the own namespace only; the ring filter
        passes no TCP, so SACK option bytes stay uncounted)."""
        from hostmedic.collectors.packets import decode_key

        snapshot = self._capture.snapshot_and_reset()
        self.drops += snapshot.kernel_drops
        counted = []
        for raw_key, (packets, ip_bytes) in snapshot.flows.items():
            k = decode_key(raw_key)
            proto = PROTOCOLS.get(k.protocol, f"ip-proto-{k.protocol}")
            d = Datagram(
                interface_of(self._own, k.ifindex),
                k.outgoing,
                proto,
                k.src_ip,
                k.src_port,
                k.dst_ip,
                k.dst_port,
                packets,
                ip_bytes,
            )
            counted.append((self._own, CountedDatagram(d, k.icmp_type, k.icmp_echo_id)))
        return DatagramRead(counted)

    def close(self) -> None:
        self._capture.stop()


def open_datagram_source(
    own_netns: int, *, in_kernel: bool = True
) -> tuple[DatagramSource, list[str]]:
    """The best available counter, and why better ones were not used (English details).

    ``in_kernel=False`` goes straight to the ring (for comparisons). FactUnavailable,
    naming every reason, when nothing can count UDP/ICMP here.
    """
    reasons: list[str] = []
    if in_kernel:
        try:
            return KernelDatagrams(), reasons
        except FactUnavailable as exc:
            reasons.append(f"in-kernel counter: {exc}")
    try:
        return RingDatagrams(own_netns), reasons
    except FactUnavailable as exc:
        reasons.append(f"packet ring: {exc}")
        params = {k: v for k, v in exc.params.items() if k != "detail"}
        raise FactUnavailable("; ".join(reasons), key=exc.key, **params) from exc

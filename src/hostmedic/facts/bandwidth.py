"""Facts of the bandwidth runbook (seeds 000–003): who sends and receives how much, to whom.

Byte counts are IP-level (IP header + transport header + payload), the way iftop counts,
over the sampling window the facts describe. Rates are bytes per second.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def format_endpoint(ip: str, port: int) -> str:
    """``ip:port`` for IPv4, ``[ip]:port`` for IPv6 (as the JSON format documents)."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@dataclass(frozen=True, slots=True)
class Traffic:
    """Bytes and packets in each direction (tx = sent by this host)."""

    tx_bytes: int = 0
    rx_bytes: int = 0
    tx_packets: int = 0
    rx_packets: int = 0

    def __add__(self, other: Traffic) -> Traffic:
        return Traffic(
            self.tx_bytes + other.tx_bytes,
            self.rx_bytes + other.rx_bytes,
            self.tx_packets + other.tx_packets,
            self.rx_packets + other.rx_packets,
        )

    def __sub__(self, other: Traffic) -> Traffic:
        return Traffic(
            self.tx_bytes - other.tx_bytes,
            self.rx_bytes - other.rx_bytes,
            self.tx_packets - other.tx_packets,
            self.rx_packets - other.rx_packets,
        )

    @property
    def total_bytes(self) -> int:
        return self.tx_bytes + self.rx_bytes

    @property
    def is_zero(self) -> bool:
        return not (self.tx_bytes or self.rx_bytes or self.tx_packets or self.rx_packets)


@dataclass(frozen=True, slots=True)
class Rates:
    """iftop's view of one row: averages over the last 2 s, 10 s and 40 s, plus peak."""

    tx_2s_bytes_per_s: float = 0.0
    rx_2s_bytes_per_s: float = 0.0
    tx_10s_bytes_per_s: float = 0.0
    rx_10s_bytes_per_s: float = 0.0
    tx_40s_bytes_per_s: float = 0.0
    rx_40s_bytes_per_s: float = 0.0
    tx_peak_bytes_per_s: float = 0.0
    rx_peak_bytes_per_s: float = 0.0


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """What /proc says about a process, read once when it first carries traffic."""

    pid: int
    name: str
    exe: str | None
    exe_deleted: bool
    cmdline: tuple[str, ...]
    uid: int | None
    user: str | None
    ppid: int | None
    netns_inode: int | None
    cgroup: str | None
    package: str | None = None
    package_checked: bool = False
    gone: bool = False


@dataclass(frozen=True, slots=True)
class FlowKey:
    """One conversation: owner, protocol and both endpoints."""

    pid: int | None
    netns_inode: int
    protocol: str
    local_ip: str
    local_port: int
    remote_ip: str
    remote_port: int
    interface: str | None = None


@dataclass(frozen=True, slots=True)
class FlowUsage:
    key: FlowKey
    traffic: Traffic
    rates: Rates = field(default_factory=Rates)


@dataclass(frozen=True, slots=True)
class ProcessUsage:
    """Traffic of one process (or one namespace when no process could be named)."""

    pid: int | None
    info: ProcessInfo | None
    traffic: Traffic
    rates: Rates
    remote_ips: tuple[str, ...]
    flow_count: int
    netns_inode: int | None = None


@dataclass(frozen=True, slots=True)
class RemoteUsage:
    ip: str
    traffic: Traffic
    rates: Rates
    pids: tuple[int, ...]
    country: str | None = None
    abroad: bool | None = None


@dataclass(frozen=True, slots=True)
class InterfaceUsage:
    name: str
    traffic: Traffic
    rates: Rates
    link_speed_mbit: int | None = None
    unattributed: Traffic = field(default_factory=Traffic)


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    """A network namespace attached to the host (a container), and what it is.

    ``label`` is ``<kind>:<name>``: kind ``docker``, ``containerd``, ``cri-o``,
    ``podman``, ``kubernetes``, ``nspawn`` or ``lxc`` when the cgroup path of its
    processes says so (name = the short container id or machine name), else ``netns``
    with the ``ip netns`` name or the namespace inode."""

    netns_inode: int
    label: str
    kind: str
    name: str
    cgroup: str | None = None
    netns_name: str | None = None
    host_interfaces: tuple[str, ...] = ()  # the host side of its links (veth ends)


@dataclass(frozen=True, slots=True)
class ContainerUsage:
    """Traffic of every process (and unnamed socket) of one container namespace."""

    info: ContainerInfo
    traffic: Traffic
    rates: Rates
    pids: tuple[int, ...]
    flow_count: int


@dataclass(frozen=True, slots=True)
class BandwidthFacts:
    """Everything the bandwidth rules need, for one sampling window."""

    duration_s: float
    flows: tuple[FlowUsage, ...]
    processes: tuple[ProcessUsage, ...]
    remotes: tuple[RemoteUsage, ...]
    interfaces: tuple[InterfaceUsage, ...]
    unattributed: Traffic
    not_counted: tuple[tuple[str, str], ...] = ()  # (message key of what, English detail)
    home_country: str | None = None
    capture_drops: int = 0
    read_at: float = 0.0
    containers: tuple[ContainerUsage, ...] = ()
    host_netns: int | None = None  # the monitor's own namespace (processes not in a container)

    def container(self, netns_inode: int | None) -> ContainerInfo | None:
        """The container a namespace belongs to; None for the host's own namespace."""
        for c in self.containers:
            if c.info.netns_inode == netns_inode:
                return c.info
        return None

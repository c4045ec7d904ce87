"""What the reachability walker reads: the observations of every vantage, in one shape.

Evidence arrives from several places — this client's probe, probes saved on another client
or on a peer server in the same VPC, ``hostmedic diagnose --only network`` run inside the
target (or the source), the target's bandwidth facts, answers a person read off the cloud
console. :mod:`hostmedic.analysis.reach_evidence` turns those files into these plain values;
the walker and the cause scoring only ever see this module's types, so they stay pure and
are tested on hand-built observations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# TCP connect outcomes (a port's "telnet test").
OPEN, REFUSED, TIMEOUT, UNREACHABLE, LOCAL_BLOCK, ERROR = (
    "open",
    "refused",
    "timeout",
    "unreachable",  # an ICMP unreachable came back (host/admin prohibited)
    "local_block",  # the vantage's own firewall refused to send (EPERM)
    "error",
)
# What a block-page / notice fingerprint says about who answered (probe fingerprint kinds).
PAGE_ICP, PAGE_WAF, PAGE_DDOS, PAGE_GREEN_NET, PAGE_ISP, PAGE_ADS = (
    "icp_filing",
    "waf_block",
    "ddos_block",
    "green_net_block",
    "isp_block",
    "injected_ads",
)
# Console answers a person can record (``--console KEY=VALUE``).
CONSOLE_KEYS = {
    "instance_state": ("running", "stopped_arrears", "locked"),
    "security_group": ("allows", "blocks"),
    "source_security_group": ("allows", "blocks"),
    "shield_blocks_source": ("yes", "no"),
    "lb_whitelist": ("none", "excludes_client", "includes_client"),
}


@dataclass(frozen=True, slots=True)
class Ping:
    """An ICMP echo series: how many went out and came back, and the round trips."""

    target: str
    sent: int
    received: int
    avg_ms: float | None = None
    local_block: bool = False  # sendmsg was refused by the vantage's own firewall

    @property
    def loss_pct(self) -> float:
        return 100.0 * (self.sent - self.received) / self.sent if self.sent else 100.0

    @property
    def ok(self) -> bool:
        return self.sent > 0 and self.received == self.sent

    @property
    def dead(self) -> bool:
        return self.received == 0


@dataclass(frozen=True, slots=True)
class Port:
    """One TCP connect test ("telnet IP PORT"): the result and, when open, what came back."""

    port: int
    state: str
    time_ms: float | None = None
    loss_pct: float = 0.0  # share of the connect attempts that got no answer at all


@dataclass(frozen=True, slots=True)
class Http:
    """One HTTP(S) fetch: status (None when no answer), where redirects led, which
    fingerprints (PAGE_*) matched, and a digest of the body to compare across vantages."""

    url: str
    status: int | None
    error: str | None = None
    final_url: str | None = None
    redirect_hosts: tuple[str, ...] = ()  # hosts the redirect chain visited, in order
    fingerprints: tuple[str, ...] = ()
    body_sha256: str | None = None
    scripts: tuple[str, ...] = ()  # external script URLs, "inline:<digest>" (ad injection)
    by_address: bool = False  # the URL named an IP address, not a domain

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 400 and not self.fingerprints


@dataclass(frozen=True, slots=True)
class Hop:
    ttl: int
    address: str | None  # None: nothing answered at this TTL
    loss_pct: float = 0.0


@dataclass(frozen=True, slots=True)
class Path:
    """A traceroute / MTR run toward ``target``: ICMP mode, or TCP mode toward ``port``."""

    target: str
    mode: str  # "icmp" | "tcp"
    hops: tuple[Hop, ...]
    reached: bool
    port: int | None = None

    def answering(self) -> list[Hop]:
        return [h for h in self.hops if h.address is not None and h.loss_pct < 100.0]


@dataclass(frozen=True, slots=True)
class Dns:
    """Answers for one name from each resolver asked ("system" = the vantage's own)."""

    name: str
    answers: dict[str, tuple[str, ...]]  # resolver → addresses ("system" for the local one)


@dataclass(frozen=True, slots=True)
class Vantage:
    """Everything one vantage point observed toward one target."""

    name: str
    role: str  # "client" | "peer" | "target"
    target: str  # the address (or name) probed
    addresses: tuple[str, ...] = ()  # the target's addresses as this vantage resolved them
    ping: Ping | None = None
    ports: tuple[Port, ...] = ()
    http: tuple[Http, ...] = ()
    paths: tuple[Path, ...] = ()
    dns: tuple[Dns, ...] = ()
    read_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Listener:
    port: int
    address: str  # bound address: "0.0.0.0", "::", "127.0.0.1", a specific address
    process: str | None = None


@dataclass(frozen=True, slots=True)
class Firewall:
    """The host firewall as it concerns one service: what it drops or rejects inbound."""

    read: bool  # False: the rules could not be read (then nothing below is known)
    drops_icmp: bool = False
    blocked_ports: tuple[int, ...] = ()  # inbound TCP ports dropped/rejected for everyone
    drops_all_inbound: bool = False
    blocked_sources: tuple[str, ...] = ()  # addresses/prefixes dropped inbound
    denied_services: tuple[str, ...] = ()  # hosts.deny / application deny entries
    drops_output: bool = False  # outbound traffic dropped (a source host's own firewall)
    excerpt: str = ""


@dataclass(frozen=True, slots=True)
class Inside:
    """What ``hostmedic diagnose --only network`` recorded on a host (target or source)."""

    host: str
    addresses: tuple[str, ...]
    listeners: tuple[Listener, ...] = ()
    loopback: dict[int, bool] = field(default_factory=dict)  # port → connect to 127.0.0.1 ok
    own_address: dict[int, bool] = field(default_factory=dict)  # port → connect to own addr ok
    firewall: Firewall | None = None
    gateway: str | None = None
    read_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Load:
    """The target's bandwidth runbook evidence, reduced to what this tree asks."""

    saturated: bool | None  # None: capacity unknown
    peak_share_pct: float | None = None
    interface: str | None = None
    outbound_flood: bool = False  # a suspicious process floods / scans outward (zombie)
    inbound_flood: bool = False  # received rate far above sent (attack traffic)
    excerpt: str = ""


@dataclass(frozen=True, slots=True)
class Observations:
    """All evidence about one target, merged.

    ``primary`` is the vantage the operator asks about (this client, or the source server
    for private access); ``others`` probed the same target from elsewhere; ``controls``
    are the primary vantage's probes of *other* addresses (another site, its gateway, the
    target's gateway) that tell a local problem from a target problem; ``from_target``
    are probes run on the target itself (the 127.0.0.1 page, pings of gateways).
    """

    target: str
    access: str  # "private" | "public"
    primary: Vantage | None
    others: tuple[Vantage, ...] = ()
    controls: tuple[Vantage, ...] = ()
    target_inside: Inside | None = None
    source_inside: Inside | None = None
    load: Load | None = None
    console: dict[str, str] = field(default_factory=dict)
    target_gateway: str | None = None  # from the target's inside evidence
    source_gateway: str | None = None  # from the source's inside evidence or its first hop
    from_target: tuple[Vantage, ...] = ()  # probes run on the target (its page, its pings)

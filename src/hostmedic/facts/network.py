"""Facts seen from *inside* the target (category ``network``, seed 004 §目标ECS服务器内部环境).

What ``hostmedic diagnose --only network`` reads on the server a client cannot reach: which
sockets listen and on which address (a service bound to 127.0.0.1 only is a classic
cause), whether each one accepts a connect from the machine itself (the runbook's
"127.0.0.1 对比访问测试"), the host firewall as a normalized ruleset (so any consumer can ask
"is TCP port P dropped?" with :mod:`hostmedic.analysis.firewall`), hosts.allow/deny, the
default gateways, the resolver configuration, and recent OOM kills / failed units.

Every part may be missing on its own (not root, no nft binary, ``--root`` mode): the part
is then ``None`` or empty and :attr:`NetworkFacts.skipped` says why, with a message key.
Times are Unix seconds; durations carry their unit in the field name.
"""

from __future__ import annotations

from dataclasses import dataclass

# Outcomes of one TCP connect, shared with the outside-in probes (facts.probe).
OPEN = "open"  # the handshake completed
REFUSED = "refused"  # RST (or ICMP port unreachable) — something answered "no"
TIMEOUT = "timeout"  # no answer at all within the timeout: dropped somewhere
UNREACHABLE = "unreachable"  # ICMP host/net/admin unreachable, or no route
ERROR = "error"  # a local error (no permission, bad address): says nothing about the path
TCP_OUTCOMES = (OPEN, REFUSED, TIMEOUT, UNREACHABLE, ERROR)


@dataclass(frozen=True, slots=True)
class Vantage:
    """Where an observation was made.

    ``role`` is what the operator said this machine is (``--vantage``): ``client`` (a
    machine that tries to reach the target), ``peer`` (another server in the target's
    network, e.g. the same VPC) or ``target`` (the server itself). ``addresses`` are this
    machine's own non-loopback addresses; ``observed_at`` is when the observation began.
    ``label`` is free text the operator added (``--label "office, ISP X"``).
    """

    hostname: str
    addresses: tuple[str, ...]
    role: str
    observed_at: float
    label: str = ""
    tool_version: str = ""


@dataclass(frozen=True, slots=True)
class Listener:
    """One listening TCP socket or bound UDP socket.

    ``scope`` summarizes ``address``: ``loopback`` (127.0.0.0/8, ::1 — reachable only from
    this machine), ``wildcard`` (0.0.0.0 / ::) or ``address`` (one specific address).
    Owner fields are None when the owner could not be read (not root, process gone).
    """

    protocol: str
    address: str
    port: int
    scope: str
    pid: int | None = None
    process: str | None = None
    exe: str | None = None
    user: str | None = None
    unit: str | None = None  # systemd unit from the owner's cgroup, when there is one


@dataclass(frozen=True, slots=True)
class LocalConnect:
    """One TCP connect made from this machine to one of its own listeners.

    ``address`` is 127.0.0.1 / ::1 (the loopback test) or one of the machine's own
    non-loopback addresses (the "public address from inside" test). ``outcome`` is one of
    :data:`TCP_OUTCOMES`; ``connect_ms`` is set when it opened.
    """

    address: str
    port: int
    outcome: str
    connect_ms: float | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class FirewallMatch:
    """One condition of a firewall rule, normalized across nftables and iptables.

    ``field``: ``l4proto`` (tcp/udp/icmp/icmpv6), ``dport``, ``sport``, ``saddr``,
    ``daddr``, ``iif``, ``oif``, ``icmp_type``, ``ct_state``, ``nfproto`` (ipv4/ipv6) or
    ``other`` (a condition the evaluator does not model: the rule then only *may* apply).
    ``op`` is ``==`` or ``!=``; ``values`` are alternatives: ports (``80``, ``1000-2000``),
    prefixes (``198.51.100.0/24``), names (``echo-request``, ``established``).
    """

    field: str
    op: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FirewallRule:
    """One rule: all ``matches`` must hold, then ``verdict`` applies.

    ``verdict``: ``accept``, ``drop``, ``reject``, ``jump``/``goto`` (to ``target``),
    ``return``, or ``continue`` (counters, log: no decision). ``text`` is the rule as the
    tool printed it (the iptables-save line, or the nft rule rebuilt from its JSON).
    """

    matches: tuple[FirewallMatch, ...]
    verdict: str
    text: str
    target: str | None = None


@dataclass(frozen=True, slots=True)
class FirewallChain:
    """One chain. Base chains have a ``hook`` (input, prerouting…), a ``priority`` and a
    ``policy`` (accept/drop); regular chains are reached by jump/goto only."""

    source: str  # "nftables" or "iptables" / "ip6tables" (legacy backend only)
    family: str  # ip, ip6, inet, bridge, arp, netdev
    table: str
    name: str
    rules: tuple[FirewallRule, ...]
    hook: str | None = None
    priority: int | None = None
    policy: str | None = None


@dataclass(frozen=True, slots=True)
class FirewallFacts:
    """The host firewall as it applies to packets *to* this machine (read-only dumps of
    ``nft -j list ruleset`` and, with the legacy backend, ``iptables-save``).

    ``skipped_rules`` counts rules that could not be parsed at all (they are left out);
    ``truncated`` says the ruleset was cut to a size an evidence file can carry.
    """

    chains: tuple[FirewallChain, ...]
    sources: tuple[str, ...]
    iptables_backend: str | None = None
    skipped_rules: int = 0
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class HostsAccessEntry:
    """One line of /etc/hosts.allow or /etc/hosts.deny (TCP wrappers)."""

    path: str
    line_number: int
    daemons: tuple[str, ...]
    clients: tuple[str, ...]
    text: str


@dataclass(frozen=True, slots=True)
class Gateway:
    """A default route: its gateway (None for a device route) and interface."""

    family: str  # ipv4 / ipv6
    gateway: str | None
    interface: str
    metric: int = 0


@dataclass(frozen=True, slots=True)
class ResolverConfig:
    """/etc/resolv.conf, and the upstream servers behind the systemd-resolved stub.

    ``stub`` is True when the only nameserver is the 127.0.0.53 stub; ``upstream`` is then
    read from /run/systemd/resolve/resolv.conf (empty when that is missing).
    """

    path: str
    nameservers: tuple[str, ...]
    search: tuple[str, ...] = ()
    stub: bool = False
    upstream: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ServiceEvent:
    """Something recently killed or failed a service: ``kind`` is ``oom_kill`` (kernel
    log) or ``unit_failed`` (systemd). ``at`` is Unix time when known."""

    kind: str
    name: str
    pid: int | None = None
    at: float | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True)
class PartSkipped:
    """Why one part of the inside checks is missing: a ``reason.*`` key and detail."""

    part: str  # listeners, loopback, firewall, hosts_access, gateways, resolvers, events
    key: str
    detail: str


@dataclass(frozen=True, slots=True)
class NetworkFacts:
    """Everything the inside checks observed on this machine (the ``network`` fact)."""

    vantage: Vantage
    listeners: tuple[Listener, ...] = ()
    loopback: tuple[LocalConnect, ...] = ()
    firewall: FirewallFacts | None = None
    hosts_access: tuple[HostsAccessEntry, ...] = ()
    gateways: tuple[Gateway, ...] = ()
    resolvers: ResolverConfig | None = None
    events: tuple[ServiceEvent, ...] = ()
    skipped: tuple[PartSkipped, ...] = ()
    read_at: float = 0.0

    def skip_reason(self, part: str) -> PartSkipped | None:
        """Why ``part`` is missing, or None when it was read."""
        return next((s for s in self.skipped if s.part == part), None)

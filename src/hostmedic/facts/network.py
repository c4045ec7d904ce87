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


# FirewallMatch.field values the evaluator understands.
L4PROTO = "l4proto"  # values: tcp, udp, icmp, icmpv6, ...
NFPROTO = "nfproto"  # values: ipv4/ip, ipv6/ip6
DPORT = "dport"  # values: "21", "30000-30100" (named sets resolved by the parser)
SPORT = "sport"
SADDR = "saddr"  # values: addresses, prefixes, "@set" (nft named set), "@ipset:NAME"
DADDR = "daddr"
IIF = "iif"  # interface names
OIF = "oif"
ICMP_TYPE = "icmp_type"  # echo-request, 8, 128, ...
CT_STATE = "ct_state"  # new, established, related, invalid, untracked
SYN = "syn"  # no values: "a pure SYN segment satisfies this tcp-flags test"
LOCAL = "local"  # no values: the packet is addressed to this host (fib/addrtype LOCAL)
UNICAST = "unicast"  # no values: pkttype host/unicast
UNDER_LIMIT = "under_limit"  # no values: a rate or connection limit not yet exceeded
OTHER = "other"  # a condition not understood; ``values`` holds its text


@dataclass(frozen=True, slots=True)
class FirewallMatch:
    """One condition of a firewall rule, normalized across nftables and iptables.

    ``field`` is one of the constants above; ``other`` is a condition the evaluator does
    not model (the rule then only *may* apply). ``op`` is ``==`` or ``!=``; ``values`` are
    alternatives: ports (``80``, ``1000-2000``), prefixes (``198.51.100.0/24``), names
    (``echo-request``, ``established``); flag-like fields (``syn``…) have none.
    """

    field: str
    op: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FirewallRule:
    """One rule: all ``matches`` must hold, then ``verdict`` applies.

    ``verdict``: ``accept``, ``drop``, ``reject``, ``jump``/``goto`` (to ``target``),
    ``return``, ``continue`` (counters, log: no decision), ``vmap`` (looked up in
    ``vmap`` by the packet's ``vmap_field``) or ``unknown`` (``target`` says what: an
    iptables target or nft statement the evaluator cannot follow). ``text`` is the rule as
    readable text, ``position`` where it sits (``handle 15``, ``line 12``); ``helper``
    names the conntrack helper the rule assigns (``ftp``).
    """

    matches: tuple[FirewallMatch, ...]
    verdict: str
    text: str
    target: str | None = None
    position: str = ""
    vmap_field: str | None = None
    vmap: tuple[tuple[str, str], ...] = ()
    helper: str | None = None


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

    @property
    def where(self) -> str:
        """``inet filter input`` — how nft names it (iptables: ``ip filter INPUT``)."""
        return f"{self.family} {self.table} {self.name}"


@dataclass(frozen=True, slots=True)
class NamedSet:
    """An nftables set with its elements as text (addresses, CIDRs, ports, ``a-b`` ranges)."""

    family: str
    table: str
    name: str
    type: str
    elements: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FirewallFacts:
    """The host firewall of this network namespace (read-only dumps of
    ``nft -j list ruleset`` and ``iptables-save``; see :mod:`hostmedic.collectors.firewall`).

    ``skipped_rules`` counts rules that could not be parsed at all (they are left out);
    ``truncated`` says the ruleset was cut to a size an evidence file can carry; ``sets``
    are the nft named sets address matches refer to; ``notes`` say what was left out and
    why (nat chains, tables read from iptables-save instead); ``read_at`` is Unix time.
    """

    chains: tuple[FirewallChain, ...]
    sources: tuple[str, ...]
    iptables_backend: str | None = None
    skipped_rules: int = 0
    truncated: bool = False
    sets: tuple[NamedSet, ...] = ()
    notes: tuple[str, ...] = ()
    read_at: float = 0.0

    def chain(self, family: str, table: str, name: str) -> FirewallChain | None:
        """The chain ``name`` of table ``family table``, if any."""
        return next(
            (c for c in self.chains if (c.family, c.table, c.name) == (family, table, name)),
            None,
        )

    def named_set(self, family: str, table: str, name: str) -> NamedSet | None:
        """The set ``name`` of table ``family table``, if any."""
        return next(
            (s for s in self.sets if (s.family, s.table, s.name) == (family, table, name)), None
        )


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

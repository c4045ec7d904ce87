"""Facts of the host firewall: the netfilter ruleset, normalised from ``nft -j list ruleset``
and ``iptables-save`` into one small model that a pure evaluator can walk.

Only what decides whether a packet passes is kept: base chains (hook, priority, policy),
their rules as conditions (:class:`Match`) plus a verdict, named sets and their elements.
A condition hostmedic does not understand is kept as ``field="other"`` with its text, so
the evaluator can answer "unknown" instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass

# Match.field values the evaluator understands.
L4PROTO = "l4proto"  # values: tcp, udp, icmp, ...
NFPROTO = "nfproto"  # values: ip, ip6
DPORT = "dport"  # values: "21", "30000-30100", "@set"
SPORT = "sport"
CT_STATE = "ct_state"  # values: new, established, related, invalid, untracked
SADDR = "saddr"  # values: addresses, CIDRs, "@set"
DADDR = "daddr"
IIF = "iif"  # interface names
OIF = "oif"
SYN = "syn"  # no values: "a pure SYN segment satisfies this tcp-flags test" (negate: it does not)
LOCAL = "local"  # no values: "the packet is addressed to this host" (fib/addrtype LOCAL)
UNICAST = "unicast"  # no values: pkttype host/unicast
UNDER_LIMIT = "under_limit"  # no values: a rate or connection limit not yet exceeded
OTHER = "other"  # a condition not understood; ``values`` holds its text


@dataclass(frozen=True, slots=True)
class Match:
    """One condition of a rule: ``field`` compared with ``values`` (any of them), or with
    none of them when ``negate``."""

    field: str
    values: tuple[str, ...] = ()
    negate: bool = False


@dataclass(frozen=True, slots=True)
class FwRule:
    """A rule: its conditions, then a verdict.

    ``verdict`` is ``accept``, ``drop`` (reject too), ``return``, ``continue`` (no verdict:
    counters, logging), ``jump:CHAIN``, ``goto:CHAIN``, ``vmap`` (the verdict is looked up
    in ``vmap`` by the value of ``vmap_field``) or ``unknown:WHAT``. ``helper`` names the
    conntrack helper the rule assigns (``ftp``), ``text`` is a readable rendering and
    ``position`` where it sits (``handle 15``, ``line 12``).
    """

    matches: tuple[Match, ...]
    verdict: str
    text: str
    position: str
    vmap_field: str | None = None
    vmap: tuple[tuple[str, str], ...] = ()
    helper: str | None = None


@dataclass(frozen=True, slots=True)
class FwChain:
    """A chain of one table; base chains have a hook, a priority and a policy."""

    backend: str  # nftables, iptables, ip6tables
    family: str  # ip, ip6, inet (and arp, bridge, netdev, which are never evaluated)
    table: str
    name: str
    hook: str | None
    priority: int
    policy: str | None
    rules: tuple[FwRule, ...]

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
class Ruleset:
    """The whole ruleset of the network namespace hostmedic runs in.

    ``sources`` names what was read (``nft -j list ruleset``, ``iptables-save
    (nf_tables)``…); ``skipped`` says what was left out and why (tables iptables-nft
    manages are read from iptables-save, whose rendering hostmedic understands fully).
    """

    chains: tuple[FwChain, ...]
    sets: tuple[NamedSet, ...]
    sources: tuple[str, ...]
    skipped: tuple[str, ...]
    read_at: float

    def chain(self, family: str, table: str, name: str) -> FwChain | None:
        """The chain ``name`` of table ``family table``, if any."""
        for c in self.chains:
            if c.family == family and c.table == table and c.name == name:
                return c
        return None

    def named_set(self, family: str, table: str, name: str) -> NamedSet | None:
        """The set ``name`` of table ``family table``, if any."""
        for s in self.sets:
            if s.family == family and s.table == table and s.name == name:
                return s
        return None

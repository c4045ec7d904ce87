"""What the host firewall does with one packet to (or from) this machine. Pure.

The one evaluator of :class:`hostmedic.facts.network.FirewallFacts`, used by the network
checks (seed 004: does the server's own firewall "禁 ping" or block "部分端口"), the FTP
checks (control port, passive range, active-mode data port) and the reachability tree.

The walk follows the kernel: the base chains of the hooks the packet crosses (prerouting
then input for ``direction="in"``, output then postrouting for ``"out"``), each in
priority order; an accept ends one base chain and the packet goes on to the next, a drop
or reject anywhere is final. Inside a chain: jump / goto / return, verdict maps, the
default policy at the end. Named sets are looked up, conntrack helpers are recorded.

A field of the packet left as None is unknown (any client, any interface, any port): a
condition on it is *conditional*. The walk assumes a generic client — an Internet address
named in no rule, on a non-loopback interface, one SYN under every rate limit — and then
tries each conditional rule it met the other way round. Those that change the outcome go
to :attr:`Decision.maybe` (``ip saddr 198.51.100.0/24 drop`` blocks some clients, not
all; give ``saddr`` to decide it for one client). A condition or target hostmedic cannot
evaluate is skipped the same way and also listed in :attr:`Decision.unknown`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass, field

from hostmedic.facts import network as nf
from hostmedic.facts.network import FirewallChain, FirewallFacts, FirewallMatch, FirewallRule

ACCEPT, DROP, REJECT = "accept", "drop", "reject"
_HOOKS = {"in": ("prerouting", "input"), "out": ("output", "postrouting")}
_MAX_DEPTH = 16  # nftables refuses deeper jump chains too
_MAX_ALTERNATIVES = 200  # a fail2ban chain can hold thousands of one-address rules
_MAX_UNKNOWN = 50  # unevaluable rules skipped in one evaluation
_PROTO = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6", "ipv6-icmp": "icmpv6"}
_PORT_PROTOS = {"tcp", "udp", "sctp", "dccp", "udplite"}
_ICMP_NAMES = {"8": "echo-request", "0": "echo-reply", "128": "echo-request", "129": "echo-reply"}
_SERVICES = {"ftp-data": 20, "ftp": 21, "ssh": 22, "http": 80, "https": 443, "ftps-data": 989,
             "ftps": 990}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Packet:
    """A packet arriving at (``direction="in"``) or leaving (``"out"``) this machine.
    None = unknown (any client, any interface, any port)."""

    l4proto: str
    family: str = "ipv4"
    dport: int | None = None
    icmp_type: str | None = None
    saddr: str | None = None
    daddr: str | None = None
    iif: str | None = None
    ct_state: str = "new"
    sport: int | None = None
    direction: str = "in"


@dataclass(frozen=True, slots=True)
class Decision:
    """The packet's fate: ``verdict`` accept/drop/reject; ``rule`` is the deciding rule's
    text (or ``policy drop``), ``chain`` names it (source family table chain).
    ``certain`` is False when ``maybe`` rules (which apply to some packets of this kind
    only, or cannot be evaluated) would change the outcome; ``unknown`` lists those of
    them hostmedic cannot evaluate. ``decided_by`` says which rules decided, as
    ``family table chain: rule`` (for an accept: every accepting rule on the way);
    ``conditions`` are the ``maybe`` rules named the same way."""

    verdict: str
    rule: str | None = None
    chain: str | None = None
    certain: bool = True
    maybe: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    decided_by: str = "policy accept"
    conditions: tuple[str, ...] = ()


class _Cond:
    """A condition that depends on the client (``unknown`` False) or cannot be evaluated
    (``unknown`` True); ``assumed`` is how the generic client fares."""

    __slots__ = ("assumed", "unknown")

    def __init__(self, assumed: bool, unknown: bool) -> None:
        self.assumed, self.unknown = assumed, unknown


_Key = tuple[str, str, int]  # (chain key text, rule index) identifies one rule


@dataclass(frozen=True, slots=True)
class _Seen:
    key: _Key
    rule: FirewallRule
    where: str
    unknown: bool
    assumed: bool


@dataclass
class _Walk:
    verdict: str  # accept, drop, reject, or "?" (stopped at the unevaluable rule ``key``)
    rule: str | None = None
    chain: FirewallChain | None = None
    decided_by: str = ""
    key: _Key | None = None
    seen: list[_Seen] = field(default_factory=list)


def _proto(value: str) -> str:
    return _PROTO.get(value.lower(), value.lower())


def _family(value: str) -> str:
    return "ip6" if value in ("ipv6", "ip6") else "ip"


def _port_in(port: int, values: tuple[str, ...]) -> bool | None:
    """Whether ``port`` is one of ``values`` (ports, ``a-b`` ranges, service names)."""
    for value in values:
        low, _, high = value.partition("-")
        try:
            a = int(low) if low.isdigit() else _SERVICES[low]
            b = (int(high) if high.isdigit() else _SERVICES[high]) if high else a
        except KeyError:
            return None  # a service name we do not resolve
        if a <= port <= b:
            return True
    return False


def _in_prefix(address: str, value: str) -> bool | None:
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def _any(hits: list[bool | None]) -> bool | None:
    return True if True in hits else (None if None in hits else False)


def _address_hit(
    fw: FirewallFacts, chain: FirewallChain, address: str, values: tuple[str, ...]
) -> bool | None:
    hits: list[bool | None] = []
    for value in values:
        if value.startswith("@ipset:"):
            hits.append(None)  # ipset contents are not in the dumps
        elif value.startswith("@"):
            named = fw.named_set(chain.family, chain.table, value[1:])
            elements = named.elements if named else ()
            hits.append(_any([_in_prefix(address, e) for e in elements]) if named else None)
        else:
            hits.append(_in_prefix(address, value))
    return _any(hits)


def _test(m: FirewallMatch, p: Packet, fw: FirewallFacts, chain: FirewallChain) -> bool | _Cond:
    """One condition against the packet: True/False, or conditional/unknown."""
    negate = m.op == "!="
    hit: bool | None
    if m.field == nf.L4PROTO:  # p is normalized (see evaluate): l4proto, family
        hit = any(_proto(v) == p.l4proto for v in m.values)
    elif m.field == nf.NFPROTO:
        hit = any(_family(v) == p.family for v in m.values)
    elif m.field in (nf.DPORT, nf.SPORT):
        port = p.dport if m.field == nf.DPORT else p.sport
        if p.l4proto not in _PORT_PROTOS:
            hit = False  # an ICMP packet has no ports
        elif port is None:
            return _Cond(assumed=negate, unknown=False)
        else:
            hit = _port_in(port, m.values)
    elif m.field == nf.ICMP_TYPE:
        types = {_ICMP_NAMES.get(v.split("/")[0], v) for v in m.values}
        hit = p.icmp_type is not None and p.icmp_type in types
    elif m.field == nf.CT_STATE:
        hit = p.ct_state in {s for v in m.values for s in v.split(",")}
    elif m.field == nf.SYN:
        hit = p.l4proto == "tcp" and p.ct_state == "new"
    elif m.field in (nf.LOCAL, nf.UNICAST, nf.UNDER_LIMIT):
        hit = True  # the packet is to this host, unicast, not a flood
    elif m.field in (nf.IIF, nf.OIF):
        if m.field == nf.IIF and p.iif is not None:
            hit = p.iif in m.values
        elif all(v == "lo" for v in m.values):
            hit = False  # a client is not on the loopback interface
        else:
            return _Cond(assumed=negate, unknown=False)
    elif m.field in (nf.SADDR, nf.DADDR):
        address = p.saddr if m.field == nf.SADDR else p.daddr
        if address is None:
            return _Cond(assumed=negate, unknown=False)
        hit = _address_hit(fw, chain, address, m.values)
    else:
        hit = None
    if hit is None:
        return _Cond(assumed=False, unknown=True)
    return hit != negate


def _applies(
    rule: FirewallRule, p: Packet, fw: FirewallFacts, chain: FirewallChain
) -> bool | _Cond:
    cond: _Cond | None = None
    for m in rule.matches:
        got = _test(m, p, fw, chain)
        if got is False:
            return False
        if isinstance(got, _Cond):
            if cond is None:
                cond = _Cond(got.assumed, got.unknown)
            else:
                cond.assumed = cond.assumed and got.assumed
                cond.unknown = cond.unknown or got.unknown
    return True if cond is None else cond


def _vmap_verdict(rule: FirewallRule, p: Packet) -> str | None:
    """The verdict a verdict map gives the packet (None: no entry; "?": cannot tell)."""
    if rule.vmap_field == nf.CT_STATE:
        return next((v for k, v in rule.vmap if k == p.ct_state), None)
    if rule.vmap_field == nf.L4PROTO:
        return next((v for k, v in rule.vmap if _proto(k) == p.l4proto), None)
    if rule.vmap_field in (nf.DPORT, nf.SPORT):
        port = p.dport if rule.vmap_field == nf.DPORT else p.sport
        if port is None:
            return "?"
        return next((v for k, v in rule.vmap if _port_in(port, (k,))), None)
    return "?"


class _Walker:
    """One deterministic walk through the hooks. ``flip`` names the one conditional rule
    taken the other way round from the generic client's; ``skip`` the unevaluable rules
    passed over."""

    def __init__(
        self, fw: FirewallFacts, index: dict[tuple[str, str, str, str], FirewallChain],
        packet: Packet, flip: _Key | None, skip: set[_Key],
    ) -> None:  # fmt: skip
        self.fw, self.index, self.packet, self.flip, self.skip = fw, index, packet, flip, skip
        self.seen: list[_Seen] = []

    def run(self) -> _Walk:
        accepted_by: list[str] = []
        for chain in base_chains(self.fw, self.packet):
            got = self._chain(chain, 0)
            if got.verdict in ("return", "end"):
                got = _Walk(chain.policy or ACCEPT, f"policy {chain.policy or ACCEPT}", chain)
                got.decided_by = f"{chain.where}: {got.rule}"
            if got.verdict != ACCEPT:
                got.seen = self.seen
                return got
            if got.rule is not None and not got.rule.startswith("policy "):
                accepted_by.append(got.decided_by)
        return _Walk(ACCEPT, decided_by="; ".join(accepted_by) or "policy accept", seen=self.seen)

    def _chain(self, chain: FirewallChain, depth: int) -> _Walk:
        """accept/drop/reject/return/end/"?" for one chain."""
        where = chain.where
        for index, rule in enumerate(chain.rules):
            key = (chain.source, where, index)
            applies = _applies(rule, self.packet, self.fw, chain)
            if isinstance(applies, _Cond):
                self.seen.append(_Seen(key, rule, where, applies.unknown, applies.assumed))
                applies = applies.assumed != (key == self.flip)
            if not applies:
                continue
            verdict, target = rule.verdict, rule.target
            if verdict == "vmap":
                found = _vmap_verdict(rule, self.packet) or "continue"
                verdict, _, target = found.partition(":")
            if verdict in ("jump", "goto"):
                sub = self.index.get((chain.source, chain.family, chain.table, target or ""))
                if sub is not None and depth < _MAX_DEPTH:
                    got = self._chain(sub, depth + 1)
                    if got.verdict not in ("return", "end"):
                        return got
                    if verdict == "goto":
                        return _Walk("end")
                    continue
                verdict = "?"  # no such chain, or jumps nested too deep
            if verdict == "continue":
                continue
            if verdict in (ACCEPT, DROP, REJECT, "return"):
                return _Walk(verdict, rule.text, chain, f"{where}: {rule.text}")
            if key not in self.skip:  # "?", "unknown": what it does cannot be told
                return _Walk("?", rule.text, chain, f"{where}: {rule.text}", key)
        return _Walk("end")


def _same_end(seen: _Seen, verdict: str) -> bool:
    """Taking a rule the walk passed over cannot change the outcome when its own verdict
    ends the packet the same way (a drop rule when it is dropped anyway): no walk needed."""
    if seen.assumed:
        return False  # flipping means *not* taking it: anything may follow
    if seen.rule.verdict in (DROP, REJECT):
        return verdict != ACCEPT
    return seen.rule.verdict == ACCEPT and verdict == ACCEPT


def base_chains(fw: FirewallFacts, packet: Packet) -> list[FirewallChain]:
    """The base chains a packet crosses, in the order the kernel runs them."""
    hooks = _HOOKS[packet.direction]
    family = _family(packet.family)  # also called with packets not normalized
    chains = [c for c in fw.chains if c.hook in hooks and c.family in (family, "inet")]
    return sorted(chains, key=lambda c: (hooks.index(c.hook or ""), c.priority or 0))


def evaluate(firewall: FirewallFacts, packet: Packet) -> Decision:
    """The fate of ``packet`` through every base chain of its hooks (see module doc)."""
    index = {(c.source, c.family, c.table, c.name): c for c in firewall.chains}
    packet = dataclasses.replace(
        packet, l4proto=_proto(packet.l4proto), family=_family(packet.family)
    )
    skip: set[_Key] = set()
    unknown: dict[str, str] = {}  # "where: text" -> text
    main = _Walker(firewall, index, packet, None, skip).run()
    while main.verdict == "?" and main.key is not None and len(skip) < _MAX_UNKNOWN:
        skip.add(main.key)
        unknown[main.decided_by] = main.rule or ""
        main = _Walker(firewall, index, packet, None, skip).run()
    if main.verdict == "?":  # more unevaluable rules than we try: say nothing certain
        return Decision(ACCEPT, certain=False, unknown=tuple(unknown.values()))
    maybe: dict[str, str] = {}
    seen = list({s.key: s for s in main.seen}.values())[:_MAX_ALTERNATIVES]
    for s in seen:
        if _same_end(s, main.verdict):
            continue
        other = _Walker(firewall, index, packet, s.key, skip).run()
        if (other.verdict == ACCEPT) == (main.verdict == ACCEPT) and other.verdict != "?":
            continue
        named = f"{s.where}: {s.rule.text}"
        (unknown if s.unknown or other.verdict == "?" else maybe)[named] = s.rule.text
    conditions = {**unknown, **maybe}
    blocked = main.verdict != ACCEPT and main.chain is not None
    return Decision(
        main.verdict,
        main.rule if blocked else None,
        f"{main.chain.source} {main.chain.where}" if blocked and main.chain else None,
        not conditions,
        tuple(conditions.values()),
        tuple(unknown.values()),
        main.decided_by or "policy accept",
        tuple(conditions),
    )


def echo_request(family: str = "ipv4") -> Packet:
    """An ICMP echo request (ping) from an unknown client."""
    return Packet("icmp" if family == "ipv4" else "icmpv6", family, icmp_type="echo-request")


def tcp_to(port: int, family: str = "ipv4", saddr: str | None = None) -> Packet:
    """A new TCP connection to ``port`` from ``saddr`` (None: any client)."""
    return Packet("tcp", family, dport=port, saddr=saddr)

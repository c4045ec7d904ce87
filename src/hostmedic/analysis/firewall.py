"""What the host firewall does with one packet to this machine. Pure.

Answers the seed's inside questions — does the server's own firewall "禁 ping" or block
"部分端口" — from :class:`hostmedic.facts.network.FirewallFacts`. A packet crosses every
base chain of the prerouting hook, then of the input hook, in priority order; an accept
ends one base chain only, a drop or reject ends the packet (nftables semantics; legacy
iptables tables are one more set of base chains). Jumps and gotos are followed.

Conditions are three-valued: a rule whose every condition holds decides; one with a
condition that fails is skipped; one with a condition that *may* hold (an unknown source
address, an extension the parser does not model) is skipped too but remembered, and the
decision is then marked uncertain with that rule named — e.g. ``ip saddr 198.51.100.0/24
drop`` blocks some clients, not all. Give ``saddr`` to decide it for one client.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from hostmedic.facts.network import FirewallChain, FirewallFacts, FirewallMatch, FirewallRule

ACCEPT, DROP, REJECT = "accept", "drop", "reject"
_HOOK_ORDER = {"prerouting": 0, "input": 1}
_PROTO_NAMES = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6", "ipv6-icmp": "icmpv6"}
_ICMP_NAMES = {"8": "echo-request", "0": "echo-reply", "128": "echo-request", "129": "echo-reply"}
_MAX_DEPTH = 16


@dataclass(frozen=True, slots=True)
class Packet:
    """A packet arriving at this machine. None = unknown (any client, any interface)."""

    l4proto: str
    family: str = "ipv4"
    dport: int | None = None
    icmp_type: str | None = None
    saddr: str | None = None
    daddr: str | None = None
    iif: str | None = None
    ct_state: str = "new"


@dataclass(frozen=True, slots=True)
class Decision:
    """The packet's fate: ``verdict`` accept/drop/reject; ``rule`` is the deciding rule's
    text (or ``policy drop``), ``chain`` names it (source family table chain).
    ``certain`` is False when ``maybe`` rules (which may apply to some packets of this
    kind) could change the outcome."""

    verdict: str
    rule: str | None = None
    chain: str | None = None
    certain: bool = True
    maybe: tuple[str, ...] = ()


def _proto(value: str) -> str:
    return _PROTO_NAMES.get(value.lower(), value.lower())


def _in_prefix(address: str, value: str) -> bool | None:
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None


def _port_in(port: int, value: str) -> bool | None:
    low, _, high = value.partition("-")
    try:
        return int(low) <= port <= int(high or low)
    except ValueError:
        return None  # a service name ("ssh"): not resolved here


def _test(m: FirewallMatch, p: Packet) -> bool | None:
    """Whether one condition holds: True, False, or None (cannot tell)."""
    hits: list[bool | None]
    if m.field == "l4proto":
        hits = [_proto(v) == p.l4proto for v in m.values]
    elif m.field == "nfproto":
        hits = [v.lower() == p.family for v in m.values]
    elif m.field in ("dport", "sport"):
        if m.field == "sport" or p.dport is None:
            return None if m.field == "sport" else False
        hits = [_port_in(p.dport, v) for v in m.values]
    elif m.field == "icmp_type":
        if p.icmp_type is None:
            return False
        hits = [_ICMP_NAMES.get(v, v) == p.icmp_type for v in m.values]
    elif m.field in ("saddr", "daddr"):
        address = p.saddr if m.field == "saddr" else p.daddr
        if address is None:
            return None
        hits = [_in_prefix(address, v) for v in m.values]
    elif m.field == "iif":
        # packets from clients never arrive on lo; any other name depends on the NIC
        hits = [p.iif == v if p.iif else (False if v == "lo" else None) for v in m.values]
    elif m.field == "ct_state":
        hits = [v == p.ct_state for v in m.values]
    else:
        return None
    hit: bool | None = True if True in hits else (None if None in hits else False)
    if m.op == "!=" and hit is not None:
        return not hit
    return hit


def rule_applies(rule: FirewallRule, packet: Packet) -> bool | None:
    """All conditions hold (True), one fails (False), or it depends (None)."""
    results = [_test(m, packet) for m in rule.matches]
    if False in results:
        return False
    return None if None in results else True


def _family_applies(chain: FirewallChain, packet: Packet) -> bool:
    return chain.family == "inet" or (chain.family == "ip") == (packet.family == "ipv4")


def _walk(
    chains: dict[tuple[str, str, str, str], FirewallChain],
    chain: FirewallChain,
    packet: Packet,
    maybe: list[str],
    depth: int = 0,
) -> tuple[str, FirewallRule] | None:
    """Run one chain; returns (verdict, rule) for accept/drop/reject, None to fall through."""
    for rule in chain.rules:
        applies = rule_applies(rule, packet)
        if applies is False or rule.verdict == "continue":
            continue
        if applies is None:
            if rule.verdict in (ACCEPT, DROP, REJECT, "jump", "goto"):
                maybe.append(rule.text)
            continue
        if rule.verdict == "return":
            return None
        if rule.verdict in ("jump", "goto"):
            key = (chain.source, chain.family, chain.table, rule.target or "")
            target = chains.get(key)
            if target is None or depth >= _MAX_DEPTH:
                maybe.append(rule.text)
                continue
            got = _walk(chains, target, packet, maybe, depth + 1)
            if got is not None or rule.verdict == "goto":
                return got
            continue
        return rule.verdict, rule
    return None


def evaluate(firewall: FirewallFacts, packet: Packet) -> Decision:
    """The fate of ``packet`` through every prerouting and input base chain."""
    chains = {(c.source, c.family, c.table, c.name): c for c in firewall.chains}
    base = sorted(
        (c for c in firewall.chains if c.hook in _HOOK_ORDER and _family_applies(c, packet)),
        key=lambda c: (_HOOK_ORDER[c.hook or ""], c.priority or 0),
    )
    maybe: list[str] = []
    for chain in base:
        where = f"{chain.source} {chain.family} {chain.table} {chain.name}"
        got = _walk(chains, chain, packet, maybe)
        if got is None and chain.policy == DROP:
            return Decision(DROP, "policy drop", where, not maybe, tuple(maybe))
        if got is not None and got[0] in (DROP, REJECT):
            return Decision(got[0], got[1].text, where, not maybe, tuple(maybe))
    return Decision(ACCEPT, certain=not maybe, maybe=tuple(maybe))


def echo_request(family: str = "ipv4") -> Packet:
    """An ICMP echo request (ping) from an unknown client."""
    return Packet("icmp" if family == "ipv4" else "icmpv6", family, icmp_type="echo-request")


def tcp_to(port: int, family: str = "ipv4", saddr: str | None = None) -> Packet:
    """A new TCP connection to ``port`` from ``saddr`` (None: any client)."""
    return Packet("tcp", family, dport=port, saddr=saddr)

"""The host firewall as the reachability tree asks about it: does it drop this client's
ping, this port, everything — or, on a source host, the traffic going out?

Evaluates the normalized ruleset of ``facts.network.FirewallFacts`` for a handful of
hypothetical packets (no packet is sent): base chains of a hook in priority order, rules
in order, jump/goto/return, chain policy. A condition the normalizer could not model
(``other``, or an interface name we cannot know) makes the rule "maybe": it is skipped, and
the summary says so in its excerpt. Pure.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from hostmedic.analysis.reach_observations import Firewall
from hostmedic.facts.network import FirewallChain, FirewallFacts, FirewallMatch, NetworkFacts

Packet = dict[str, str]
BLOCKING = ("drop", "reject")
UNUSED_PORT = 9  # discard: a port no service should need; blocked too → "drops everything"
OTHER_SOURCE = "100.127.255.254"  # an address no rule should name (carrier-grade NAT space)
_MAX_DEPTH = 16


def _value_matches(field: str, value: str, candidates: Sequence[str]) -> bool:
    for c in candidates:
        if field in ("dport", "sport") and "-" in c:
            low, _, high = c.partition("-")
            if low.isdigit() and high.isdigit() and int(low) <= int(value) <= int(high):
                return True
        elif field in ("saddr", "daddr") and "/" in c:
            try:
                if ipaddress.ip_address(value) in ipaddress.ip_network(c, strict=False):
                    return True
            except ValueError:
                continue
        elif c == value:
            return True
    return False


def _match(m: FirewallMatch, packet: Packet) -> bool | None:
    """True / False, or None when the condition cannot be decided for this packet."""
    if m.field == "ct_state":
        hit = "new" in m.values  # the packets asked about open new connections
    elif m.field not in packet:
        return None
    else:
        hit = _value_matches(m.field, packet[m.field], m.values)
    return hit if m.op == "==" else not hit


def _run(
    chain: FirewallChain, chains: dict[str, FirewallChain], packet: Packet, depth: int
) -> str | None:
    """The verdict of one chain: accept/drop/reject, or None (fall through / return)."""
    if depth > _MAX_DEPTH:
        return None
    for rule in chain.rules:
        results = [_match(m, packet) for m in rule.matches]
        if not all(r is True for r in results):
            continue
        if rule.verdict in ("accept", *BLOCKING):
            return rule.verdict
        if rule.verdict == "return":
            return None
        if rule.verdict in ("jump", "goto") and rule.target in chains:
            sub = _run(chains[rule.target], chains, packet, depth + 1)
            if sub is not None or rule.verdict == "goto":
                return sub
    return chain.policy if chain.hook else None


def packet_verdict(fw: FirewallFacts, hook: str, packet: Packet) -> str:
    """accept / drop / reject for ``packet`` at ``hook`` (``input`` or ``output``)."""
    family = "ip6" if ":" in packet.get("saddr", "") + packet.get("daddr", "") else "ip"
    base = [c for c in fw.chains if c.hook == hook and c.family in (family, "inet")]
    base.sort(key=lambda c: c.priority or 0)
    for chain in base:
        named = {c.name: c for c in fw.chains if (c.family, c.table) == (chain.family, chain.table)}
        verdict = _run(chain, named, packet, 0)
        if verdict in BLOCKING:
            return verdict
    return "accept"


def _packet(l4proto: str, saddr: str = "", daddr: str = "", **more: str) -> Packet:
    packet = {"l4proto": l4proto, "nfproto": "ipv6" if ":" in saddr + daddr else "ipv4", **more}
    if saddr:
        packet["saddr"] = saddr
    if daddr:
        packet["daddr"] = daddr
    return packet


def _tcp(dport: int, saddr: str = "", daddr: str = "") -> Packet:
    return _packet("tcp", saddr, daddr, dport=str(dport))


def _echo(saddr: str = "", daddr: str = "") -> Packet:
    return _packet("icmp", saddr, daddr, icmp_type="echo-request")


def _denied(facts: NetworkFacts, source: str) -> list[str]:
    """hosts.deny lines that refuse ``source`` (or everyone) and no hosts.allow line lets in."""

    def names(clients: Sequence[str]) -> bool:
        return any(c.upper() == "ALL" or _value_matches("saddr", source, [c]) for c in clients)

    allowed = [e for e in facts.hosts_access if e.path.endswith("allow") and names(e.clients)]
    return [
        f"{e.path}:{e.line_number}: {e.text}"
        for e in facts.hosts_access
        if e.path.endswith("deny") and names(e.clients) and not allowed
    ]


def firewall_summary(
    facts: NetworkFacts,
    ports: Sequence[int],
    sources: Sequence[str],
    destinations: Sequence[str] = (),
) -> Firewall:
    """What this host's firewall does to the packets the tree is asking about: pings and
    connects to ``ports`` from ``sources`` (the client's addresses), and — for a source
    host — its own traffic out to ``destinations``."""
    fw = facts.firewall
    if fw is None:
        return Firewall(read=False)
    source = sources[0] if sources else OTHER_SOURCE

    def blocks(hook: str, packet: Packet) -> bool:
        return packet_verdict(fw, hook, packet) in BLOCKING

    blocked = [p for p in ports if blocks("input", _tcp(p, source))]
    drops_icmp = blocks("input", _echo(source))
    # "everything": the failing ports, ping and a port nobody opens are all refused —
    # a hardened host (policy drop, a few ports open) refuses port 9 too, so that alone
    # says nothing.
    everything = (
        drops_icmp and len(blocked) == len(ports) and blocks("input", _tcp(UNUSED_PORT, source))
    )
    only_this_source = [source for p in blocked if not blocks("input", _tcp(p, OTHER_SOURCE))][:1]
    out_blocked = any(
        blocks("output", _tcp(p, daddr=d)) for d in destinations for p in (ports or [UNUSED_PORT])
    ) or any(blocks("output", _echo(daddr=d)) for d in destinations)
    return Firewall(
        read=True,
        drops_icmp=drops_icmp,
        blocked_ports=tuple(blocked),
        drops_all_inbound=everything,
        blocked_sources=tuple(only_this_source),
        denied_services=tuple(_denied(facts, source)),
        drops_output=out_blocked,
        excerpt="; ".join(r.text for c in fw.chains for r in c.rules if r.verdict in BLOCKING)[
            :300
        ],
    )

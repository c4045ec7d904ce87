"""The host firewall as the reachability tree asks about it: does it drop this client's
ping, this port, everything — or, on a source host, its own traffic going out?

The packet evaluator is :mod:`hostmedic.analysis.firewall` (prerouting + input chains);
this module asks it about a handful of hypothetical packets (no packet is sent). For the
outbound question the output chains are presented to the same evaluator as input chains
(conditions on the destination address evaluate the same way), so there is one
evaluator for both directions. Pure.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Sequence

from hostmedic.analysis.firewall import DROP, REJECT, Decision, Packet, evaluate
from hostmedic.analysis.reach_observations import Firewall
from hostmedic.facts.network import FirewallFacts, NetworkFacts

UNUSED_PORT = 9  # discard: a port no service should need
OTHER_SOURCE = "100.127.255.254"  # an address no rule should name (carrier-grade NAT space)


def _family(address: str | None) -> str:
    return "ipv6" if address and ":" in address else "ipv4"


def _blocked(decision: Decision) -> bool:
    return decision.verdict in (DROP, REJECT)


def outbound_view(fw: FirewallFacts) -> FirewallFacts:
    """The output chains as the evaluator's input chains; the input side left out."""
    chains = tuple(
        dataclasses.replace(c, hook="input" if c.hook == "output" else None) for c in fw.chains
    )
    return dataclasses.replace(fw, chains=chains)


def _denied(facts: NetworkFacts, source: str) -> list[str]:
    """hosts.deny lines that refuse ``source`` (or everyone) when no hosts.allow line
    lets it in — TCP wrappers check allow first."""

    def names(clients: Sequence[str]) -> bool:
        for c in clients:
            if c.upper() == "ALL" or c == source:
                return True
            try:
                if ipaddress.ip_address(source) in ipaddress.ip_network(c, strict=False):
                    return True
            except ValueError:
                continue
        return False

    if any(e.path.endswith("allow") and names(e.clients) for e in facts.hosts_access):
        return []
    return [
        f"{e.path}:{e.line_number}: {e.text}"
        for e in facts.hosts_access
        if e.path.endswith("deny") and names(e.clients)
    ]


def firewall_summary(
    facts: NetworkFacts,
    ports: Sequence[int],
    sources: Sequence[str],
    destinations: Sequence[str] = (),
) -> Firewall:
    """What this host's firewall does to the packets the tree asks about: pings and
    connects to ``ports`` from ``sources`` (the client's addresses), and — for a source
    host — its own traffic out to ``destinations``."""
    fw = facts.firewall
    if fw is None:
        return Firewall(read=False)
    source = sources[0] if sources else OTHER_SOURCE
    family = _family(source)

    def inbound(port: int | None, saddr: str = source) -> Decision:
        if port is None:
            return evaluate(fw, Packet("icmp", family, icmp_type="echo-request", saddr=saddr))
        return evaluate(fw, Packet("tcp", family, dport=port, saddr=saddr))

    decisions = {p: inbound(p) for p in ports}
    blocked = [p for p, d in decisions.items() if _blocked(d)]
    icmp = inbound(None)
    # "Everything": the failing ports, ping and a port nobody opens are all refused. A
    # hardened host (policy drop, a few ports open) refuses port 9 too, so that alone
    # says nothing.
    everything = _blocked(icmp) and len(blocked) == len(ports) and _blocked(inbound(UNUSED_PORT))
    only_this_source = [source for p in blocked if not _blocked(inbound(p, OTHER_SOURCE))][:1]
    out = outbound_view(fw)
    out_blocked = any(
        _blocked(evaluate(out, Packet(proto, _family(d), dport=port, icmp_type=kind, daddr=d)))
        for d in destinations
        for proto, port, kind in [("icmp", None, "echo-request")]
        + [("tcp", p, None) for p in (ports or [UNUSED_PORT])]
    )
    rules = [d.rule for d in (*decisions.values(), icmp) if _blocked(d) and d.rule]
    return Firewall(
        read=True,
        drops_icmp=_blocked(icmp),
        blocked_ports=tuple(blocked),
        drops_all_inbound=everything,
        blocked_sources=tuple(only_this_source),
        denied_services=tuple(_denied(facts, source)),
        drops_output=out_blocked,
        excerpt="; ".join(dict.fromkeys(rules))[:300],
    )

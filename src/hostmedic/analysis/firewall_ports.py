"""Port ranges and a four-way verdict on top of :func:`hostmedic.analysis.firewall.evaluate`.

The FTP checks ask about whole port ranges (the passive range) and want to know whether a
port is open to everyone, to some clients only (**restricted**: dropped for a generic
client but accepted by a source-specific rule) or cannot be told (**unknown**: a rule
hostmedic cannot evaluate would change the verdict). Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

from hostmedic.analysis.firewall import ACCEPT, DROP, REJECT, Decision, Packet, evaluate
from hostmedic.facts import network as nf
from hostmedic.facts.network import FirewallFacts

RESTRICTED, UNKNOWN = "restricted", "unknown"


@dataclass(frozen=True, slots=True)
class Reachability:
    """accept / drop / restricted / unknown, which rule or policy decided it, and the
    conditional or unknown rules that make it ``restricted`` / ``unknown``."""

    verdict: str
    decided_by: str
    conditions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PortSpan:
    """A run of consecutive ports that share one verdict."""

    first_port: int
    last_port: int
    reach: Reachability


def reachability(decision: Decision) -> Reachability:
    """The four-way view of one :class:`Decision` (reject counts as drop)."""
    if decision.unknown:
        return Reachability(UNKNOWN, decision.decided_by, decision.conditions)
    if decision.verdict in (DROP, REJECT):
        if decision.conditions:
            return Reachability(RESTRICTED, decision.decided_by, decision.conditions)
        return Reachability(DROP, decision.decided_by)
    return Reachability(ACCEPT, decision.decided_by)


def reach_verdict(firewall: FirewallFacts, packet: Packet) -> Reachability:
    """:func:`reachability` of :func:`hostmedic.analysis.firewall.evaluate`."""
    return reachability(evaluate(firewall, packet))


def _breakpoints(firewall: FirewallFacts, field: str) -> Iterator[int]:
    for chain in firewall.chains:
        for rule in chain.rules:
            values = [m.values for m in rule.matches if m.field == field]
            if rule.vmap_field == field:
                values.append(tuple(k for k, _ in rule.vmap))
            for group in values:
                for value in group:
                    low, _, high = value.partition("-")
                    if low.isdigit():
                        yield int(low)
                        yield (int(high) if high.isdigit() else int(low)) + 1


def evaluate_ports(
    firewall: FirewallFacts, packet: Packet, first: int, last: int
) -> list[PortSpan]:
    """The verdict for every destination port in ``first..last`` (inbound packets) or
    every source port (outbound), as runs of ports with one verdict. Costs one evaluation
    per run of ports the ruleset treats alike, not one per port."""
    field = nf.DPORT if packet.direction == "in" else nf.SPORT
    cuts = sorted({p for p in _breakpoints(firewall, field) if first < p <= last} | {first})
    spans: list[PortSpan] = []
    for i, start in enumerate(cuts):
        end = cuts[i + 1] - 1 if i + 1 < len(cuts) else last
        if field == nf.DPORT:
            at = dataclasses.replace(packet, dport=start)
        else:
            at = dataclasses.replace(packet, sport=start)
        got = reach_verdict(firewall, at)
        previous = spans[-1] if spans else None
        if previous is not None and previous.reach.verdict == got.verdict:
            spans[-1] = PortSpan(previous.first_port, end, _merged(previous.reach, got))
        else:
            spans.append(PortSpan(start, end, got))
    return spans


def _merged(a: Reachability, b: Reachability) -> Reachability:
    """One verdict over neighbouring port runs: every rule that decided it, once."""
    decided = list(dict.fromkeys(a.decided_by.split("; ") + b.decided_by.split("; ")))
    return Reachability(
        a.verdict, "; ".join(decided), tuple(dict.fromkeys(a.conditions + b.conditions))
    )


def conntrack_helpers(firewall: FirewallFacts) -> set[str]:
    """Conntrack helpers the ruleset assigns (``ftp``: passive data connections of FTP
    sessions it tracks arrive as ``related``, not ``new``)."""
    return {r.helper for c in firewall.chains for r in c.rules if r.helper}

"""Would the host firewall let this connection through? A small evaluator of the ruleset.

The question is always about one *probe*: a TCP SYN of a given family, inbound to a port
(the FTP control port, a passive data port) or outbound from one (active-mode port 20),
sent by "a generic client": an Internet address named in no rule, arriving on a
non-loopback interface, a single attempt (under every rate limit).

The walk follows the kernel: the base chains of the hooks the packet crosses
(prerouting then input, or output then postrouting), each in priority order; an accept
ends one base chain and the packet goes on to the next, a drop anywhere is final. Inside a
chain: jump / goto / return, verdict maps, the default policy at the end.

A condition that depends on who the client is (its address, a named set of addresses,
the interface) is *conditional*: the generic client fails it (or passes it when negated),
and each such rule on the way is also tried the other way round. A main verdict of drop
with some accepting alternative is **restricted** (open only to the sources in those
rules); a condition hostmedic cannot evaluate that would change the verdict makes it
**unknown**. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from hostmedic.facts import netfilter as nf
from hostmedic.facts.netfilter import FwChain, FwRule, Match, Ruleset

ACCEPT, DROP, RESTRICTED, UNKNOWN = "accept", "drop", "restricted", "unknown"
_HOOKS = {"in": ("prerouting", "input"), "out": ("output", "postrouting")}
_MAX_DEPTH = 16  # nftables refuses deeper jump chains too
_MAX_ALTERNATIVES = 200  # a fail2ban chain can hold thousands of one-address rules
_SERVICES = {"ftp-data": 20, "ftp": 21, "ssh": 22, "http": 80, "https": 443, "ftps-data": 989,
             "ftps": 990}  # fmt: skip
_PROTO_ALIASES = {"6": "tcp", "17": "udp", "icmpv6": "ipv6-icmp", "58": "ipv6-icmp"}


@dataclass(frozen=True, slots=True)
class Probe:
    """The packet in question: ``direction`` "in" (to this host) or "out" (from it).
    A port of None is unknown (any port): conditions on it become conditional."""

    family: str  # ip, ip6
    direction: str
    dport: int | None
    sport: int | None = None
    ct_state: str = "new"
    l4proto: str = "tcp"


@dataclass(frozen=True, slots=True)
class Reachability:
    """The verdict for a probe, which rule or policy decided it, and the conditional or
    unknown rules that make it ``restricted`` / ``unknown`` (as ``where: rule`` texts)."""

    verdict: str
    decided_by: str
    conditions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PortSpan:
    """A run of consecutive ports that share one verdict."""

    first_port: int
    last_port: int
    reach: Reachability


class _Cond:
    """A rule whose conditions depend on the client (``unknown`` False) or cannot be
    evaluated (``unknown`` True); ``assumed`` is how the generic client fares."""

    __slots__ = ("assumed", "unknown")

    def __init__(self, assumed: bool, unknown: bool) -> None:
        self.assumed, self.unknown = assumed, unknown


@dataclass(frozen=True, slots=True)
class _Seen:
    key: tuple[str, int]
    text: str
    unknown: bool


@dataclass
class _Walk:
    verdict: str
    decided_by: str
    seen: list[_Seen]


def _port_in(port: int, values: tuple[str, ...]) -> bool | None:
    for value in values:
        low, _, high = value.partition("-")
        try:
            a = int(low) if low.isdigit() else _SERVICES[low]
            b = (int(high) if high.isdigit() else _SERVICES[high]) if high else a
        except KeyError:
            return None
        if a <= port <= b:
            return True
    return False


def _test(m: Match, probe: Probe) -> bool | _Cond:
    """One condition against the probe: True/False, or conditional/unknown."""
    hit: bool | None
    if m.field == nf.L4PROTO:
        hit = probe.l4proto in {_PROTO_ALIASES.get(v, v) for v in m.values}
    elif m.field == nf.NFPROTO:
        hit = probe.family in {("ip6" if v in ("ipv6", "ip6") else "ip") for v in m.values}
    elif m.field in (nf.DPORT, nf.SPORT):
        port = probe.dport if m.field == nf.DPORT else probe.sport
        if port is None:
            return _Cond(assumed=m.negate, unknown=False)
        hit = _port_in(port, m.values)
        if hit is None:
            return _Cond(assumed=False, unknown=True)
    elif m.field == nf.CT_STATE:
        hit = probe.ct_state in {s for v in m.values for s in v.split(",")}
    elif m.field in (nf.SYN, nf.LOCAL, nf.UNICAST, nf.UNDER_LIMIT):
        hit = True  # the probe is one SYN, to this host, unicast, not a flood
    elif m.field in (nf.IIF, nf.OIF) and all(v == "lo" for v in m.values):
        hit = False  # the client is not on the loopback interface
    elif m.field in (nf.SADDR, nf.DADDR, nf.IIF, nf.OIF):
        return _Cond(assumed=m.negate, unknown=False)
    else:
        return _Cond(assumed=False, unknown=True)
    return hit != m.negate


def _applies(rule: FwRule, probe: Probe) -> bool | _Cond:
    cond: _Cond | None = None
    for m in rule.matches:
        got = _test(m, probe)
        if got is False:
            return False
        if isinstance(got, _Cond):
            if cond is None:
                cond = _Cond(got.assumed, got.unknown)
            else:
                cond.assumed = cond.assumed and got.assumed
                cond.unknown = cond.unknown or got.unknown
    return True if cond is None else cond


def _vmap_verdict(rule: FwRule, probe: Probe) -> str | None:
    """The verdict a verdict map gives the probe (None: no entry; "?": cannot tell)."""
    value: object
    if rule.vmap_field == nf.CT_STATE:
        value = probe.ct_state
    elif rule.vmap_field == nf.L4PROTO:
        value = probe.l4proto
    elif rule.vmap_field in (nf.DPORT, nf.SPORT):
        value = probe.dport if rule.vmap_field == nf.DPORT else probe.sport
    else:
        return "?"
    for key, verdict in rule.vmap:
        if isinstance(value, int):
            if _port_in(value, (key,)):
                return verdict
        elif value is None:
            return "?"
        elif _PROTO_ALIASES.get(key, key) == value:
            return verdict
    return None


class _Walker:
    """One deterministic walk through the hooks; ``flip`` names the one conditional rule
    that is taken the other way round from the generic client's."""

    def __init__(self, ruleset: Ruleset, probe: Probe, flip: tuple[str, int] | None) -> None:
        self.ruleset, self.probe, self.flip = ruleset, probe, flip
        self.seen: list[_Seen] = []

    def run(self) -> _Walk:
        accepted_by: list[str] = []
        for chain in base_chains(self.ruleset, self.probe):
            verdict, via = self._chain(chain, 0)
            if verdict in ("return", "end"):
                policy = chain.policy or ACCEPT
                verdict, via = policy, f"{chain.where}: policy {policy}"
            if verdict != ACCEPT:
                return _Walk(verdict, via, self.seen)
            if not via.endswith("policy accept"):
                accepted_by.append(via)
        return _Walk(ACCEPT, "; ".join(accepted_by) or "policy accept", self.seen)

    def _chain(self, chain: FwChain, depth: int) -> tuple[str, str]:
        """(accept | drop | return | end | unknown, where) for one chain."""
        if depth > _MAX_DEPTH:
            return UNKNOWN, f"{chain.where}: jumps nested deeper than {_MAX_DEPTH}"
        for index, rule in enumerate(chain.rules):
            applies = _applies(rule, self.probe)
            if isinstance(applies, _Cond):
                key = (chain.where, index)
                self.seen.append(_Seen(key, f"{chain.where}: {rule.text}", applies.unknown))
                applies = applies.assumed != (key == self.flip)
            if not applies:
                continue
            verdict = rule.verdict
            if verdict == "vmap":
                verdict = _vmap_verdict(rule, self.probe) or "continue"
                if verdict == "?":
                    return UNKNOWN, f"{chain.where}: {rule.text}"
            if verdict == "continue":
                continue
            where = f"{chain.where}: {rule.text}"
            if verdict in (ACCEPT, DROP, "return") or verdict.startswith("unknown:"):
                return (UNKNOWN if verdict.startswith("unknown:") else verdict), where
            kind, _, target = verdict.partition(":")
            sub = self.ruleset.chain(chain.family, chain.table, target)
            if sub is None:
                return UNKNOWN, f"{where} (no such chain)"
            result = self._chain(sub, depth + 1)
            if result[0] == "end" or result[0] == "return":
                if kind == "goto":
                    return "end", result[1]
                continue
            return result
        return "end", chain.where


def base_chains(ruleset: Ruleset, probe: Probe) -> list[FwChain]:
    """The base chains a probe crosses, in the order the kernel runs them."""
    hooks = _HOOKS[probe.direction]
    chains = [c for c in ruleset.chains if c.hook in hooks and c.family in (probe.family, "inet")]
    return sorted(chains, key=lambda c: (hooks.index(c.hook or ""), c.priority))


def evaluate(ruleset: Ruleset, probe: Probe) -> Reachability:
    """Accept, drop, restricted (only some clients) or unknown, for one probe."""
    main = _Walker(ruleset, probe, None).run()
    if main.verdict == UNKNOWN:
        return Reachability(UNKNOWN, main.decided_by, (main.decided_by,))
    accepting: list[str] = []
    unknown: list[str] = []
    for seen in main.seen[:_MAX_ALTERNATIVES]:
        other = _Walker(ruleset, probe, seen.key).run()
        if other.verdict == main.verdict:
            continue
        if seen.unknown or other.verdict == UNKNOWN:
            unknown.append(seen.text)
        elif other.verdict == ACCEPT:
            accepting.append(seen.text)
    if unknown:
        return Reachability(UNKNOWN, main.decided_by, tuple(unknown + accepting))
    if main.verdict == DROP and accepting:
        return Reachability(RESTRICTED, main.decided_by, tuple(accepting))
    return Reachability(main.verdict, main.decided_by)


def _breakpoints(ruleset: Ruleset, field: str) -> Iterator[int]:
    for chain in ruleset.chains:
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


def evaluate_ports(ruleset: Ruleset, probe: Probe, first: int, last: int) -> list[PortSpan]:
    """The verdict for every destination port in ``first..last`` (inbound probes) or every
    source port (outbound), as runs of ports with one verdict. Costs one evaluation per
    run of ports the ruleset treats alike, not one per port."""
    field = nf.DPORT if probe.direction == "in" else nf.SPORT
    cuts = sorted({p for p in _breakpoints(ruleset, field) if first < p <= last} | {first})
    spans: list[PortSpan] = []
    for i, start in enumerate(cuts):
        end = cuts[i + 1] - 1 if i + 1 < len(cuts) else last
        at = Probe(
            probe.family,
            probe.direction,
            start if field == nf.DPORT else probe.dport,
            start if field == nf.SPORT else probe.sport,
            probe.ct_state,
            probe.l4proto,
        )
        reach = evaluate(ruleset, at)
        last_span = spans[-1] if spans else None
        if last_span is not None and last_span.reach.verdict == reach.verdict:
            spans[-1] = PortSpan(last_span.first_port, end, _merged(last_span.reach, reach))
        else:
            spans.append(PortSpan(start, end, reach))
    return spans


def _merged(a: Reachability, b: Reachability) -> Reachability:
    """One verdict over neighbouring port runs: every rule that decided it, once."""
    decided = list(dict.fromkeys(a.decided_by.split("; ") + b.decided_by.split("; ")))
    return Reachability(
        a.verdict, "; ".join(decided), tuple(dict.fromkeys(a.conditions + b.conditions))
    )


def conntrack_helpers(ruleset: Ruleset) -> set[str]:
    """Conntrack helpers the ruleset assigns (``ftp``: passive data connections of FTP
    sessions it tracks arrive as ``related``, not ``new``)."""
    return {r.helper for c in ruleset.chains for r in c.rules if r.helper}

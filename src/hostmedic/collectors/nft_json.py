"""Parse ``nft -j list ruleset`` (libnftables JSON, schema 1) into the netfilter model.

Pure: text in, chains and sets out. Every expression hostmedic does not understand
becomes an ``other`` condition or an ``unknown:`` verdict carrying its name, never an
exception, so the evaluator can say "unknown" where a guess would mislead. Only filter
and route chains are kept (nat chains translate addresses, they do not filter), and only
the ip, ip6 and inet families (what a TCP connection to the host crosses).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from hostmedic.errors import ParseError
from hostmedic.facts import netfilter as nf
from hostmedic.facts.netfilter import FwChain, FwRule, Match, NamedSet

FAMILIES = ("ip", "ip6", "inet")
L4_PROTOCOLS = ("tcp", "udp", "sctp", "dccp", "udplite", "icmp", "icmpv6", "igmp", "esp", "ah")
_L4_NAME = {"icmpv6": "ipv6-icmp"}
_PORT_FIELDS = {"dport": nf.DPORT, "sport": nf.SPORT}
_ADDR_FIELDS = {"saddr": nf.SADDR, "daddr": nf.DADDR}
_META = {
    "l4proto": nf.L4PROTO,
    "nfproto": nf.NFPROTO,
    "protocol": nf.NFPROTO,
    "iif": nf.IIF,
    "iifname": nf.IIF,
    "oif": nf.OIF,
    "oifname": nf.OIF,
}
_VERDICTS = {"accept": "accept", "drop": "drop", "reject": "drop", "return": "return"}
# Statements that neither filter nor decide: the rule goes on to its next expression.
_PASSIVE = {"counter", "log", "mangle", "meta", "notrack", "set", "map", "quota", "limit",
            "dnat", "snat", "masquerade", "redirect", "dup", "fwd", "tproxy", "synproxy",
            "secmark", "ct count", "ct helper", "ct timeout", "ct expectation"}  # fmt: skip
_SYN = frozenset({"syn"})  # the flags of the probe segment: a connection attempt


def parse_nft_json(text: str) -> tuple[list[FwChain], list[NamedSet], list[str]]:
    """Chains, sets, and what was skipped (with why) from ``nft -j list ruleset`` output."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise ParseError(f"nft JSON: {exc}") from exc
    items = doc.get("nftables") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise ParseError("nft JSON: no 'nftables' array")
    objects = [(k, v) for item in items if isinstance(item, dict) for k, v in item.items()]
    sets = [s for k, v in objects if k == "set" and (s := _named_set(v)) is not None]
    helpers = {
        (v.get("family"), v.get("table"), v.get("name")): str(v.get("type", ""))
        for k, v in objects
        if k == "ct helper" and isinstance(v, dict)
    }
    rules: dict[tuple[str, str, str], list[FwRule]] = {}
    for k, v in objects:
        if k == "rule" and isinstance(v, dict) and v.get("family") in FAMILIES:
            key = (str(v.get("family")), str(v.get("table")), str(v.get("chain")))
            scope = _Scope(key[0], key[1], sets, helpers)
            rules.setdefault(key, []).append(_rule(v, scope))
    chains: list[FwChain] = []
    skipped: list[str] = []
    for k, v in objects:
        if k != "chain" or not isinstance(v, dict):
            continue
        family, table, name = str(v.get("family")), str(v.get("table")), str(v.get("name"))
        if family not in FAMILIES:
            continue
        if v.get("type") == "nat":
            skipped.append(f"{family} {table} {name}: nat chain (translates, does not filter)")
            continue
        prio = v.get("prio", 0)
        chains.append(
            FwChain(
                backend="nftables",
                family=family,
                table=table,
                name=name,
                hook=str(v["hook"]) if v.get("hook") else None,
                priority=prio if isinstance(prio, int) else 0,
                policy=str(v.get("policy", "accept")) if v.get("hook") else None,
                rules=tuple(rules.get((family, table, name), ())),
            )
        )
    return chains, sets, skipped


class _Scope:
    """What a rule's expressions may refer to: the sets and ct helpers of its table."""

    def __init__(
        self,
        family: str,
        table: str,
        sets: list[NamedSet],
        helpers: Mapping[tuple[Any, Any, Any], str],
    ) -> None:
        self.family, self.table = family, table
        self._sets = {s.name: s for s in sets if s.family == family and s.table == table}
        self._helpers = helpers

    def set_elements(self, name: str) -> tuple[str, ...] | None:
        found = self._sets.get(name)
        return found.elements if found else None

    def helper_type(self, name: str) -> str:
        return self._helpers.get((self.family, self.table, name)) or name


def _named_set(v: Any) -> NamedSet | None:
    if not isinstance(v, dict) or v.get("family") not in FAMILIES:
        return None
    elements = _values(v.get("elem", []))
    return NamedSet(
        family=str(v["family"]),
        table=str(v.get("table")),
        name=str(v.get("name")),
        type=str(v.get("type")),
        elements=elements or (),
    )


def _values(right: Any) -> tuple[str, ...] | None:
    """The right-hand side of a comparison as text values; None when not understood."""
    if isinstance(right, bool):
        return None
    if isinstance(right, int | str):
        return (str(right),)
    if isinstance(right, list):
        out: list[str] = []
        for item in right:
            got = _values(item)
            if got is None:
                return None
            out += got
        return tuple(out)
    if isinstance(right, dict):
        if "set" in right:
            return _values(right["set"])
        if "range" in right and isinstance(right["range"], list) and len(right["range"]) == 2:
            low, high = right["range"]
            return (f"{low}-{high}",)
        if "prefix" in right and isinstance(right["prefix"], dict):
            return (f"{right['prefix'].get('addr')}/{right['prefix'].get('len')}",)
        if "elem" in right and isinstance(right["elem"], dict):
            return _values(right["elem"].get("val"))
    return None


def _flags(value: Any) -> frozenset[str] | None:
    if isinstance(value, str):
        return frozenset({value})
    if isinstance(value, list):
        names = [_flags(v) for v in value]
        return None if any(n is None for n in names) else frozenset().union(*names)  # type: ignore[arg-type]
    if isinstance(value, dict) and "|" in value:
        return _flags(value["|"])
    return None


def _is_flags(left: Any) -> bool:
    payload = left.get("payload") if isinstance(left, dict) else None
    return isinstance(payload, dict) and payload == {"protocol": "tcp", "field": "flags"}


def _syn_test(op: str, left: Any, right: Any) -> Match | None:
    """``tcp flags …`` comparisons, decided for a pure SYN segment."""
    wanted = _flags(right)
    if wanted is None:
        return None
    if _is_flags(left):
        satisfied = wanted == _SYN if op in ("==", "!=") else bool(wanted & _SYN)
    elif isinstance(left, dict) and isinstance(left.get("&"), list) and len(left["&"]) == 2:
        flags, mask = left["&"]
        mask_flags = _flags(mask)
        if not _is_flags(flags) or mask_flags is None:
            return None
        satisfied = (_SYN & mask_flags) == wanted
    else:
        return None
    return Match(nf.SYN, (), negate=satisfied == (op == "!="))


def _left_field(left: Any) -> tuple[str, list[Match], str]:
    """(field, implied conditions, readable name) of a comparison's left-hand side."""
    if not isinstance(left, dict):
        return nf.OTHER, [], "?"
    if isinstance(left.get("payload"), dict):
        proto, field = str(left["payload"].get("protocol")), str(left["payload"].get("field"))
        name = f"{proto} {field}"
        implied = (
            [Match(nf.L4PROTO, (_L4_NAME.get(proto, proto),))] if proto in L4_PROTOCOLS else []
        )
        if proto in ("ip", "ip6"):
            implied = [Match(nf.NFPROTO, (proto,))]
            if field in _ADDR_FIELDS:
                return _ADDR_FIELDS[field], implied, name
            if field in ("protocol", "nexthdr"):
                return nf.L4PROTO, implied, name
        if field in _PORT_FIELDS and (proto == "th" or proto in L4_PROTOCOLS):
            return _PORT_FIELDS[field], implied, name
        return nf.OTHER, implied, name
    if isinstance(left.get("meta"), dict):
        key = str(left["meta"].get("key"))
        return _META.get(key, nf.OTHER), [], f"meta {key}"
    if isinstance(left.get("ct"), dict):
        key = str(left["ct"].get("key"))
        return (nf.CT_STATE if key == "state" else nf.OTHER), [], f"ct {key}"
    return nf.OTHER, [], next(iter(left), "?")


def _port_values(op: str, values: tuple[str, ...]) -> tuple[str, ...] | None:
    if op in ("==", "!=", "in"):
        return values
    if len(values) != 1 or not values[0].isdigit():
        return None
    n = int(values[0])
    spans = {"<": (0, n - 1), "<=": (0, n), ">": (n + 1, 65535), ">=": (n, 65535)}
    if op not in spans:
        return None
    return (f"{spans[op][0]}-{spans[op][1]}",)


def _comparison(m: Mapping[str, Any], scope: _Scope) -> list[Match]:
    op, left, right = str(m.get("op", "==")), m.get("left"), m.get("right")
    syn = _syn_test(op, left, right)
    if syn is not None:
        return [syn]
    field, implied, name = _left_field(left)
    values = _values(right)
    if name == "meta pkttype" and values:
        # the probe is a unicast packet to this host: "host" matches it, the others do not
        return [Match(nf.UNICAST, (), negate=("host" in values) == (op == "!="))]
    if field == nf.OTHER or values is None:
        return [*implied, Match(nf.OTHER, (f"{name} {op} {json.dumps(right)[:60]}",))]
    if len(values) == 1 and values[0].startswith("@") and field in (nf.DPORT, nf.SPORT, nf.L4PROTO):
        elements = scope.set_elements(values[0][1:])
        if elements is None:
            return [*implied, Match(nf.OTHER, (f"{name} {values[0]} (set not found)",))]
        values = elements
    if field in (nf.DPORT, nf.SPORT):
        ports = _port_values(op, values)
        if ports is None:
            return [*implied, Match(nf.OTHER, (f"{name} {op} {values}",))]
        values = ports
    elif op not in ("==", "!=", "in"):
        return [*implied, Match(nf.OTHER, (f"{name} {op} {values}",))]
    return [*implied, Match(field, values, negate=op == "!=")]


def _fib_local(m: Mapping[str, Any]) -> Match | None:
    fib = m.get("left", {}).get("fib") if isinstance(m.get("left"), dict) else None
    if not isinstance(fib, dict) or fib.get("result") != "type" or fib.get("flags") != ["daddr"]:
        return None
    values = _values(m.get("right"))
    if values is None or values != ("local",):
        return None
    return Match(nf.LOCAL, (), negate=m.get("op") == "!=")


def _verdict(key: str, value: Any) -> str | None:
    if key in _VERDICTS:
        return _VERDICTS[key]
    if key == "continue":
        return "continue"
    if key in ("jump", "goto") and isinstance(value, dict):
        return f"{key}:{value.get('target')}"
    return None


def _rule(v: Mapping[str, Any], scope: _Scope) -> FwRule:
    matches: list[Match] = []
    verdict, helper = "continue", None
    vmap_field: str | None = None
    vmap: tuple[tuple[str, str], ...] = ()
    exprs = v.get("expr")
    for expr in exprs if isinstance(exprs, list) else []:
        if not isinstance(expr, dict) or len(expr) != 1:
            matches.append(Match(nf.OTHER, ("malformed expression",)))
            continue
        ((key, value),) = expr.items()
        if key == "match" and isinstance(value, dict):
            fib = _fib_local(value)
            matches += [fib] if fib is not None else _comparison(value, scope)
        elif (decided := _verdict(key, value)) is not None:
            verdict = decided
        elif key == "vmap" and isinstance(value, dict):
            vmap_field, vmap, implied = _vmap(value, scope)
            matches += implied
            verdict = "vmap" if vmap_field else "unknown:vmap"
        elif key in ("limit", "ct count") and isinstance(value, dict):
            matches.append(Match(nf.UNDER_LIMIT, (), negate=bool(value.get("inv"))))
        elif key == "ct helper":
            helper = scope.helper_type(str(value))
        elif key == "xt" and isinstance(value, dict):
            if value.get("type") == "target":
                verdict = f"unknown:xt {value.get('name')}"
            else:
                matches.append(Match(nf.OTHER, (f"xt {value.get('name')}",)))
        elif key == "queue":
            verdict = "unknown:queue"
        elif key not in _PASSIVE:
            matches.append(Match(nf.OTHER, (key,)))
    return FwRule(
        matches=tuple(matches),
        verdict=verdict,
        text=describe(matches, verdict, vmap_field, vmap, helper),
        position=f"handle {v.get('handle', '?')}",
        vmap_field=vmap_field,
        vmap=vmap,
        helper=helper,
    )


def _vmap(
    value: Mapping[str, Any], scope: _Scope
) -> tuple[str | None, tuple[tuple[str, str], ...], list[Match]]:
    field, implied, _ = _left_field(value.get("key"))
    data = value.get("data")
    entries = data.get("set") if isinstance(data, dict) else None
    if field == nf.OTHER or not isinstance(entries, list):
        return None, (), implied
    pairs: list[tuple[str, str]] = []
    for entry in entries:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], dict)):
            return None, (), implied
        keys = _values(entry[0])
        verdicts = [_verdict(k, v) for k, v in entry[1].items()]
        if keys is None or len(verdicts) != 1 or verdicts[0] is None:
            return None, (), implied
        pairs += [(k, verdicts[0]) for k in keys]
    del scope  # vmap keys are literal here; a named map would be "unknown:vmap"
    return field, tuple(pairs), implied


def describe(
    matches: Iterable[Match],
    verdict: str,
    vmap_field: str | None = None,
    vmap: tuple[tuple[str, str], ...] = (),
    helper: str | None = None,
) -> str:
    """A short readable rendering of a normalised rule (for evidence lines)."""
    parts: list[str] = []
    for m in matches:
        if m.field in (nf.SYN, nf.LOCAL, nf.UNICAST, nf.UNDER_LIMIT):
            parts.append(("not " if m.negate else "") + m.field.replace("_", " "))
            continue
        shown = ",".join(m.values[:6]) + ("…" if len(m.values) > 6 else "")
        shown = f"{{{shown}}}" if len(m.values) > 1 else shown
        parts.append(m.field + (" != " if m.negate else " ") + shown)
    if vmap_field:
        parts.append(f"{vmap_field} vmap {{" + ", ".join(f"{k}: {v}" for k, v in vmap) + "}")
    elif verdict != "continue":
        parts.append(verdict.replace(":", " "))
    if helper:
        parts.append(f"ct helper {helper}")
    return " ".join(parts) or "(empty rule)"

"""The host firewall, read-only: ``nft -j list ruleset`` and ``iptables-save``, normalized.

Seed 004 §目标服务器内部配置: "目标服务器内部防火墙、安全软件等安全策略…禁 ping / 禁止了对部分
端口的访问". Both dumps become one model (:mod:`hostmedic.facts.network` ``Firewall*``) that
:mod:`hostmedic.analysis.firewall` evaluates for a packet ("TCP to port 80 from anywhere").
Only what decides the fate of packets *to* this machine is kept: filter chains on the
prerouting and input hooks and the regular chains they can jump to.

Which dump describes which rules: nftables shows everything in the kernel's nf_tables,
including the tables iptables-nft manages, but it shows iptables extensions (conntrack,
multiport, REJECT…) as opaque ``xt`` statements. So with the nf_tables backend the
iptables-managed tables are read from ``iptables-save`` (exact) and skipped in the nft
dump; with the legacy backend the two are separate rule sets and both are read. Reading
needs CAP_NET_ADMIN; nothing is ever changed (no ``-F``, no ``-A``, no ``nft add``).
This parser is meant to be the shared one (the FTP checks evaluate rules with it too).
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import shutil
import subprocess
from typing import Any

from hostmedic.errors import FactUnavailable, ParseError
from hostmedic.facts.network import FirewallChain, FirewallFacts, FirewallMatch, FirewallRule

MAX_RULES = 3000  # an evidence file must stay small; a bigger ruleset is cut (and says so)
HOOKS = ("prerouting", "input")
_FAMILIES = ("ip", "ip6", "inet")
_XT_TABLES = {"filter": {"INPUT": "input"}, "raw": {"PREROUTING": "prerouting"}}
_VERDICTS = ("accept", "drop", "reject", "return", "jump", "goto")
_PAYLOAD_FIELDS = {"dport": "dport", "sport": "sport", "saddr": "saddr", "daddr": "daddr"}
_META_FIELDS = {"l4proto": "l4proto", "nfproto": "nfproto", "iifname": "iif", "oifname": "oif"}
_L4 = {"tcp", "udp", "icmp", "icmpv6", "sctp", "udplite", "dccp"}


# --- nftables JSON -------------------------------------------------------------------------


def _values(right: Any, sets: dict[str, list[str]]) -> tuple[str, ...] | None:
    """Right-hand side of a match → alternatives as text; None when not understood."""
    if isinstance(right, bool):
        return None
    if isinstance(right, str | int | float):
        if isinstance(right, str) and right.startswith("@"):
            return tuple(sets[right[1:]]) if right[1:] in sets else None
        return (str(right),)
    if isinstance(right, list):  # ct state flags: ["established", "related"]
        return tuple(str(v) for v in right if isinstance(v, str | int))
    if isinstance(right, dict):
        if "set" in right and isinstance(right["set"], list):
            out: list[str] = []
            for item in right["set"]:
                got = _values(item, sets)
                if got is None:
                    return None
                out += got
            return tuple(out)
        if "range" in right and isinstance(right["range"], list) and len(right["range"]) == 2:
            return (f"{right['range'][0]}-{right['range'][1]}",)
        if "elem" in right and isinstance(right["elem"], dict):  # an element with options
            return _values(right["elem"].get("val"), sets)
        if "prefix" in right and isinstance(right["prefix"], dict):
            return (f"{right['prefix'].get('addr')}/{right['prefix'].get('len')}",)
    return None


def _port_range(op: str, value: str) -> tuple[str, str] | None:
    """``< 1024`` and friends → an equality on a port range."""
    try:
        n = int(value)
    except ValueError:
        return None
    ranges = {"<": (0, n - 1), "<=": (0, n), ">": (n + 1, 65535), ">=": (n, 65535)}
    if op not in ranges:
        return None
    low, high = ranges[op]
    return "==", f"{low}-{high}"


def _nft_match(match: dict[str, Any], sets: dict[str, list[str]]) -> list[FirewallMatch]:
    left, op = match.get("left"), str(match.get("op", "=="))
    op = "==" if op == "in" else op
    values = _values(match.get("right"), sets)
    other = [FirewallMatch("other", "==", (json.dumps(match, sort_keys=True)[:200],))]
    if not isinstance(left, dict) or values is None:
        return other
    out: list[FirewallMatch] = []
    if "payload" in left and isinstance(left["payload"], dict):
        proto, field = str(left["payload"].get("protocol")), str(left["payload"].get("field"))
        if proto in ("icmp", "icmpv6") and field == "type":
            return [
                FirewallMatch("l4proto", "==", (proto,)),
                FirewallMatch("icmp_type", op, values),
            ]
        if proto in ("ip", "ip6") and field in ("protocol", "nexthdr"):
            return [FirewallMatch("l4proto", op, values)]
        if field not in _PAYLOAD_FIELDS:
            return other
        if proto in _L4:  # "tcp dport 22" also says "the packet is TCP"
            out.append(FirewallMatch("l4proto", "==", (proto,)))
        field = _PAYLOAD_FIELDS[field]
    elif "meta" in left and isinstance(left["meta"], dict):
        field = _META_FIELDS.get(str(left["meta"].get("key")), "")
    elif "ct" in left and isinstance(left["ct"], dict) and left["ct"].get("key") == "state":
        field = "ct_state"
    else:
        return other
    if not field:
        return other
    if op not in ("==", "!="):
        converted = _port_range(op, values[0]) if field in ("dport", "sport") else None
        if converted is None:
            return other
        op, values = converted[0], (converted[1],)
    return [*out, FirewallMatch(field, op, values)]


def _nft_rule(expr: list[Any], sets: dict[str, list[str]]) -> FirewallRule:
    matches: list[FirewallMatch] = []
    verdict, target = "continue", None
    for statement in expr:
        if not isinstance(statement, dict) or len(statement) != 1:
            raise ParseError(f"bad nft statement {statement!r}")
        ((kind, body),) = statement.items()
        if kind == "match" and isinstance(body, dict):
            matches += _nft_match(body, sets)
        elif kind in _VERDICTS:
            verdict = kind
            if kind in ("jump", "goto") and isinstance(body, dict):
                target = str(body.get("target"))
        elif kind == "xt":
            # an iptables extension nft cannot show: it may or may not match
            matches.append(FirewallMatch("other", "==", (f"xt {body.get('name')}",)))
            if (
                isinstance(body, dict)
                and body.get("type") == "target"
                and body.get("name") == "REJECT"
            ):
                verdict = "reject"
    return FirewallRule(tuple(matches), verdict, rule_text(matches, verdict, target), target)


def rule_text(matches: list[FirewallMatch], verdict: str, target: str | None) -> str:
    """A rule as one readable line: ``l4proto tcp dport 80,8080 accept``."""
    parts = [
        f"{m.field} {'' if m.op == '==' else m.op + ' '}{','.join(m.values)}"
        for m in matches
        if m.field != "other"
    ]
    parts += [m.values[0] for m in matches if m.field == "other" and m.values]
    return " ".join([*parts, verdict + (f" {target}" if target else "")])


def parse_nft_ruleset(
    text: str, skip_tables: frozenset[tuple[str, str]] = frozenset()
) -> tuple[list[FirewallChain], int]:
    """Chains that filter packets to this host, from ``nft -j list ruleset``.

    ``skip_tables`` are (family, table) pairs read elsewhere (iptables-nft). Returns the
    chains and the number of rules that could not be parsed (left out).
    """
    try:
        document = json.loads(text)
        items = document["nftables"]
        if not isinstance(items, list):
            raise TypeError
    except (ValueError, KeyError, TypeError) as exc:
        raise ParseError(f"not nft JSON: {exc}") from exc
    sets: dict[tuple[str, str], dict[str, list[str]]] = {}
    chains: dict[tuple[str, str, str], dict[str, Any]] = {}
    rules: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("set"), dict):
            s = item["set"]
            values = _values({"set": s.get("elem", [])}, {}) or ()
            table_sets = sets.setdefault((str(s.get("family")), str(s.get("table"))), {})
            table_sets[str(s.get("name"))] = list(values)
        elif isinstance(item.get("chain"), dict):
            c = item["chain"]
            chains[(str(c.get("family")), str(c.get("table")), str(c.get("name")))] = c
        elif isinstance(item.get("rule"), dict):
            rules.append(item["rule"])
    by_chain: dict[tuple[str, str, str], list[FirewallRule]] = {key: [] for key in chains}
    skipped = 0
    for r in rules:
        key = (str(r.get("family")), str(r.get("table")), str(r.get("chain")))
        if key not in by_chain:
            continue
        try:
            by_chain[key].append(_nft_rule(list(r.get("expr") or []), sets.get(key[:2], {})))
        except (ParseError, TypeError, ValueError):
            skipped += 1
    out = []
    for key, c in chains.items():
        if key[0] not in _FAMILIES or key[:2] in skip_tables:
            continue
        hook = c.get("hook")
        if hook is not None and (hook not in HOOKS or c.get("type") != "filter"):
            continue
        prio = c.get("prio")
        priority = int(prio) if isinstance(prio, int) else None
        chain_rules = tuple(by_chain[key])
        out.append(FirewallChain("nftables", *key, chain_rules, hook, priority, c.get("policy")))
    return out, skipped


# --- iptables-save text --------------------------------------------------------------------

# Options that take one value and test the packet → normalized field.
_IPT_FIELDS = {
    option: field
    for field, options in {
        "l4proto": ("-p", "--protocol"),
        "saddr": ("-s", "--source", "--src"),
        "daddr": ("-d", "--destination", "--dst"),
        "iif": ("-i", "--in-interface"),
        "oif": ("-o", "--out-interface"),
        "dport": ("--dport", "--destination-port", "--dports", "--destination-ports"),
        "sport": ("--sport", "--source-port", "--sports", "--source-ports"),
        "icmp_type": ("--icmp-type", "--icmpv6-type"),
        "ct_state": ("--ctstate", "--state"),
    }.items()
    for option in options
}
_IPT_NO_TEST = {"-m", "--match", "--comment"}  # take a value, test nothing


def _ipt_values(field: str, raw: str) -> tuple[str, ...]:
    values = raw.split(",")
    if field in ("dport", "sport"):
        values = [v.replace(":", "-") for v in values]
    elif field == "ct_state":
        values = [v.lower() for v in values]
    elif field == "l4proto":
        values = ["icmpv6" if v in ("ipv6-icmp", "icmp6") else v.lower() for v in values]
    return tuple(values)


def _ipt_rule(tokens: list[str]) -> FirewallRule:
    matches: list[FirewallMatch] = []
    verdict, target, negate, i = "continue", None, False, 0
    while i < len(tokens):
        token = tokens[i]
        if token == "!":
            negate, i = True, i + 1
            continue
        value = tokens[i + 1] if i + 1 < len(tokens) else ""
        if token in ("-j", "--jump", "-g", "--goto"):
            name = value.lower()
            if name in ("accept", "drop", "reject", "return"):
                verdict = name
            elif name in ("log", "mark", "connmark", "notrack", "ct", "nflog", "trace"):
                verdict = "continue"  # non-terminating targets
            else:
                verdict, target = ("goto" if token in ("-g", "--goto") else "jump"), value
            break  # the rest are the target's own options
        if token in _IPT_FIELDS:
            field = _IPT_FIELDS[token]
            matches.append(
                FirewallMatch(field, "!=" if negate else "==", _ipt_values(field, value))
            )
            i += 2
        elif token in _IPT_NO_TEST:
            i += 2
        elif token.startswith("-"):
            # an extension test we do not model: it may or may not match
            has_value = bool(value) and not value.startswith("-") and value != "!"
            matches.append(
                FirewallMatch("other", "==", (f"{token} {value if has_value else ''}".strip(),))
            )
            i += 2 if has_value else 1
        else:
            i += 1
        negate = False
    return FirewallRule(tuple(matches), verdict, "", target)


def parse_iptables_save(text: str, source: str = "iptables") -> tuple[list[FirewallChain], int]:
    """Chains that filter packets to this host, from ``iptables-save``/``ip6tables-save``.

    Only the ``filter`` (INPUT) and ``raw`` (PREROUTING) tables matter here; user chains of
    those tables are kept as jump targets. Returns the chains and the unparsable rule count.
    """
    family = "ip6" if source == "ip6tables" else "ip"
    policies: dict[tuple[str, str], str | None] = {}
    rules: dict[tuple[str, str], list[FirewallRule]] = {}
    table, skipped = "", 0
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("*"):
            table = line[1:]
        elif line.startswith(":") and table in _XT_TABLES:
            name, _, rest = line[1:].partition(" ")
            policy = rest.split(" ", 1)[0].lower()
            policies[(table, name)] = policy if policy in ("accept", "drop") else None
            rules.setdefault((table, name), [])
        elif line.startswith("-A ") and table in _XT_TABLES:
            try:
                tokens = shlex.split(line)
            except ValueError:
                skipped += 1
                continue
            if len(tokens) < 2 or (table, tokens[1]) not in rules:
                skipped += 1
                continue
            parsed = _ipt_rule(tokens[2:])
            rules[(table, tokens[1])].append(
                FirewallRule(parsed.matches, parsed.verdict, line[3:][:300], parsed.target)
            )
    chains = []
    for (tbl, name), chain_rules in rules.items():
        hook = _XT_TABLES[tbl].get(name)
        if hook is None and policies.get((tbl, name)) is not None:
            continue  # a built-in chain of another hook (OUTPUT, FORWARD)
        prio = {"raw": -300, "filter": 0}[tbl] if hook else None
        chains.append(
            FirewallChain(
                source,
                family,
                tbl,
                name,
                tuple(chain_rules),
                hook,
                prio,
                policies.get((tbl, name)) if hook else None,
            )
        )
    return chains, skipped


# --- reading -------------------------------------------------------------------------------


def _run(argv: list[str]) -> str:
    """Run a read-only dump command; FactUnavailable when it cannot."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FactUnavailable(f"{argv[0]}: {exc}", key="reason.firewall_unreadable") from exc
    if done.returncode != 0:
        detail = (done.stderr.strip() or f"exit {done.returncode}").splitlines()[0]
        if "ermission" in detail or "not permitted" in detail:
            raise FactUnavailable(detail, key="reason.firewall_needs_root")
        raise FactUnavailable(f"{' '.join(argv)}: {detail}", key="reason.firewall_unreadable")
    return done.stdout


def iptables_backend(version_text: str) -> str | None:
    """``nf_tables`` or ``legacy`` from ``iptables -V`` ("iptables v1.8.9 (nf_tables)")."""
    for backend in ("nf_tables", "legacy"):
        if f"({backend})" in version_text:
            return backend
    return "legacy" if version_text.startswith("iptables v1.") else None


def combine(nft_text: str | None, iptables: dict[str, str], backend: str | None) -> FirewallFacts:
    """Build the firewall facts from the dumps read (pure: the unit tests' entry point).

    ``iptables`` maps ``iptables`` / ``ip6tables`` to their ``-save`` output.
    """
    chains: list[FirewallChain] = []
    skipped, sources, xt_tables = 0, [], set()
    for source, text in iptables.items():
        found, bad = parse_iptables_save(text, source)
        chains += found
        skipped += bad
        sources.append(f"{source}-save")
        xt_tables |= {(c.family, c.table) for c in found}
    if nft_text is not None:
        # with the nf_tables backend, iptables' own tables are in the nft dump too
        skip = frozenset(xt_tables) if backend == "nf_tables" else frozenset()
        found, bad = parse_nft_ruleset(nft_text, skip)
        chains = found + chains
        skipped += bad
        sources.insert(0, "nft -j list ruleset")
    total, kept, truncated = 0, [], False
    for chain in chains:
        room = MAX_RULES - total
        if len(chain.rules) > room:
            chain, truncated = dataclasses.replace(chain, rules=chain.rules[: max(room, 0)]), True
        total += len(chain.rules)
        kept.append(chain)
    return FirewallFacts(tuple(kept), tuple(sources), backend, skipped, truncated)


def read_firewall() -> FirewallFacts:
    """Dump and normalize the live firewall (needs root). FactUnavailable when no tool
    can be run at all; a tool that is missing is simply not a source."""
    nft_text = _run(["nft", "-j", "list", "ruleset"]) if shutil.which("nft") else None
    backend = None
    dumps: dict[str, str] = {}
    if shutil.which("iptables"):
        backend = iptables_backend(_run(["iptables", "-V"]))
        for source in ("iptables", "ip6tables"):
            if shutil.which(f"{source}-save"):
                dumps[source] = _run([f"{source}-save"])
    if nft_text is None and not dumps:
        raise FactUnavailable(
            "neither nft nor iptables-save is installed", key="reason.no_firewall_tools"
        )
    try:
        return combine(nft_text, dumps, backend)
    except ParseError as exc:
        raise FactUnavailable(str(exc), key="reason.firewall_unreadable") from exc

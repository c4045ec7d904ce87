"""Save and load fact bundles as JSON: the recorded facts that scenario tests replay and
that travel between machines as evidence files. Versioned; loading validates types.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from hostmedic.errors import ParseError

BUNDLE_SCHEMA = "hostmedic.facts/1"


def to_jsonable(value: Any) -> Any:
    """Dataclasses → dicts, tuples → lists, recursively."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, where)
            except ParseError:
                continue
        raise ParseError(f"{where}: {value!r} does not fit {tp}")
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, list):
            raise ParseError(f"{where}: expected a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ParseError(f"{where}: expected {len(args)} items")
        return tuple(
            _convert(a, v, f"{where}[{i}]")
            for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ParseError(f"{where}: expected an object")
        return dict(value)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return from_jsonable(tp, value, where)
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp in (str, bool) and isinstance(value, tp):
        return value
    raise ParseError(f"{where}: {value!r} is not a {getattr(tp, '__name__', tp)}")


T = typing.TypeVar("T")


def from_jsonable(cls: type[T], data: Any, where: str = "$") -> T:
    """Rebuild a dataclass from :func:`to_jsonable` output; ParseError on any mismatch."""
    if not isinstance(data, dict):
        raise ParseError(f"{where}: expected an object for {cls.__name__}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name], f"{where}.{f.name}")
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ParseError(f"{where}: {exc}") from exc


def dump_bundle(facts: dict[str, Any]) -> dict[str, Any]:
    """A fact bundle document: every collected fact, or why it could not be collected."""
    from hostmedic.errors import FactUnavailable

    out: dict[str, Any] = {}
    for name, value in facts.items():
        if isinstance(value, FactUnavailable):
            out[name] = {"unavailable": {"key": value.key, "detail": str(value)}}
        elif dataclasses.is_dataclass(value):
            out[name] = {"value": to_jsonable(value)}
    return {"schema": BUNDLE_SCHEMA, "facts": out}


def _netfilter_rule(rule: Any) -> dict[str, Any]:
    verdict, _, target = str(rule.get("verdict", "continue")).partition(":")
    matches = [
        {
            "field": m.get("field"),
            "op": "!=" if m.get("negate") else "==",
            "values": m.get("values"),
        }
        for m in rule.get("matches") or []
    ]
    return {**rule, "matches": matches, "verdict": verdict, "target": target or None}


def _upgrade_netfilter(value: Any) -> Any:
    """A ``netfilter`` fact (``Ruleset``, bundles saved before the FTP checks moved to the
    shared firewall model) as the ``firewall`` fact (``FirewallFacts``) it became."""
    if not isinstance(value, dict):
        raise ParseError("$.netfilter: expected an object")
    chains = []
    for chain in value.get("chains") or []:
        if not isinstance(chain, dict):
            raise ParseError("$.netfilter.chains: expected objects")
        rules = [_netfilter_rule(r) for r in chain.get("rules") or [] if isinstance(r, dict)]
        chains.append({**{k: v for k, v in chain.items() if k != "backend"},
                       "source": chain.get("backend"), "rules": rules})  # fmt: skip
    return {
        "chains": chains,
        "sources": value.get("sources") or [],
        "sets": value.get("sets") or [],
        "notes": value.get("skipped") or [],
        "read_at": value.get("read_at", 0.0),
    }


# Facts that were renamed: old name -> (new name, converter of the saved value), and the
# skip reasons they used then (``reason.`` keys, without the prefix: no longer in catalogs).
_RENAMED = {"netfilter": ("firewall", _upgrade_netfilter)}
_RENAMED_REASONS = {
    "netfilter_needs_root": "firewall_needs_root",
    "netfilter_failed": "firewall_unreadable",
    "no_netfilter_tools": "no_firewall_tools",
}


def _renamed_reason(key: str) -> str:
    prefix, _, name = key.partition(".")
    return f"{prefix}.{_RENAMED_REASONS[name]}" if name in _RENAMED_REASONS else key


def load_bundle(document: Any, types_by_name: dict[str, type]) -> dict[str, Any]:
    """Rebuild facts from :func:`dump_bundle` output; unknown names are ignored, renamed
    ones (:data:`_RENAMED`) are converted."""
    from hostmedic.errors import FactUnavailable

    if not isinstance(document, dict) or document.get("schema") != BUNDLE_SCHEMA:
        raise ParseError(f"not a {BUNDLE_SCHEMA} document")
    facts: dict[str, Any] = {}
    for name, entry in (document.get("facts") or {}).items():
        if name in _RENAMED and _RENAMED[name][0] in types_by_name and isinstance(entry, dict):
            new_name, upgrade = _RENAMED[name]
            if "value" in entry:
                entry = {"value": upgrade(entry["value"])}
            name = new_name
        if name not in types_by_name or not isinstance(entry, dict):
            continue
        if "unavailable" in entry:
            why = entry["unavailable"]
            key = str(why.get("key", "reason.generic"))
            facts[name] = FactUnavailable(
                str(why.get("detail", "")),
                key=_renamed_reason(key),
            )
        else:
            facts[name] = from_jsonable(types_by_name[name], entry.get("value"), f"$.{name}")
    return facts

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

"""One ``[section]`` of the config file → that section's settings dataclass.

Each area keeps its thresholds in a frozen dataclass whose defaults say the type of every
key; this module checks the table against it, so a typo or a wrong type is a usage error
naming the key instead of a silently kept default.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from hostmedic.errors import UsageError

T = TypeVar("T")


def _coerce(default: Any, value: Any) -> Any:
    """``value`` as the type of ``default``; TypeError when it does not fit."""
    if isinstance(default, tuple):
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
    elif isinstance(default, bool) or isinstance(value, bool):
        if isinstance(default, bool) and isinstance(value, bool):
            return value
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
    elif isinstance(value, int | float) and value >= 0:
        if isinstance(default, float):
            return float(value)
        if isinstance(value, int):
            return value
    raise TypeError(value)


def build_section(
    cls: type[T], table: object, section: str, not_settable: frozenset[str] = frozenset()
) -> T:
    """``table`` (the parsed ``[section]``) applied over ``cls()``'s defaults.

    ``not_settable`` names fields that come from the command line, not the file.
    """
    if not isinstance(table, dict):
        raise UsageError(
            "error.config_bad_setting", section=section, name=section, value=repr(table)
        )
    defaults = cls()
    settable = {f.name for f in dataclasses.fields(defaults)} - not_settable  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in settable:
            raise UsageError("error.config_unknown_setting", section=section, name=key)
        try:
            values[key] = _coerce(getattr(defaults, key), value)
        except TypeError as exc:
            raise UsageError(
                "error.config_bad_setting", section=section, name=key, value=repr(value)
            ) from exc
    return dataclasses.replace(defaults, **values)  # type: ignore[type-var]

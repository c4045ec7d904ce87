"""Operator settings that rules need: link capacity, home country, how many rows matter.

They come from command-line options, then ``/etc/hostmedic/config.toml`` (or ``--config``),
then defaults. The cloud's bandwidth cap is not visible from inside the server, which is
why ``--cap`` exists.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from hostmedic.errors import UsageError
from hostmedic.settings_health import HealthSettings, build_health_settings
from hostmedic.settings_weblogs import WeblogSettings, build_weblog_settings

DEFAULT_CONFIG = "/etc/hostmedic/config.toml"
_UNITS = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}


@dataclass(frozen=True, slots=True)
class Settings:
    cap_bits_per_s: float | None = None
    home_country: str | None = None
    top_n: int = 5
    min_share: float = 0.10
    geo_overrides: dict[str, str] = field(default_factory=dict)
    health: HealthSettings = field(default_factory=HealthSettings)
    weblogs: WeblogSettings = field(default_factory=WeblogSettings)


def parse_bitrate(text: str) -> float:
    """``5Mbit``, ``100mbps``, ``1G``, ``2.5gbit/s``, ``800k`` → bits per second (SI units,
    as cloud consoles sell bandwidth); ``MB``/``MiB`` style byte units are refused as
    ambiguous."""
    match = re.fullmatch(
        r"\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]?)(bit|bits|bps|b)?(/s)?\s*", text, re.IGNORECASE
    )
    if not match or (match.group(3) == "B"):
        raise UsageError("error.bad_bitrate", value=text)
    value = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if value <= 0:
        raise UsageError("error.bad_bitrate", value=text)
    return value


def load_config(path: str | None) -> dict[str, Any]:
    """Read the TOML config; a missing default file is fine, a missing explicit one is not."""
    target = path or DEFAULT_CONFIG
    try:
        with open(target, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError as exc:
        if path is None:
            return {}
        raise UsageError("error.config_missing", path=target) from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError("error.config_invalid", path=target, detail=str(exc)) from exc


def build_settings(
    config: dict[str, Any], *, cap: str | None, home_country: str | None
) -> Settings:
    """Merge options over the config file's ``[bandwidth]`` and ``[geo]`` tables."""
    bw = config.get("bandwidth", {})
    geo = config.get("geo", {})
    cap_text = cap or bw.get("cap")
    country = home_country or geo.get("home_country")
    if country is not None and (len(country) != 2 or not country.isalpha()):
        raise UsageError("error.bad_country", value=country)
    return Settings(
        cap_bits_per_s=parse_bitrate(str(cap_text)) if cap_text else None,
        home_country=country.upper() if country else None,
        top_n=int(bw.get("top_n", 5)),
        min_share=float(bw.get("min_share", 0.10)),
        geo_overrides=dict(geo.get("overrides", {})),
        health=build_health_settings(config.get("health", {})),
        weblogs=build_weblog_settings(config.get("weblogs", {})),
    )

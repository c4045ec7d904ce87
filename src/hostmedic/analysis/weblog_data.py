"""The shipped data of the web-log checks: crawler User-Agent patterns
(``data/crawlers.toml``) and file kinds by extension (``data/weblogs.toml``)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from hostmedic.analysis.weblog_scan import ASSET, DOWNLOAD, IMAGE, KIND_NAMES


@dataclass(frozen=True, slots=True)
class Crawler:
    name: str
    patterns: tuple[str, ...]
    verify_domains: tuple[str, ...]
    generic: bool


def _load(name: str) -> dict[str, Any]:
    return tomllib.loads(resources.files("hostmedic").joinpath(f"data/{name}").read_text("utf-8"))


@cache
def crawlers() -> tuple[Crawler, ...]:
    """Every known crawler, in matching order (the generic catch-all last)."""
    return tuple(
        Crawler(
            c["name"],
            tuple(p.lower() for p in c["patterns"]),
            tuple(c.get("verify_domains", ())),
            bool(c.get("generic", False)),
        )
        for c in _load("crawlers.toml")["crawler"]
    )


@cache
def extension_kinds() -> dict[str, str]:
    """Extension (lower case, no dot) → "download" / "image" / "asset"."""
    table = _load("weblogs.toml")
    return {ext.lower(): kind for kind in ("download", "image", "asset") for ext in table[kind]}


def scan_patterns() -> tuple[tuple[str, tuple[bytes, ...]], ...]:
    """Crawler patterns as the scanner wants them (lower-case bytes)."""
    return tuple((c.name, tuple(p.encode() for p in c.patterns)) for c in crawlers())


def scan_kinds() -> tuple[tuple[bytes, int], ...]:
    codes = {KIND_NAMES[DOWNLOAD]: DOWNLOAD, KIND_NAMES[IMAGE]: IMAGE, KIND_NAMES[ASSET]: ASSET}
    return tuple((ext.encode(), codes[kind]) for ext, kind in extension_kinds().items())

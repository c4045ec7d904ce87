"""Message catalogs: every user-facing string, in en, zh_CN, ja and ko.

Catalogs are TOML files under ``hostmedic/locales/<language>/``, one file per area
(``core.toml``, ``health.toml``…) so that areas grow without touching each other; they
merge into one catalog per language, and a key defined twice is an error. Nested tables
flatten to dotted keys (``finding.bandwidth.saturated.title``). Lookup happens on the
*template*, then the parameters are substituted, so translators see whole sentences. A
missing key falls back to English, then to the key itself — but the conformance test
fails on any gap.
"""

from __future__ import annotations

import os
import string
import tomllib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

LANGUAGES = ("en", "zh_CN", "ja", "ko")
DEFAULT_LANGUAGE = "en"


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for name, value in table.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, key + "."))
        else:
            flat[key] = str(value)
    return flat


@cache
def catalog(language: str) -> dict[str, str]:
    """Return the flattened catalog of one language (cached)."""
    merged: dict[str, str] = {}
    folder = resources.files("hostmedic").joinpath(f"locales/{language}")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        table = _flatten(tomllib.loads(entry.read_text("utf-8")))
        twice = sorted(set(table) & set(merged))
        if twice:
            raise ValueError(f"locales/{language}/{entry.name} redefines {', '.join(twice)}")
        merged.update(table)
    return merged


def resolve_language(explicit: str | None, environ: Mapping[str, str] | None = None) -> str:
    """Pick the language: ``--lang`` first, then LC_ALL, LC_MESSAGES, LANG; default English.

    Accepts the usual locale spellings (``zh_CN.UTF-8``, ``ja_JP``, ``ko``, ``zh``).
    """
    env = os.environ if environ is None else environ
    candidates = [explicit] if explicit else [env.get(v) for v in ("LC_ALL", "LC_MESSAGES", "LANG")]
    for raw in candidates:
        if not raw:
            continue
        tag = raw.split(".")[0].split("@")[0].replace("-", "_").lower()
        if tag.startswith("zh"):
            return "zh_CN"
        for lang in ("ja", "ko", "en"):
            if tag.startswith(lang):
                return lang
        if tag in ("c", "posix"):
            return DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


class _Lenient(string.Formatter):
    """Formatter that leaves unknown placeholders visible instead of raising."""

    def get_value(self, key: int | str, args: Any, kwargs: Mapping[str, Any]) -> Any:
        if isinstance(key, str) and key not in kwargs:
            return "{" + key + "}"
        return super().get_value(key, args, kwargs)


_FORMATTER = _Lenient()


class Translator:
    """Looks up message templates in one language and fills in parameters."""

    def __init__(self, language: str) -> None:
        self.language = language if language in LANGUAGES else DEFAULT_LANGUAGE
        self._messages = catalog(self.language)
        self._fallback = catalog(DEFAULT_LANGUAGE)

    def __call__(self, key: str, /, **params: Any) -> str:
        template = self._messages.get(key) or self._fallback.get(key) or key
        return _FORMATTER.vformat(template, (), params)

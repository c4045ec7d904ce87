"""Judge a startup item or login hook by what it runs (pure; the patterns are data in
data/security_signatures.toml, the path signs are the bandwidth verdict's, extended).

Seed 004 §恶意程序 Linux 3 and §排查病毒木马: startup items "with abnormal names", the
trojan files, and the download-and-run lines that bring them back after a reboot.
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from importlib import resources
from typing import Any

from hostmedic.analysis.verdict import Clue, path_clues, signatures
from hostmedic.facts.security import StartupEntry


@cache
def security_signatures() -> dict[str, Any]:
    """The shipped compromise-check data (text patterns, consoles, service probes)."""
    text = resources.files("hostmedic").joinpath("data/security_signatures.toml")
    return tomllib.loads(text.read_text("utf-8"))


@cache
def _patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple(
        (f"clue.{p['clue']}", re.compile(p["regex"], re.IGNORECASE))
        for p in security_signatures()["text"]
    )


def text_clues(text: str) -> list[Clue]:
    """Signs in a command line: download-and-run, base64 payloads, reverse shells, miners,
    preload hooks, immutable flags, and any mention of the seed's trojan paths."""
    clues = [
        Clue(key, (("line", text[:200]),)) for key, pattern in _patterns() if pattern.search(text)
    ]
    trojans = signatures()["suspicious"]["trojan_paths"]
    named = next((p for p in trojans if p.rstrip("/") in text), None)
    if named is not None:
        clues.append(Clue("clue.trojan_path", (("exe", named.rstrip("/")),)))
    return clues


def entry_clues(entry: StartupEntry) -> list[Clue]:
    """Every sign against one startup entry: its text, then where its program lives
    (a clue is given once even when both name it)."""
    clues = text_clues(entry.command)
    if entry.program:
        seen = {c.key for c in clues}
        clues += [c for c in path_clues(entry.program) if c.key not in seen]
    return clues


def unpackaged(entry: StartupEntry) -> bool:
    """An entry point whose program no installed package owns (the package database was
    asked, and the program is a file path, not a shell builtin)."""
    return (
        entry.entry_point
        and entry.package_checked
        and entry.program is not None
        and entry.program_package is None
    )

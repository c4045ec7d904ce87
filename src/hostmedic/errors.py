"""Typed errors shared by collectors, the engine and the CLI.

A collector that cannot produce its facts raises :class:`FactUnavailable`; the engine turns
it into a *skipped* check instead of a crash. The reason travels as a message-catalog key
(``reason.*``) with parameters so it reaches the operator in their language; the English
message stays on the exception for logs and tests.
"""

from __future__ import annotations

from typing import Any


class FactUnavailable(Exception):
    """A fact could not be collected; ``key``/``params`` say why in a translatable form."""

    def __init__(self, message: str, *, key: str = "reason.generic", **params: Any) -> None:
        super().__init__(message)
        self.key = key
        self.params = {"detail": message, **params}


class ParseError(ValueError):
    """Recorded or kernel-provided data did not have the expected shape."""


class UsageError(Exception):
    """The operator asked for something that cannot work (bad option value, bad file)."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params

"""Make attacker-controlled text safe to print: process names, paths and command lines
can contain escape sequences that would move the cursor, recolour or clear an operator's
terminal, or bidi overrides that make ``/tmp/evil`` read as something else.

Every control character (C0, DEL, C1), bidi override/isolate and other invisible
formatting character becomes a visible escape like ``\\x1b`` or ``\\u202e``.
"""

from __future__ import annotations

import unicodedata

_BIDI_AND_INVISIBLE = {
    *range(0x200B, 0x2010),  # zero-width space/joiners, LRM, RLM
    *range(0x202A, 0x202F),  # LRE RLE PDF LRO RLO
    *range(0x2060, 0x2070),  # word joiner, invisible operators, isolates LRI RLI FSI PDI
    0xFEFF,
}


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def sanitize(text: object) -> str:
    """Return ``text`` with every unsafe character replaced by a visible escape."""
    s = str(text)
    if s.isprintable() and not any(ord(c) in _BIDI_AND_INVISIBLE for c in s):
        return s
    out = []
    for ch in s:
        code = ord(ch)
        unsafe = (
            code < 0x20
            or 0x7F <= code <= 0x9F
            or code in _BIDI_AND_INVISIBLE
            or unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
        )
        out.append(_escape(ch) if unsafe else ch)
    return "".join(out)

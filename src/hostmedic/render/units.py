"""Unambiguous units. Byte amounts use IEC binary prefixes (KiB, MiB: 2^10, 2^20) and
rates use SI bits per second (kbit/s, Mbit/s: 10^3, 10^6), the unit clouds sell bandwidth
in. iftop's "Mb" means 2^20 bits — a common misreading that these labels avoid.
"""

from __future__ import annotations


def human_bytes(n: float) -> str:
    """1536 → '1.5 KiB'."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_bits_per_s(bits: float) -> str:
    """2_500_000 → '2.50 Mbit/s'."""
    value = float(bits)
    for unit in ("bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"):
        if abs(value) < 1000 or unit == "Tbit/s":
            return f"{value:.0f} {unit}" if unit == "bit/s" else f"{value:.2f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def humanize_params(params: dict[str, object]) -> dict[str, object]:
    """Format parameters by the unit in their name (``*_bytes``, ``*_bits_per_s``);
    everything else is made terminal-safe by the caller."""
    out: dict[str, object] = {}
    for key, value in params.items():
        if isinstance(value, int | float) and key.endswith("_bits_per_s"):
            out[key] = human_bits_per_s(value)
        elif isinstance(value, int | float) and key.endswith("_bytes"):
            out[key] = human_bytes(value)
        else:
            out[key] = value
    return out

"""Rule: the link is not saturated.

Seeds 000–003 "Problems": bandwidth usage too high makes the server unreachable; seed 004
ping section: business peak (带宽峰值) causes latency and loss. The cloud's cap cannot be
seen from inside, so the capacity is ``--cap`` (or config), else the link speed.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.errors import FactUnavailable
from hostmedic.facts.bandwidth import BandwidthFacts
from hostmedic.model import Evidence, Finding, Severity, Status
from hostmedic.settings import Settings

WARNING_SHARE = 0.70
CRITICAL_SHARE = 0.90


@rule(
    "bandwidth.saturation",
    category="bandwidth",
    runbook_ref="seed 000-003 §Problems; seed 004 §ping 丢包 (业务高峰/带宽峰值)",
)
def saturation(bandwidth: BandwidthFacts, settings: Settings) -> Iterator[Finding]:
    """Every interface stays below 70 % of its capacity in both directions."""
    if not bandwidth.interfaces:
        raise FactUnavailable("no interface counters", key="reason.no_interfaces")
    if settings.cap_bits_per_s is None and not any(r.link_speed_mbit for r in bandwidth.interfaces):
        raise FactUnavailable("capacity unknown", key="reason.capacity_unknown")
    for row in bandwidth.interfaces:
        capacity = settings.cap_bits_per_s or (
            row.link_speed_mbit * 1e6 if row.link_speed_mbit else None
        )
        if capacity is None:
            continue
        duration = max(bandwidth.duration_s, 1e-9)
        peak_bits = 8 * max(row.rates.tx_peak_bytes_per_s, row.rates.rx_peak_bytes_per_s)
        mean_bits = 8 * max(row.traffic.tx_bytes, row.traffic.rx_bytes) / duration
        share = peak_bits / capacity
        if share < WARNING_SHARE:
            continue
        direction = (
            "out" if row.rates.tx_peak_bytes_per_s >= row.rates.rx_peak_bytes_per_s else "in"
        )
        yield Finding(
            rule_id="bandwidth.saturation",
            severity=Severity.CRITICAL if share >= CRITICAL_SHARE else Severity.WARNING,
            status=Status.FAILED,
            title_key=f"finding.bandwidth.saturation.{direction}.title",
            params={
                "interface": row.name,
                "direction": direction,
                "peak_bits_per_s": peak_bits,
                "capacity_bits_per_s": capacity,
                "mean_bits_per_s": mean_bits,
                "percent": round(100 * share),
            },
            evidence=(
                Evidence(
                    "/proc/net/dev",
                    f"{row.name} tx_bytes={row.traffic.tx_bytes} "
                    f"rx_bytes={row.traffic.rx_bytes} window_s={duration:.1f} "
                    f"capacity_bits_per_s={capacity:.0f}",
                    bandwidth.read_at,
                ),
            ),
            remedy_key="remedy.bandwidth.saturation",
        )

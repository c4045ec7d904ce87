"""Rule: hostmedic's own accounting explains the interface counters.

Not a runbook step but what the runbook needs to be trusted: bandwidth that no process
explains (other namespaces/containers, forwarded traffic, a source hostmedic could not
open for lack of privilege, ring overflow) must be said, not silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.bandwidth import BandwidthFacts
from hostmedic.model import Evidence, Finding, Severity, Status
from hostmedic.settings import Settings

UNATTRIBUTED_WARNING_SHARE = 0.05
MIN_BYTES = 1_000_000  # below ~1 MB in the window, a gap is noise, not a blind spot


@rule("bandwidth.coverage", category="bandwidth", runbook_ref="seed 000-003 step 3 (iftop totals)")
def coverage(bandwidth: BandwidthFacts, settings: Settings) -> Iterator[Finding]:
    """Nearly all interface traffic is attributed to a process or a known owner."""
    del settings
    total = sum(i.traffic.total_bytes for i in bandwidth.interfaces)
    gap = bandwidth.unattributed.total_bytes
    if total >= MIN_BYTES and gap / total >= UNATTRIBUTED_WARNING_SHARE:
        yield Finding(
            rule_id="bandwidth.coverage",
            severity=Severity.WARNING,
            status=Status.FAILED,
            title_key="finding.bandwidth.coverage.unattributed.title",
            params={
                "percent": round(100 * gap / total),
                "tx_bytes": bandwidth.unattributed.tx_bytes,
                "rx_bytes": bandwidth.unattributed.rx_bytes,
            },
            evidence=(
                Evidence(
                    "/proc/net/dev",
                    f"interfaces_total_bytes={total} unattributed_bytes={gap}",
                    bandwidth.read_at,
                ),
            ),
            remedy_key="remedy.bandwidth.coverage.unattributed",
        )
    for what_key, detail in bandwidth.not_counted:
        yield Finding(
            rule_id="bandwidth.coverage",
            severity=Severity.INFO,
            status=Status.FAILED,
            title_key="finding.bandwidth.coverage.not_counted.title",
            params={"what_key": what_key},
            evidence=(Evidence("hostmedic", detail, bandwidth.read_at),),
            remedy_key="remedy.bandwidth.coverage.not_counted",
        )
    if bandwidth.capture_drops:
        yield Finding(
            rule_id="bandwidth.coverage",
            severity=Severity.WARNING,
            status=Status.FAILED,
            title_key="finding.bandwidth.coverage.drops.title",
            params={"packets": bandwidth.capture_drops},
            remedy_key="remedy.bandwidth.coverage.drops",
        )

"""Rule: the remote addresses that carry most of the traffic are in the server's home country.

Seeds 000–003 closing advice: check where the destination IP is; if it is in another
country or region, the security risk is greater. Abroad raises the severity, and more so
when the process talking to it was judged suspicious.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.analysis.verdict import SUSPICIOUS, judge
from hostmedic.engine import rule
from hostmedic.errors import FactUnavailable
from hostmedic.facts.bandwidth import BandwidthFacts
from hostmedic.fix_commands import command_for
from hostmedic.model import Finding, Severity, Status
from hostmedic.rules.bandwidth.common import remote_evidence, significant
from hostmedic.settings import Settings


@rule(
    "bandwidth.top_talker_abroad",
    category="bandwidth",
    runbook_ref="seed 000-003 §IP location (abroad = greater risk)",
)
def top_talker_abroad(bandwidth: BandwidthFacts, settings: Settings) -> Iterator[Finding]:
    """The busiest remote addresses are in the server's home country."""
    if bandwidth.home_country is None:
        raise FactUnavailable("home country unknown", key="reason.home_country_unknown")
    suspicious_pids = {
        p.pid
        for p in bandwidth.processes
        if p.pid is not None and judge(p, bandwidth.duration_s).kind == SUSPICIOUS
    }
    for row in significant(bandwidth.remotes, settings):
        if not row.abroad:
            continue
        with_suspicious = bool(suspicious_pids.intersection(row.pids))
        yield Finding(
            rule_id="bandwidth.top_talker_abroad",
            severity=Severity.CRITICAL if with_suspicious else Severity.WARNING,
            status=Status.FAILED,
            title_key="finding.bandwidth.top_talker_abroad.title",
            params={
                "ip": row.ip,
                "country": row.country or "?",
                "home_country": bandwidth.home_country,
                "tx_bytes": row.traffic.tx_bytes,
                "rx_bytes": row.traffic.rx_bytes,
                "pids": ",".join(map(str, row.pids)) or "?",
                "fix": command_for("block-ip", row.ip),
            },
            evidence=(remote_evidence(row, bandwidth),),
            remedy_key="remedy.bandwidth.top_talker_abroad",
        )

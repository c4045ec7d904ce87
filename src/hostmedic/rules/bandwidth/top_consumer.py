"""Rule: every process that carries a large share of the traffic is a normal one.

Seeds 000–003 steps 4–5 (``lsof -i | grep IP``, then "determine whether the process is
normal"): a business process → check traffic growth, optimise or upgrade; an abnormal one
→ may be a virus or trojan: stop it, scan, back up and reinstall; a cloud vendor's
component → open a ticket with the vendor. Seed 004 "带宽跑满: 病毒 / 网络攻击 / 耗资源进程".
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.analysis.verdict import CLOUD_AGENT, SUSPICIOUS, UNKNOWN, judge
from hostmedic.engine import rule
from hostmedic.facts.bandwidth import BandwidthFacts
from hostmedic.fix_commands import command_for
from hostmedic.model import Finding, Severity, Status
from hostmedic.rules.bandwidth.common import process_evidence, significant
from hostmedic.settings import Settings

_SEVERITY = {
    SUSPICIOUS: Severity.CRITICAL,
    CLOUD_AGENT: Severity.WARNING,
    UNKNOWN: Severity.WARNING,
}


@rule(
    "bandwidth.top_consumer",
    category="bandwidth",
    runbook_ref="seed 000-003 Linux steps 4-5; seed 004 §带宽跑满 病毒/网络攻击/耗资源进程",
)
def top_consumer(bandwidth: BandwidthFacts, settings: Settings) -> Iterator[Finding]:
    """The processes carrying most of the traffic are business or system processes."""
    total = sum(p.traffic.total_bytes for p in bandwidth.processes)
    for row in significant(bandwidth.processes, settings):
        verdict = judge(row, bandwidth.duration_s)
        info = row.info
        fix = {"fix": command_for("kill", row.pid)} if verdict.kind == SUSPICIOUS else {}
        yield Finding(
            rule_id="bandwidth.top_consumer",
            severity=_SEVERITY.get(verdict.kind, Severity.INFO),
            status=Status.FAILED,
            title_key=f"finding.bandwidth.top_consumer.{verdict.kind}.title",
            params={
                "pid": row.pid if row.pid is not None else "?",
                "name": info.name if info else "?",
                "exe": (info.exe if info else None) or "?",
                "verdict": verdict.kind,
                "vendor": verdict.vendor or "",
                "tx_bytes": row.traffic.tx_bytes,
                "rx_bytes": row.traffic.rx_bytes,
                "remotes": len(row.remote_ips),
                "percent": round(100 * row.traffic.total_bytes / total),
                "clues": [(c.key, dict(c.params)) for c in verdict.clues],
                **fix,
            },
            evidence=(process_evidence(row, bandwidth),),
            remedy_key=f"remedy.bandwidth.top_consumer.{verdict.kind}",
        )

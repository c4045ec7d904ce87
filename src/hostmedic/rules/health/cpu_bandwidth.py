"""Rule: the processes eating the CPU are not also flooding the network.

Seed 004 "CPU 跑满: 受到了小型网络攻击；进程有异常 / 实例中毒或中木马" meets the bandwidth
runbook (seeds 000-003): a process that is both a top CPU consumer and a top bandwidth
consumer is handled by that runbook's steps (judge it, locate its peers, stop it).
Needs both categories: skipped under ``--only health``.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.analysis.verdict import SUSPICIOUS, judge
from hostmedic.engine import rule
from hostmedic.facts.bandwidth import BandwidthFacts
from hostmedic.facts.health import CpuFacts
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.bandwidth.common import process_evidence, significant
from hostmedic.rules.health.common import SOURCE_PROC, failed, process_line
from hostmedic.settings import Settings

RULE = "health.cpu_bandwidth"


@rule(RULE, category="health", runbook_ref="004 §CPU 跑满 (网络攻击/中毒); seed 000-003 steps 4-5")
def cpu_bandwidth(
    health_cpu: CpuFacts, bandwidth: BandwidthFacts, settings: Settings
) -> Iterator[Finding]:
    """No process is at once a top CPU consumer and a top bandwidth consumer."""
    cores = max(health_cpu.cores, 1)
    talkers = {p.pid: p for p in significant(bandwidth.processes, settings) if p.pid}
    for p in health_cpu.top:
        share = (p.cpu_percent + p.children_cpu_percent) / cores
        row = talkers.get(p.pid)
        if row is None or share < settings.health.cpu_consumer_min_share_percent:
            continue
        suspicious = judge(row, bandwidth.duration_s).kind == SUSPICIOUS
        yield failed(
            RULE,
            Severity.CRITICAL if suspicious else Severity.WARNING,
            "finding.health.cpu_bandwidth.title",
            {
                "pid": p.pid,
                "name": p.name,
                "cpu_percent": round(p.cpu_percent),
                "tx_bytes": row.traffic.tx_bytes,
                "rx_bytes": row.traffic.rx_bytes,
            },
            (
                Evidence(SOURCE_PROC, process_line(p, health_cpu.window_s), health_cpu.read_at),
                process_evidence(row, bandwidth),
            ),
            "remedy.health.cpu_bandwidth",
        )

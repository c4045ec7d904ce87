"""Rule: the default gateway answers ping without loss and quickly.

Seed 004 ping section (服务器出现 Ping 延迟或丢包) and tree node 1-B.1-B.1 (源服务器 ping
自身网关): loss to the server's own gateway points inside — the server's load, its
network configuration — rather than the path beyond. Opt-in (``--ping-gateway``).
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.health_storage import PingFacts
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.health.common import failed
from hostmedic.settings import Settings

RULE = "health.gateway_ping"


@rule(RULE, category="health", runbook_ref="004 §Ping 延迟或丢包; 004 1-B.1-B.1")
def gateway_ping(health_ping: PingFacts, settings: Settings) -> Iterator[Finding]:
    """Loss stays below ``ping_loss_warning_percent`` and the average round trip below
    ``ping_rtt_warning_ms``."""
    s = settings.health
    p = health_ping
    slow = p.rtt_avg_ms is not None and p.rtt_avg_ms >= s.ping_rtt_warning_ms
    if p.loss_percent < s.ping_loss_warning_percent and not slow:
        return
    critical = p.loss_percent >= s.ping_loss_critical_percent
    yield failed(
        RULE,
        Severity.CRITICAL if critical else Severity.WARNING,
        "finding.health.gateway_ping.title",
        {
            "gateway": p.gateway,
            "interface": p.interface,
            "loss_percent": p.loss_percent,
            "sent": p.sent,
            "received": p.received,
            "rtt_avg_ms": p.rtt_avg_ms if p.rtt_avg_ms is not None else "-",
        },
        (Evidence(p.command, p.summary, p.read_at),),
        "remedy.health.gateway_ping",
    )

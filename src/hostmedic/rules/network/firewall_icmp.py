"""Rule: the host firewall lets ping in.

Seed 004 §目标服务器内部配置: "ping 不通：目标服务器系统内安全软件等安全策略禁 ping". A server
that drops echo requests looks dead to the first test of every checklist while its ports
work (tree node 1-B.1-A / 3.1-B). Decided on the firewall's own rules, for a client whose
address is not known; a rule that drops only some sources is reported as such.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.analysis.firewall import ACCEPT, Decision, echo_request, evaluate
from hostmedic.engine import rule
from hostmedic.facts.network import FirewallFacts, NetworkFacts
from hostmedic.model import Evidence, Finding, Severity, Status
from hostmedic.rules.network.common import require


def firewall_evidence(firewall: FirewallFacts, decision: Decision, read_at: float) -> Evidence:
    """The deciding rule (or the rules that may decide) as an evidence line."""
    if decision.verdict != ACCEPT:
        excerpt = f"{decision.chain}: {decision.rule} -> {decision.verdict}"
    else:
        excerpt = "accepted unless: " + " | ".join(decision.maybe)
    if decision.maybe and decision.verdict != ACCEPT:
        excerpt += (
            " (unless an earlier source-specific rule applies: " + " | ".join(decision.maybe) + ")"
        )
    return Evidence(", ".join(firewall.sources), excerpt[:500], read_at)


@rule(
    "network.firewall_icmp",
    category="network",
    runbook_ref="004 §目标服务器内部配置 (ping 不通: 禁 ping); 1-B.1-A; 3.1-B",
)
def firewall_icmp(network: NetworkFacts) -> Iterator[Finding]:
    """The host firewall accepts ICMP echo requests from any client."""
    require(network, "firewall")
    assert network.firewall is not None
    families = ["ipv4"] + (["ipv6"] if any(":" in a for a in network.vantage.addresses) else [])
    for family in families:
        decision = evaluate(network.firewall, echo_request(family))
        blocked = decision.verdict != ACCEPT
        if not blocked and not decision.maybe:
            continue
        yield Finding(
            rule_id="network.firewall_icmp",
            severity=Severity.WARNING,
            status=Status.FAILED,
            title_key="finding.network.firewall_icmp."
            + ("blocked" if blocked and decision.certain else "some")
            + ".title",
            params={"family": family, "verdict": decision.verdict},
            evidence=(firewall_evidence(network.firewall, decision, network.read_at),),
            remedy_key="remedy.network.firewall_icmp",
        )

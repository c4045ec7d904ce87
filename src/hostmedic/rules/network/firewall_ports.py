"""Rule: the host firewall lets clients reach every service that listens for them.

Seed 004 §目标服务器内部配置: "只有部分端口 telnet 不通：目标服务器系统内安全软件等安全策略禁止
了对部分端口的访问" (and a default-drop policy does it to every port not opened). Each
TCP/UDP port that listens on a non-loopback address is evaluated as a new connection from
an unknown client; a drop or reject names the rule (or the chain policy) that does it.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.analysis.firewall import ACCEPT, Packet, evaluate
from hostmedic.engine import rule
from hostmedic.facts.network import NetworkFacts
from hostmedic.model import Evidence, Finding, Severity, Status
from hostmedic.rules.network.common import (
    PUBLIC_PORTS,
    SOURCE_LISTENERS,
    listener_excerpt,
    owner_name,
    require,
)
from hostmedic.rules.network.firewall_icmp import firewall_evidence


@rule(
    "network.firewall_ports",
    category="network",
    runbook_ref="004 §目标服务器内部配置 (部分端口 telnet 不通); 1-A.1-B; 2.1-A.1-B; 3.1-B.1-A",
)
def firewall_ports(network: NetworkFacts) -> Iterator[Finding]:
    """No listening service on a reachable address is dropped by the host firewall."""
    require(network, "listeners")
    require(network, "firewall")
    assert network.firewall is not None
    seen: set[tuple[str, int, str]] = set()
    for li in network.listeners:
        family = "ipv6" if ":" in li.address else "ipv4"
        key = (li.protocol, li.port, family)
        if li.scope == "loopback" or key in seen:
            continue
        seen.add(key)
        decision = evaluate(network.firewall, Packet(li.protocol, family, dport=li.port))
        if decision.verdict == ACCEPT:
            continue
        public = li.protocol == "tcp" and li.port in PUBLIC_PORTS
        yield Finding(
            rule_id="network.firewall_ports",
            severity=Severity.CRITICAL if public and decision.certain else Severity.WARNING,
            status=Status.FAILED,
            title_key="finding.network.firewall_ports."
            + ("policy" if decision.rule == "policy drop" else "rule")
            + ".title",
            params={
                "protocol": li.protocol,
                "port": li.port,
                "process": owner_name(li),
                "verdict": decision.verdict,
                "family": family,
            },
            evidence=(
                Evidence(SOURCE_LISTENERS, listener_excerpt(li), network.read_at),
                firewall_evidence(network.firewall, decision, network.read_at),
            ),
            remedy_key="remedy.network.firewall_ports",
        )

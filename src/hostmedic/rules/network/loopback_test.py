"""Rule: every listening TCP service accepts a connection from this machine.

Seed 004 1-A.1-A / 1.1-A.1-A / 2.1-A.1-A: when the inside test (127.0.0.1, or the server's
own address from inside) fails too, the fault is the service itself — "联系业务提供商或者
业务运维人员，检查代码配置、软件运行状态". Only connects to addresses a listener covers are
judged (a service bound to one address rightly refuses the others), and a connect the
host firewall drops is left to ``network.firewall_ports`` (no ``iif lo accept`` rule).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from hostmedic.analysis.firewall import ACCEPT, Packet, evaluate
from hostmedic.engine import rule
from hostmedic.facts.network import OPEN, Listener, LocalConnect, NetworkFacts
from hostmedic.model import Evidence, Finding, Severity, Status
from hostmedic.rules.network.common import (
    SOURCE_LISTENERS,
    endpoint,
    listener_excerpt,
    owner_name,
    require,
)

SOURCE_CONNECT = "TCP connect from this machine"


def covers(li: Listener, address: str) -> bool:
    """Whether a listener bound to ``li.address`` accepts connections to ``address``."""
    if li.scope == "wildcard":
        # "::" also takes IPv4 unless IPV6_V6ONLY; "0.0.0.0" takes only IPv4
        return ":" in li.address or ":" not in address
    return ipaddress.ip_address(li.address) == ipaddress.ip_address(address)


def blocked_locally(network: NetworkFacts, c: LocalConnect) -> bool:
    """Whether the host firewall drops this local connect (no ``iif lo accept`` rule)."""
    if network.firewall is None:
        return False
    family = "ipv6" if ":" in c.address else "ipv4"
    packet = Packet("tcp", family, dport=c.port, saddr=c.address, daddr=c.address, iif="lo")
    return evaluate(network.firewall, packet).verdict != ACCEPT


@rule(
    "network.loopback_test",
    category="network",
    runbook_ref="004 1-A.1-A / 1.1-A.1-A / 2.1-A.1-A (服务器内部访问也存在异常)",
)
def loopback_test(network: NetworkFacts) -> Iterator[Finding]:
    """Each listening TCP port opens from inside, on loopback and on the own addresses."""
    require(network, "listeners")
    require(network, "loopback")
    failed: dict[int, list[LocalConnect]] = {}
    for c in network.loopback:
        owners = [li for li in network.listeners if li.protocol == "tcp" and li.port == c.port]
        if c.outcome == OPEN or not any(covers(li, c.address) for li in owners):
            continue
        if blocked_locally(network, c):
            continue  # the host firewall explains it (network.firewall_ports says so)
        failed.setdefault(c.port, []).append(c)
    for port, connects in sorted(failed.items()):
        owner = next(li for li in network.listeners if li.protocol == "tcp" and li.port == port)
        evidence = [Evidence(SOURCE_LISTENERS, listener_excerpt(owner), network.read_at)]
        evidence += [
            Evidence(
                SOURCE_CONNECT,
                f"connect {endpoint(c.address, c.port)} -> {c.outcome}"
                + (f" ({c.detail})" if c.detail else ""),
                network.read_at,
            )
            for c in connects
        ]
        yield Finding(
            rule_id="network.loopback_test",
            severity=Severity.CRITICAL,
            status=Status.FAILED,
            title_key="finding.network.loopback_test.title",
            params={
                "port": port,
                "process": owner_name(owner),
                "outcome": connects[0].outcome,
                "addresses": ", ".join(c.address for c in connects),
            },
            evidence=tuple(evidence),
            remedy_key="remedy.network.loopback_test",
        )

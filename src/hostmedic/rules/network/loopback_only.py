"""Rule: services clients must reach do not listen on loopback only.

Seed 004 1-A.1 / 2.1-A.1: the inside test on 127.0.0.1 passes while every client fails —
one classic cause is a service bound to 127.0.0.1 (or ::1) only, which no packet from
outside can reach whatever the security group and firewall say.
"""

from __future__ import annotations

from collections.abc import Iterator

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


@rule(
    "network.loopback_only",
    category="network",
    runbook_ref="004 1-A.1 / 2.1-A.1 (服务器内部访问是否正常: 127.0.0.1 对比访问测试)",
)
def loopback_only(network: NetworkFacts) -> Iterator[Finding]:
    """Every TCP service on a public-service port listens on an address clients can reach."""
    require(network, "listeners")
    tcp = [li for li in network.listeners if li.protocol == "tcp"]
    for li in tcp:
        if li.scope != "loopback":
            continue
        if any(o.port == li.port and o.scope != "loopback" for o in tcp):
            continue  # also bound elsewhere: reachable
        public = li.port in PUBLIC_PORTS
        yield Finding(
            rule_id="network.loopback_only",
            severity=Severity.WARNING if public else Severity.INFO,
            status=Status.FAILED,
            title_key="finding.network.loopback_only.title",
            params={"port": li.port, "address": li.address, "process": owner_name(li)},
            evidence=(Evidence(SOURCE_LISTENERS, listener_excerpt(li), network.read_at),),
            remedy_key="remedy.network.loopback_only"
            if public
            else "remedy.network.loopback_only_private",
        )

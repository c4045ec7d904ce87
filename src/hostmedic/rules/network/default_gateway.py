"""Rule: the server has a default gateway (named here; pinging it is the operator's call).

Seed 004 1-B.1-B.1 and ticket checklist steps 4–7: "ping 自身网关". Without a default
route the server cannot answer any client outside its own subnet. The gateway is never
pinged automatically (hostmedic sends nothing the operator did not ask for): the finding
names it so the operator can.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.network import NetworkFacts
from hostmedic.model import Evidence, Finding, Severity, Status
from hostmedic.rules.network.common import require

SOURCE = "/proc/net/route, /proc/net/ipv6_route"


@rule(
    "network.default_gateway",
    category="network",
    runbook_ref="004 1-B.1-B.1 (到源服务器网关 ping 是否正常); 工单 私网 4-7",
)
def default_gateway(network: NetworkFacts) -> Iterator[Finding]:
    """The machine has a default route through a gateway."""
    require(network, "gateways")
    if not network.gateways:
        yield Finding(
            rule_id="network.default_gateway",
            severity=Severity.CRITICAL,
            status=Status.FAILED,
            title_key="finding.network.default_gateway.none.title",
            evidence=(Evidence(SOURCE, "no default route", network.read_at),),
            remedy_key="remedy.network.default_gateway.none",
        )
        return
    for gw in network.gateways:
        if gw.gateway is None:
            continue
        yield Finding(
            rule_id="network.default_gateway",
            severity=Severity.INFO,
            status=Status.FAILED,
            title_key="finding.network.default_gateway.found.title",
            params={"gateway": gw.gateway, "interface": gw.interface},
            evidence=(
                Evidence(
                    SOURCE,
                    f"default via {gw.gateway} dev {gw.interface} metric {gw.metric}",
                    network.read_at,
                ),
            ),
            remedy_key="remedy.network.default_gateway.ping",
        )

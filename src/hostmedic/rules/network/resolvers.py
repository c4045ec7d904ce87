"""Rule: the server has resolvers configured.

Seed 004 §解决办法 (the site's own lookups) and §DNS 解析时间: a server without a working
resolver cannot reach the names its application depends on. An empty resolv.conf, or the
systemd-resolved stub with no upstream server, is reported.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.errors import FactUnavailable
from hostmedic.facts.network import NetworkFacts
from hostmedic.model import Evidence, Finding, Severity, Status
from hostmedic.rules.network.common import require


@rule("network.resolvers", category="network", runbook_ref="004 §DNS 解析时间; §本地 DNS 劫持")
def resolvers(network: NetworkFacts) -> Iterator[Finding]:
    """/etc/resolv.conf names at least one reachable resolver."""
    require(network, "resolvers")
    config = network.resolvers
    if config is None:
        raise FactUnavailable(
            "/etc/resolv.conf is missing", key="reason.unreadable", path="/etc/resolv.conf"
        )
    servers = config.upstream if config.stub else config.nameservers
    if servers:
        return
    excerpt = (
        f"nameservers={list(config.nameservers)} stub={config.stub} "
        f"upstream={list(config.upstream)}"
    )
    yield Finding(
        rule_id="network.resolvers",
        severity=Severity.WARNING,
        status=Status.FAILED,
        title_key="finding.network.resolvers." + ("stub" if config.stub else "none") + ".title",
        evidence=(Evidence(config.path, excerpt, network.read_at),),
        remedy_key="remedy.network.resolvers",
    )

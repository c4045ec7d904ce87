"""Rule: TCP wrappers refuse no client.

Seed 004 §软件源地址访问控制: "目标服务器内部业务软件对源 IP 做了访问控制" — hosts.deny (or a
``: deny`` option in hosts.allow) refuses clients of daemons built with libwrap
(vsftpd, xinetd services, some sshd builds) after the TCP handshake: the port opens, then
the connection closes at once.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.network import NetworkFacts
from hostmedic.model import Evidence, Finding, Severity, Status
from hostmedic.rules.network.common import require


@rule(
    "network.hosts_deny",
    category="network",
    runbook_ref="004 §软件源地址访问控制 (只有部分端口 telnet 不通)",
)
def hosts_deny(network: NetworkFacts) -> Iterator[Finding]:
    """/etc/hosts.deny and hosts.allow refuse no client."""
    require(network, "hosts_access")
    for entry in network.hosts_access:
        denies = entry.path.endswith("hosts.deny") or ":deny" in entry.text.replace(" ", "").lower()
        if not denies:
            continue
        yield Finding(
            rule_id="network.hosts_deny",
            severity=Severity.WARNING,
            status=Status.FAILED,
            title_key="finding.network.hosts_deny.title",
            params={
                "path": entry.path,
                "line": entry.line_number,
                "daemons": ",".join(entry.daemons),
                "clients": ",".join(entry.clients),
            },
            evidence=(Evidence(f"{entry.path}:{entry.line_number}", entry.text, network.read_at),),
            remedy_key="remedy.network.hosts_deny",
        )

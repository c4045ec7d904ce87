"""Rule: active-mode data connections can leave the server from its data port (20).

Seed 004 §FTP无法连接: "检查服务器防护墙是否放行了 FTP 所需要的端口(默认是 20 和 21)" — port 20
is the source port of active-mode (PORT) data connections, which the *server* opens to
the client; the host firewall's output path must let them out. The seed's other advice
("尝试将本地 FTP 客户端设置为被动模式") is the way around it for clients.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.analysis.netfilter import ACCEPT, DROP, Probe, evaluate
from hostmedic.engine import rule
from hostmedic.facts.ftp import FtpFacts
from hostmedic.facts.netfilter import Ruleset
from hostmedic.model import Finding, Severity
from hostmedic.rules.ftp.common import families, firewall_finding, reachable_servers


@rule(
    "ftp.data_port",
    category="ftp",
    runbook_ref="004 §FTP无法连接 (端口 20; 被动模式)",
)
def data_port(ftp: FtpFacts, netfilter: Ruleset) -> Iterator[Finding]:
    """Active-mode data connections from port 20 are allowed out."""
    for server in reachable_servers(ftp):
        port = server.config.active_data_port
        if not server.config.active_enabled or port is None:
            continue
        for family in families(server):
            reach = evaluate(netfilter, Probe(family, "out", None, sport=port))
            if reach.verdict == ACCEPT:
                continue
            yield firewall_finding(
                "ftp.data_port",
                server,
                ftp,
                netfilter,
                family,
                reach,
                probe=f"{family} tcp sport {port} out (new)",
                topic="active",
                severity=Severity.WARNING if reach.verdict == DROP else Severity.INFO,
                data_port=port,
            )

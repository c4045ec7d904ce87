"""Rule: the host firewall lets clients reach each FTP server's control port.

Seed 004 §FTP无法连接: "检查服务器防护墙是否放行了 FTP 所需要的端口(默认是 20 和 21)" — check
that the server's firewall allows the ports FTP needs. The ruleset is evaluated for a
TCP SYN from a generic Internet client (see analysis/netfilter.py); a server that is
configured but not running is named too, since nothing can then answer on the port.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.analysis.netfilter import ACCEPT, DROP, RESTRICTED, Probe, evaluate
from hostmedic.engine import rule
from hostmedic.facts.ftp import FtpFacts
from hostmedic.facts.netfilter import Ruleset
from hostmedic.model import Finding, Severity, Status
from hostmedic.rules.ftp.common import (
    families,
    firewall_finding,
    reachable_servers,
    server_evidence,
    server_params,
)

_SEVERITY = {DROP: Severity.CRITICAL, RESTRICTED: Severity.INFO}


@rule(
    "ftp.control_port",
    category="ftp",
    runbook_ref="004 §FTP无法连接 (检查服务器防护墙是否放行了 FTP 所需要的端口 20/21)",
)
def control_port(ftp: FtpFacts, netfilter: Ruleset) -> Iterator[Finding]:
    """The firewall accepts new connections to every running FTP server's control port."""
    for server in ftp.servers:
        if ftp.live and not server.running:
            yield Finding(
                rule_id="ftp.control_port",
                severity=Severity.INFO,
                status=Status.FAILED,
                title_key="finding.ftp.control_port.not_running.title",
                params=server_params(server),
                evidence=(server_evidence(server, ftp, "control"),),
                remedy_key="remedy.ftp.control_port.not_running",
            )
    for server in reachable_servers(ftp):
        port = server.config.control_port
        for family in families(server):
            reach = evaluate(netfilter, Probe(family, "in", port))
            if reach.verdict == ACCEPT:
                continue
            yield firewall_finding(
                "ftp.control_port",
                server,
                ftp,
                netfilter,
                family,
                reach,
                probe=f"{family} tcp dport {port} (new)",
                topic="control",
                severity=_SEVERITY.get(reach.verdict, Severity.INFO),
            )

"""Rule: passive-mode data connections can reach the server through the host firewall.

Seed 004 §FTP无法连接: "尝试将本地 FTP 客户端设置为被动模式" with "检查服务器防护墙是否放行了
FTP 所需要的端口" — in passive mode the client opens a second connection to a port the
server picks from its passive range. The whole range (or, without one, the kernel's
ephemeral range the server then picks from) is evaluated against the ruleset; when the
ruleset assigns the ``ftp`` conntrack helper, those connections arrive as ``related``.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.analysis.netfilter import (
    ACCEPT,
    DROP,
    Probe,
    conntrack_helpers,
    evaluate_ports,
)
from hostmedic.engine import rule
from hostmedic.facts.ftp import FtpFacts
from hostmedic.facts.netfilter import Ruleset
from hostmedic.model import Finding, Severity, Status
from hostmedic.rules.ftp.common import (
    FAMILY_NAMES,
    families,
    firewall_evidence,
    reachable_servers,
    server_evidence,
    server_params,
    setting,
    span_text,
)


@rule(
    "ftp.passive_ports",
    category="ftp",
    runbook_ref="004 §FTP无法连接 (被动模式; 防火墙放行 FTP 端口)",
)
def passive_ports(ftp: FtpFacts, netfilter: Ruleset) -> Iterator[Finding]:
    """Every port of each server's passive range accepts new connections."""
    state = "related" if "ftp" in conntrack_helpers(netfilter) else "new"
    for server in reachable_servers(ftp):
        config = server.config
        if not config.passive_enabled:
            continue
        fixed = config.passive_min_port is not None and config.passive_max_port is not None
        first, last = (
            (config.passive_min_port or 0, config.passive_max_port or 0)
            if fixed
            else ftp.ephemeral_ports
        )
        total = last - first + 1
        for family in families(server):
            spans = evaluate_ports(
                netfilter, Probe(family, "in", None, ct_state=state), first, last
            )
            refused = [s for s in spans if s.reach.verdict != ACCEPT]
            if not refused:
                continue
            dropped = [s for s in refused if s.reach.verdict == DROP]
            closed = sum(s.last_port - s.first_port + 1 for s in dropped)
            worst = dropped[0] if dropped else refused[0]
            verdict = DROP if dropped else worst.reach.verdict
            shape = "range" if fixed else "any"
            yield Finding(
                rule_id="ftp.passive_ports",
                severity=Severity.CRITICAL if dropped else Severity.INFO,
                status=Status.FAILED,
                title_key=f"finding.ftp.passive_ports.{verdict}.{shape}.title",
                params={
                    **server_params(server),
                    "family": FAMILY_NAMES[family],
                    "first_port": first,
                    "last_port": last,
                    "closed": closed,
                    "total": total,
                    "ports": span_text(dropped or refused),
                    "setting": setting("passive_range", server),
                    "decided_by": worst.reach.decided_by,
                    "conditions": "; ".join(worst.reach.conditions[:5]),
                },
                evidence=(
                    server_evidence(server, ftp, "passive_range"),
                    *(
                        firewall_evidence(
                            netfilter,
                            f"{family} tcp dport {span_text([s])} ({state})",
                            s.reach,
                        )
                        for s in refused[:4]
                    ),
                ),
                remedy_key=(
                    f"remedy.ftp.passive_ports.{shape}"
                    if dropped
                    else "remedy.ftp.firewall_conditional"
                ),
            )

"""Rule: the address a server puts in its passive-mode replies is one clients can reach.

Seed 004 §FTP无法连接 ("尝试将本地 FTP 客户端设置为被动模式"): in passive mode the server
tells the client which address to connect to. Without a configured address it sends the
address the client reached it on — behind a cloud's NAT that is the instance's private
address, which clients on the Internet cannot reach. A configured address that is private
and not this machine's is wrong everywhere. (A public address that is not on an interface
is the normal NAT / elastic-IP setup and passes.)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.errors import FactUnavailable
from hostmedic.facts.ftp import FtpFacts
from hostmedic.model import Evidence, Finding, Severity, Status
from hostmedic.rules.ftp.common import reachable_servers, server_evidence, server_params, setting


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None  # a host name (vsftpd's pasv_addr_resolve): not judged


@rule(
    "ftp.passive_address",
    category="ftp",
    runbook_ref="004 §FTP无法连接 (被动模式)",
)
def passive_address(ftp: FtpFacts) -> Iterator[Finding]:
    """Passive replies carry an address of this machine or a public (NAT) address."""
    if ftp.machine_addresses is None:
        raise FactUnavailable("not live", key="reason.not_live")
    ours = {ipaddress.ip_address(a) for a in ftp.machine_addresses if _ip(a)}
    usable = [a for a in ours if a.version == 4 and not (a.is_loopback or a.is_link_local)]
    public = [a for a in usable if a.is_global]
    addresses = ", ".join(sorted(map(str, usable))) or "-"
    for server in reachable_servers(ftp):
        if not server.config.passive_enabled:
            continue
        configured = server.config.passive_address
        name = setting("passive_address", server)
        params = {**server_params(server), "setting": name, "addresses": addresses}
        if configured is None:
            if public or not usable:
                continue
            # Likely a cloud NAT, but a server for a private network is fine: say, not alarm.
            title, severity = "finding.ftp.passive_address.private.title", Severity.INFO
        else:
            address = _ip(configured)
            if address is None or address in ours or address.is_global:
                continue
            params["address"] = configured
            title, severity = "finding.ftp.passive_address.foreign.title", Severity.WARNING
        yield Finding(
            rule_id="ftp.passive_address",
            severity=severity,
            status=Status.FAILED,
            title_key=title,
            params=params,
            evidence=(
                server_evidence(server, ftp, "passive_address"),
                Evidence("interfaces (psutil.net_if_addrs)", f"addresses={addresses}", ftp.read_at),
            ),
            remedy_key="remedy.ftp.passive_address",
        )

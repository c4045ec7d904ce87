"""Rule: each FTP server has room for more clients (the 421 error).

Seed 004 §FTP 421: "同时连接该 FTP 的人数过多。一般 FTP 网站都有同时登陆人数的上限，超过该上限
就会出现 421 错误" — too many simultaneous users: past the server's limit, new clients get
421. Sessions are the established connections to the control port (what the server's own
limit counts); a limit per client address is checked too. The remedy carries the seed's
client-side advice: retries 999, interval 60 s, and resumable uploads of compressed files.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.errors import FactUnavailable
from hostmedic.facts.ftp import FtpFacts
from hostmedic.model import Evidence, Finding, Severity, Status
from hostmedic.rules.ftp.common import server_evidence, server_params, setting

WARNING_SHARE = 0.8


@rule(
    "ftp.max_clients",
    category="ftp",
    runbook_ref="004 §FTP 421 (同时连接该 FTP 的人数过多)",
)
def max_clients(ftp: FtpFacts) -> Iterator[Finding]:
    """Every running FTP server holds fewer sessions than 80 % of its client limit, and no
    server's log shows connections refused for too many sessions."""
    refused = list(_refused(ftp))
    if not ftp.sockets_read and not refused:
        raise FactUnavailable("sessions not counted", key="reason.ftp_sessions_unknown")
    yield from refused
    if not ftp.sockets_read:
        return  # under --root, or sock_diag failed: the log is all there is
    for server in ftp.servers:
        config = server.config
        if not server.running:
            continue
        sessions = server.sessions
        base = {
            **server_params(server),
            "sessions": sessions,
            "idle_timeout_s": config.idle_timeout_s or 0,
        }
        clients = ", ".join(f"{ip}×{n}" for ip, n in server.sessions_by_ip[:8]) or "-"
        counted = Evidence(
            f"sock_diag (established, local port {config.control_port})",
            f"sessions={sessions} by client: {clients}",
            ftp.read_at,
        )
        limit = config.max_clients
        if limit is not None and sessions >= WARNING_SHARE * limit:
            full = sessions >= limit
            yield Finding(
                rule_id="ftp.max_clients",
                severity=Severity.CRITICAL if full else Severity.WARNING,
                status=Status.FAILED,
                title_key=f"finding.ftp.max_clients.{'full' if full else 'near'}.title",
                params={
                    **base,
                    "limit": limit,
                    "percent": round(100 * sessions / limit),
                    "setting": setting("max_clients", server),
                },
                evidence=(server_evidence(server, ftp, "max_clients", "idle"), counted),
                remedy_key="remedy.ftp.max_clients",
            )
        per_ip = config.max_per_ip
        for ip, count in server.sessions_by_ip:
            if per_ip is None or count < per_ip:
                continue
            yield Finding(
                rule_id="ftp.max_clients",
                severity=Severity.WARNING,
                status=Status.FAILED,
                title_key="finding.ftp.max_clients.per_ip.title",
                params={
                    **base,
                    "ip": ip,
                    "count": count,
                    "limit": per_ip,
                    "setting": setting("max_per_ip", server),
                },
                evidence=(server_evidence(server, ftp, "max_per_ip"), counted),
                remedy_key="remedy.ftp.max_clients",
            )


def _refused(ftp: FtpFacts) -> Iterator[Finding]:
    """The 421 replies a server's log recorded (vsftpd logs each refused connection)."""
    for server in ftp.servers:
        for refused in ftp.refusals:
            if not any(refused.log_file.startswith(log) for log in server.config.log_files):
                continue
            yield Finding(
                rule_id="ftp.max_clients",
                severity=Severity.WARNING,
                status=Status.FAILED,
                title_key="finding.ftp.max_clients.refused.title",
                params={
                    **server_params(server),
                    "refused": refused.count,
                    "per_address": refused.per_address,
                    "idle_timeout_s": server.config.idle_timeout_s or 0,
                    "setting": setting("max_clients", server),
                },
                evidence=(
                    Evidence(
                        f"{refused.log_file} lines {refused.first_line}-{refused.last_line}",
                        f"{refused.count} connections refused: too many sessions "
                        f"({refused.per_address} for one address)",
                        ftp.read_at,
                    ),
                    server_evidence(server, ftp, "max_clients", "max_per_ip"),
                ),
                remedy_key="remedy.ftp.max_clients",
            )

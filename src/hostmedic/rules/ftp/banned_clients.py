"""Rule: no client is banned from FTP, and none is guessing passwords.

Seed 004 §FTP无法连接: "如果本地多次输出错误密码可能会导致本地 IP 被屏蔽" — entering a wrong
password several times can get the client's IP blocked. Bans come from fail2ban's FTP
jails (its database and the firewall elements it adds); failed logins from the servers'
logs. A ban is reported for the operator to compare with the complaining client's public
address; many failures from an address that is not banned are password guessing (seed
004 "检查服务器内部账户 (ftp 账户) 密码").
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.ftp import FailedLogins, FtpFacts
from hostmedic.model import Evidence, Finding, Severity, Status

MAX_FINDINGS = 20
GUESSING_FAILURES = 20


def _failures_evidence(rows: list[FailedLogins], read_at: float) -> tuple[Evidence, ...]:
    return tuple(
        Evidence(
            f"{r.log_file} lines {r.first_line}-{r.last_line}",
            f"{r.count} failed FTP logins from {r.ip}"
            + (f" (users: {', '.join(r.users)})" if r.users else ""),
            read_at,
        )
        for r in rows
    )


@rule(
    "ftp.banned_clients",
    category="ftp",
    runbook_ref="004 §FTP无法连接 (多次输出错误密码可能会导致本地 IP 被屏蔽)",
)
def banned_clients(ftp: FtpFacts) -> Iterator[Finding]:
    """No client address is banned by an FTP jail, or guessing FTP passwords unbanned."""
    by_ip: dict[str, list[FailedLogins]] = {}
    for row in ftp.failed_logins:
        by_ip.setdefault(row.ip, []).append(row)
    banned: dict[str, list[str]] = {}
    sources: dict[str, list[str]] = {}
    for ban in ftp.bans:
        banned.setdefault(ban.ip, [])
        if ban.jail not in banned[ban.ip]:
            banned[ban.ip].append(ban.jail)
        sources.setdefault(ban.ip, []).append(ban.source)
    for ip in sorted(banned)[:MAX_FINDINGS]:
        failures = by_ip.get(ip, [])
        yield Finding(
            rule_id="ftp.banned_clients",
            severity=Severity.INFO,
            status=Status.FAILED,
            title_key="finding.ftp.banned_clients.banned.title",
            params={
                "ip": ip,
                "jail": ", ".join(banned[ip]),
                "failures": sum(r.count for r in failures),
            },
            evidence=(
                Evidence(
                    "fail2ban", f"{ip} banned: {'; '.join(dict.fromkeys(sources[ip]))}", ftp.read_at
                ),
                *_failures_evidence(failures, ftp.read_at),
            ),
            remedy_key="remedy.ftp.banned_clients.banned",
        )
    if len(banned) > MAX_FINDINGS:
        yield Finding(
            rule_id="ftp.banned_clients",
            severity=Severity.INFO,
            status=Status.FAILED,
            title_key="finding.ftp.banned_clients.more.title",
            params={"count": len(banned) - MAX_FINDINGS},
            remedy_key="remedy.ftp.banned_clients.more",
        )
    guessing = [
        (ip, rows)
        for ip, rows in by_ip.items()
        if ip not in banned and sum(r.count for r in rows) >= GUESSING_FAILURES
    ]
    for ip, rows in sorted(guessing, key=lambda kv: -sum(r.count for r in kv[1]))[:MAX_FINDINGS]:
        yield Finding(
            rule_id="ftp.banned_clients",
            severity=Severity.WARNING,
            status=Status.FAILED,
            title_key="finding.ftp.banned_clients.guessing.title",
            params={"ip": ip, "failures": sum(r.count for r in rows)},
            evidence=_failures_evidence(rows, ftp.read_at),
            remedy_key="remedy.ftp.banned_clients.guessing",
        )

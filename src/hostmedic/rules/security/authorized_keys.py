"""Rule: no SSH key was added recently, and no key file was written by Redis.

Seed 004 §排查并修复服务器漏洞 6: "Redis without a password lets attackers write files:
check /root for the SSH login key files the hackers created and delete them"; and
§排查病毒木马 ``rm -r -f /root/.ssh``. A Redis-written file carries the dump header
(``REDIS0…``) and binary lines around the key; a key file changed within a week is
for the operator to confirm.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.security import AccountFacts, KeyFile
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.security.common import DAY_S, RECENT_DAYS, failed, line_evidence, stamp


def _evidence(key_file: KeyFile, read_at: float) -> list[Evidence]:
    mtime = stamp(key_file.mtime)
    head = Evidence(
        key_file.path,
        f"modified {mtime}, {len(key_file.keys)} keys, {key_file.binary_lines} binary lines",
        read_at,
    )
    marker = [line_evidence(key_file.redis_marker, read_at)] if key_file.redis_marker else []
    return [head, *marker, *(line_evidence(k, read_at) for k in key_file.keys[:5])]


@rule(
    "security.authorized_keys",
    category="security",
    runbook_ref="004 §排查并修复服务器漏洞 6; §排查病毒木马",
)
def authorized_keys(security_accounts: AccountFacts) -> Iterator[Finding]:
    """No authorized_keys file carries Redis dump traces or changed in the last 7 days."""
    facts = security_accounts
    since = facts.read_at - RECENT_DAYS * DAY_S
    for key_file in facts.key_files:
        params = {"user": key_file.user, "path": key_file.path, "keys": len(key_file.keys)}
        if key_file.redis_marker is not None or key_file.binary_lines:
            yield failed(
                "security.authorized_keys",
                Severity.CRITICAL,
                params,
                _evidence(key_file, facts.read_at),
                "redis",
            )
        elif key_file.mtime >= since and key_file.keys:
            yield failed(
                "security.authorized_keys",
                Severity.WARNING,
                params,
                _evidence(key_file, facts.read_at),
                "recent",
            )

"""Rule: system accounts cannot be logged in to.

Seed 004 §账户 Linux 2 and 4 (abnormal accounts; the mysql / ftp accounts' passwords):
service accounts (uid below login.defs UID_MIN) are created with nologin or a locked
password; one that has a login shell *and* a password or an SSH key is a way in someone
prepared. A shell alone (Debian's postgres account) is not: nobody can use it without su.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.errors import FactUnavailable
from hostmedic.facts.security import AccountFacts
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.security.access import can_log_in, key_count
from hostmedic.rules.security.common import failed, line_evidence


@rule("security.system_account_shell", category="security", runbook_ref="004 §账户 Linux 2, 4")
def system_account_shell(security_accounts: AccountFacts) -> Iterator[Finding]:
    """No system account (uid 1 … UID_MIN-1) has a login shell with a password or SSH key."""
    if not security_accounts.shadow_read:
        raise FactUnavailable("/etc/shadow unreadable", key="reason.shadow_unreadable")
    facts = security_accounts
    for account in facts.accounts:
        if not 0 < account.uid < facts.uid_min or not can_log_in(account, facts):
            continue
        keys = key_count(account, facts)
        yield failed(
            "security.system_account_shell",
            Severity.WARNING,
            {"user": account.name, "uid": account.uid, "shell": account.shell, "keys": keys},
            [
                line_evidence(account.entry, facts.read_at),
                Evidence(
                    "/etc/shadow", f"password {account.password}, ssh keys {keys}", facts.read_at
                ),
            ],
        )

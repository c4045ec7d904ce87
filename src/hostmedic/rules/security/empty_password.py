"""Rule: no account that can log in has an empty password.

Seed 004 §账户 Linux 4: passwords set too simply are easily cracked; an empty one needs no
cracking at all (console, su, and SSH when PermitEmptyPasswords is on).
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.errors import FactUnavailable
from hostmedic.facts.security import PASSWORD_EMPTY, AccountFacts
from hostmedic.model import Finding, Severity
from hostmedic.rules.security.common import failed, line_evidence


@rule("security.empty_password", category="security", runbook_ref="004 §账户 Linux 4")
def empty_password(security_accounts: AccountFacts) -> Iterator[Finding]:
    """Every account with a login shell has a password or is locked."""
    if not security_accounts.shadow_read:
        raise FactUnavailable("/etc/shadow unreadable", key="reason.shadow_unreadable")
    for account in security_accounts.accounts:
        if account.password == PASSWORD_EMPTY and account.login_shell:
            yield failed(
                "security.empty_password",
                Severity.CRITICAL,
                {"user": account.name, "uid": account.uid},
                [line_evidence(account.entry, security_accounts.read_at)],
            )

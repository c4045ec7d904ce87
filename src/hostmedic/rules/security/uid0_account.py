"""Rule: root is the only account with uid 0.

Seed 004 §账户 Linux 2 ("check /etc/passwd for abnormal accounts") and §排查并修复服务器漏洞 1:
a second uid-0 account is a classic backdoor — it is root under another name.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.security import AccountFacts
from hostmedic.model import Finding, Severity
from hostmedic.rules.security.common import failed, line_evidence


@rule(
    "security.uid0_account",
    category="security",
    runbook_ref="004 §账户 Linux 2; §排查并修复服务器漏洞 1",
)
def uid0_account(security_accounts: AccountFacts) -> Iterator[Finding]:
    """No account other than root has uid 0."""
    for account in security_accounts.accounts:
        if account.uid == 0 and account.name != "root":
            yield failed(
                "security.uid0_account",
                Severity.CRITICAL,
                {"user": account.name, "shell": account.shell},
                [line_evidence(account.entry, security_accounts.read_at)],
            )

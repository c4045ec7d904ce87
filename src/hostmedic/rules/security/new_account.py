"""Rule: no account that can log in was created in the last week.

Seed 004 §账户 Linux 2-3: "if users other than root logged in, check /etc/passwd for
abnormal accounts; lock (usermod -L) or delete (userdel -r) them". A new account is
dated by /etc/shadow's last-change day (set when useradd or passwd writes the entry) or,
without one, by its home directory's ctime. Accounts nobody can log in to (no shell, or
a locked password and no SSH key: what packages create) are left out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.errors import FactUnavailable
from hostmedic.facts.security import AccountFacts
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.security.access import can_log_in
from hostmedic.rules.security.common import DAY_S, RECENT_DAYS, failed, line_evidence


@rule("security.new_account", category="security", runbook_ref="004 §账户 Linux 2-3")
def new_account(security_accounts: AccountFacts) -> Iterator[Finding]:
    """No account that can log in was created or given a password in the last 7 days."""
    if not security_accounts.shadow_read:
        raise FactUnavailable("/etc/shadow unreadable", key="reason.shadow_unreadable")
    facts = security_accounts
    since = facts.read_at - RECENT_DAYS * DAY_S
    for account in facts.accounts:
        if not can_log_in(account, facts):
            continue
        if account.changed_day is not None:
            when = float(account.changed_day * DAY_S)
            how = f"/etc/shadow last change: day {account.changed_day}"
        elif account.home_ctime is not None:
            when = account.home_ctime
            how = f"{account.home} ctime"
        else:
            continue
        if when < since:
            continue
        date = time.strftime("%Y-%m-%d", time.gmtime(when))
        yield failed(
            "security.new_account",
            Severity.WARNING,
            {"user": account.name, "uid": account.uid, "date": date, "shell": account.shell},
            [
                line_evidence(account.entry, facts.read_at),
                Evidence(
                    "/etc/shadow" if account.changed_day is not None else account.home,
                    f"{how} ({date}), password {account.password}",
                    facts.read_at,
                ),
            ],
        )

"""Who can log in: the account judgement several rules share."""

from __future__ import annotations

from hostmedic.facts.security import PASSWORD_EMPTY, PASSWORD_USABLE, Account, AccountFacts


def key_count(account: Account, facts: AccountFacts) -> int:
    """SSH keys authorised for the account (its own authorized_keys files)."""
    return sum(len(f.keys) for f in facts.key_files if f.user == account.name)


def can_log_in(account: Account, facts: AccountFacts) -> bool:
    """A login shell, and a password or an SSH key that lets someone in."""
    if not account.login_shell:
        return False
    return account.password in (PASSWORD_USABLE, PASSWORD_EMPTY) or key_count(account, facts) > 0

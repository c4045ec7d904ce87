"""Rule: sshd refuses accounts with an empty password.

Seed 004 §账户 Linux 4 (passwords too simple): ``PermitEmptyPasswords yes`` lets anyone in
as an account whose password is empty.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.security import SshFacts
from hostmedic.model import Finding, Severity
from hostmedic.rules.security.common import failed
from hostmedic.rules.security.ssh_common import overrides, setting, setting_evidence


@rule("security.ssh_empty_passwords", category="security", runbook_ref="004 §账户 Linux 4")
def ssh_empty_passwords(security_ssh: SshFacts) -> Iterator[Finding]:
    """PermitEmptyPasswords is 'no' everywhere."""
    facts = security_ssh
    found = setting(facts, "permitemptypasswords")
    for s in [x for x in [found, *overrides(facts, "permitemptypasswords")] if x is not None]:
        if s.value.lower() == "yes":
            yield failed(
                "security.ssh_empty_passwords",
                Severity.CRITICAL,
                {"match": s.match or ""},
                [setting_evidence(s, facts.read_at)],
                "match" if s.match else "default",
                remedy="default",
            )

"""Rule: root cannot log in over SSH with a password.

Seed 004 §修改远程端口并限制登录IP and §排查并修复服务器漏洞 2 (strong passwords): with
``PermitRootLogin yes`` and password authentication on, root's password is all that
stands between a brute-force run and the machine.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.security import SshFacts
from hostmedic.model import Finding, Severity
from hostmedic.rules.security.common import failed
from hostmedic.rules.security.ssh_common import overrides, password_login, setting, setting_evidence


@rule(
    "security.ssh_root_login",
    category="security",
    runbook_ref="004 §修改远程端口并限制登录IP Linux; §排查并修复服务器漏洞 2",
)
def ssh_root_login(security_ssh: SshFacts) -> Iterator[Finding]:
    """PermitRootLogin is not 'yes' while passwords are accepted (globally or in a Match)."""
    facts = security_ssh
    if not password_login(facts):
        return
    permit = setting(facts, "permitrootlogin")
    candidates = [s for s in [permit, *overrides(facts, "permitrootlogin")] if s is not None]
    password = setting(facts, "passwordauthentication")
    for s in candidates:
        if s.value.lower() != "yes":
            continue
        evidence = [setting_evidence(s, facts.read_at)]
        if password is not None:
            evidence.append(setting_evidence(password, facts.read_at))
        yield failed(
            "security.ssh_root_login",
            Severity.WARNING,
            {"match": s.match or ""},
            evidence,
            "match" if s.match else "default",
            remedy="default",
        )

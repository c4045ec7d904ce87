"""Rule: SSH is not a default-port password service open to every address.

Seed 004 §修改远程端口并限制登录IP Linux: "change Port 22 in /etc/ssh/sshd_config to
another port" and "restrict login IPs with /etc/hosts.deny and /etc/hosts.allow". Advice,
so informational: port 22 with passwords accepted and no TCP-wrappers rule for sshd.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.security import SshFacts
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.security.common import failed
from hostmedic.rules.security.ssh_common import password_login, setting, setting_evidence


def _wraps_sshd(text: str) -> bool:
    daemons = text.split(":", 1)[0].lower()
    return any(d.strip() in ("sshd", "all") for d in daemons.replace(",", " ").split())


@rule(
    "security.ssh_exposure", category="security", runbook_ref="004 §修改远程端口并限制登录IP Linux"
)
def ssh_exposure(security_ssh: SshFacts) -> Iterator[Finding]:
    """SSH listens on a non-default port, accepts keys only, or is limited by hosts.allow/deny."""
    facts = security_ssh
    restricted = any(_wraps_sshd(x.text) for x in facts.hosts_allow + facts.hosts_deny)
    if 22 not in facts.ports or not password_login(facts) or restricted:
        return
    evidence = [
        setting_evidence(s, facts.read_at)
        for s in (setting(facts, "port"), setting(facts, "passwordauthentication"))
        if s is not None
    ]
    evidence.append(
        Evidence("/etc/hosts.allow, /etc/hosts.deny", "no rule for sshd or ALL", facts.read_at)
    )
    yield failed("security.ssh_exposure", Severity.INFO, {"port": 22}, evidence)

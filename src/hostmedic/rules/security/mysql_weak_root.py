"""Rule: the local MySQL / MariaDB does not let root in with an empty or trivial password.

Seed 004 §账户 Linux 4 and §排查并修复服务器漏洞 7: "check MySQL … passwords; make them
strong (letters, digits, symbols, 10+ characters)". Tried on loopback only, with the tiny
built-in list (empty, "root", "123456").
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.security import ServiceFacts
from hostmedic.model import Finding, Severity
from hostmedic.rules.security.common import failed
from hostmedic.rules.security.services_common import exposed, not_probed, probe_evidence


@rule(
    "security.mysql_weak_root",
    category="security",
    runbook_ref="004 §账户 Linux 4; §排查并修复服务器漏洞 7",
)
def mysql_weak_root(security_services: ServiceFacts) -> Iterator[Finding]:
    """MySQL/MariaDB root refuses the empty password and the built-in trivial ones."""
    facts = security_services
    for probe in facts.probes:
        if probe.service == "mysql" and probe.open:
            yield failed(
                "security.mysql_weak_root",
                Severity.CRITICAL if exposed(probe) else Severity.WARNING,
                {"address": probe.address, "bind": ", ".join(probe.bind)},
                [probe_evidence(probe, facts.read_at)],
            )
    yield from not_probed("security.mysql_weak_root", facts, ("mysql",))

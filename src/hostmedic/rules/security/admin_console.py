"""Rule: no admin console is open without a login, or exposed to the network.

Seed 004 §排查并修复服务器漏洞 3-5: Jenkins, Tomcat, phpMyAdmin, WDCP, WebLogic consoles
("strengthen their passwords; close the 8080 management port if unused"), "Jenkins
admin without a password lets anyone run commands", and Elasticsearch open to the world.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.security import ServiceFacts
from hostmedic.model import Finding, Severity
from hostmedic.rules.security.common import failed
from hostmedic.rules.security.services_common import exposed, not_probed, probe_evidence

NOT_CONSOLES = ("redis", "mysql")


@rule("security.admin_console", category="security", runbook_ref="004 §排查并修复服务器漏洞 3-5")
def admin_console(security_services: ServiceFacts) -> Iterator[Finding]:
    """No console answers without a login, and none with a login page listens beyond loopback."""
    facts = security_services
    for probe in facts.probes:
        if probe.service in NOT_CONSOLES:
            continue
        public = exposed(probe)
        if probe.open:
            severity = Severity.CRITICAL if public else Severity.WARNING
        elif public:
            severity = Severity.WARNING
        else:
            continue
        yield failed(
            "security.admin_console",
            severity,
            {"service": probe.service, "address": probe.address, "bind": ", ".join(probe.bind)},
            [probe_evidence(probe, facts.read_at)],
            "open" if probe.open else "exposed",
        )
    yield from not_probed("security.admin_console", facts, ("console",))

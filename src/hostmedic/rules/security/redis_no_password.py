"""Rule: Redis asks for a password, and nobody used it to plant an SSH key or a cron job.

Seed 004 §排查并修复服务器漏洞 6: "Redis without a password can be made to write files:
check /root for the SSH key files hackers created, set a strong Redis password, and bind
127.0.0.1 when no remote access is needed". The attack points Redis's dump file at
/root/.ssh/authorized_keys (or a cron spool) with CONFIG SET dir / dbfilename: those
settings are its trace.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.analysis.startup import security_signatures
from hostmedic.engine import rule
from hostmedic.facts.security import ServiceFacts, ServiceProbe
from hostmedic.model import Finding, Severity
from hostmedic.rules.security.common import failed
from hostmedic.rules.security.services_common import exposed, not_probed, probe_evidence


def attack_trace(probe: ServiceProbe) -> str | None:
    """``dir=/root/.ssh dbfilename=authorized_keys`` style settings, as text, if present."""
    sig = security_signatures()["redis"]
    config = dict(probe.config)
    directory, filename = config.get("dir", ""), config.get("dbfilename", "")
    if any(directory.startswith(d) for d in sig["attack_dirs"]) or filename in sig["attack_files"]:
        return f"dir={directory} dbfilename={filename}"
    return None


@rule("security.redis_no_password", category="security", runbook_ref="004 §排查并修复服务器漏洞 6")
def redis_no_password(security_services: ServiceFacts) -> Iterator[Finding]:
    """Every local Redis answers NOAUTH without a password, and its dump file is not
    pointed at an .ssh or cron directory."""
    facts = security_services
    for probe in facts.probes:
        if probe.service != "redis" or not probe.open:
            continue
        trace = attack_trace(probe)
        protected = dict(probe.config).get("protected-mode", "yes") == "yes"
        severity = (
            Severity.CRITICAL if trace or (exposed(probe) and not protected) else Severity.WARNING
        )
        yield failed(
            "security.redis_no_password",
            severity,
            {"address": probe.address, "bind": ", ".join(probe.bind), "trace": trace or "-"},
            [probe_evidence(probe, facts.read_at)],
            "attacked" if trace else "default",
        )
    yield from not_probed("security.redis_no_password", facts, ("redis",))

"""Rule: ps sees every process.

Seed 004 §排查病毒木马: the trojans replace ps / netstat / lsof / ss so their processes do
not show; the same is done with an /etc/ld.so.preload readdir hook or a mount over
/proc/<pid>. A pid /proc answers for but does not list, or whose /proc directory has a
mount laid over it, is such a hidden process.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.security import ProcessFacts
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.security.common import failed


@rule("security.hidden_process", category="security", runbook_ref="004 §排查病毒木马")
def hidden_process(security_processes: ProcessFacts) -> Iterator[Finding]:
    """Every process /proc answers for is listed in /proc, and no /proc/<pid> is mounted over."""
    facts = security_processes
    for hidden in facts.hidden:
        yield failed(
            "security.hidden_process",
            Severity.CRITICAL,
            {"pid": hidden.pid, "name": hidden.name, "exe": hidden.exe or "?"},
            [
                Evidence(
                    f"/proc/{hidden.pid}",
                    f"pid={hidden.pid} name={hidden.name} exe={hidden.exe or '?'} "
                    f"how={hidden.how} pids_probed=1-{facts.pids_probed}",
                    facts.read_at,
                )
            ],
            hidden.how,
        )

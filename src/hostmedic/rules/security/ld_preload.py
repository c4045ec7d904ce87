"""Rule: /etc/ld.so.preload loads nothing.

Seed 004 §恶意程序 / §排查病毒木马: a library listed there is loaded into every program,
which is how user-space rootkits hide processes and files from ps, ls and netstat. A
normal server does not have the file, or has it empty.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.analysis.startup import entry_clues
from hostmedic.engine import rule
from hostmedic.facts.security import StartupFacts
from hostmedic.model import Finding, Severity
from hostmedic.rules.security.common import clue_list, failed, line_evidence


@rule(
    "security.ld_preload", category="security", runbook_ref="004 §恶意程序 Linux 3; §排查病毒木马"
)
def ld_preload(security_startup: StartupFacts) -> Iterator[Finding]:
    """/etc/ld.so.preload is absent or lists no library."""
    facts = security_startup
    for entry in facts.entries:
        if entry.kind == "ld_preload":
            yield failed(
                "security.ld_preload",
                Severity.CRITICAL,
                {
                    "library": entry.program or entry.command,
                    "package": entry.program_package or "-",
                    "clues": clue_list(entry_clues(entry)),
                },
                [line_evidence(entry.where, facts.read_at)],
            )

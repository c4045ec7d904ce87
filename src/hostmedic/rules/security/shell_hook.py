"""Rule: the shell profiles run at login download and hide nothing.

Seed 004 §恶意程序 (startup items that bring a trojan back): /etc/profile,
/etc/profile.d, /etc/bash.bashrc, /etc/environment and every user's ~/.bashrc,
~/.profile… run at each login; a download-and-run line, a base64 payload, a reverse
shell or an LD_PRELOAD there re-infects the server whenever someone logs in.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.analysis.startup import entry_clues
from hostmedic.engine import rule
from hostmedic.facts.security import StartupFacts
from hostmedic.model import Finding, Severity
from hostmedic.rules.security.common import clue_list, failed, line_evidence


@rule("security.shell_hook", category="security", runbook_ref="004 §恶意程序 Linux 3")
def shell_hook(security_startup: StartupFacts) -> Iterator[Finding]:
    """No line of a login profile downloads and runs code, decodes a payload or opens a shell."""
    facts = security_startup
    for entry in facts.entries:
        if entry.kind != "profile":
            continue
        clues = entry_clues(entry)
        if clues:
            yield failed(
                "security.shell_hook",
                Severity.CRITICAL,
                {
                    "path": entry.where.path,
                    "line_no": entry.where.line_no,
                    "user": entry.user or "-",
                    "clues": clue_list(clues),
                },
                [line_evidence(entry.where, facts.read_at)],
            )

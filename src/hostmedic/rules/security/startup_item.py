"""Rule: every startup item is a package's or looks like the operator's own.

Seed 004 §恶意程序 Linux 3: "``chkconfig --list``: are there abnormal startup services?
Also check /etc/rc.local for abnormal items and comment them out" — here for cron (system
and per-user), enabled systemd units (system and user), rc.local and enabled init scripts.
A line that downloads and runs, decodes base64, opens a reverse shell, mines, or runs
from /tmp or a trojan path is critical; a program no package owns is for the operator to
confirm ("was it added by your staff?").
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.analysis.startup import entry_clues, unpackaged
from hostmedic.engine import rule
from hostmedic.facts.security import StartupFacts
from hostmedic.model import Finding, Severity
from hostmedic.rules.security.common import clue_list, failed, line_evidence

KINDS = frozenset({"cron", "systemd", "rc_local", "init_d"})


@rule("security.startup_item", category="security", runbook_ref="004 §恶意程序 Linux 3")
def startup_item(security_startup: StartupFacts) -> Iterator[Finding]:
    """No cron job, enabled unit, rc.local line or init script runs a suspicious command or
    a program no package owns."""
    facts = security_startup
    for entry in facts.entries:
        if entry.kind not in KINDS:
            continue
        clues = entry_clues(entry)
        if not clues and not unpackaged(entry):
            continue
        yield failed(
            "security.startup_item",
            Severity.CRITICAL if clues else Severity.WARNING,
            {
                "kind": entry.kind,
                "path": entry.where.path,
                "line_no": entry.where.line_no,
                "user": entry.user or "-",
                "program": entry.program or "-",
                "clues": clue_list(clues),
            },
            [line_evidence(entry.where, facts.read_at)],
            "suspicious" if clues else "unpackaged",
        )

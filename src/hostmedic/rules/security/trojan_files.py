"""Rule: none of the seed's trojan files is on disk.

Seed 004 §排查病毒木马, "common Linux trojan cleanup": ``/usr/bin/.sshd``,
``/usr/bin/.swhd``, ``/usr/bin/bsd-port``, and ``/usr/bin/dpkgd/`` holding the original
ps / netstat / lsof / ss that the trojan replaced with its own.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.analysis.verdict import signatures
from hostmedic.engine import rule
from hostmedic.facts.security import FileFacts
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.security.common import failed, stamp


@rule("security.trojan_files", category="security", runbook_ref="004 §排查病毒木马")
def trojan_files(security_files: FileFacts) -> Iterator[Finding]:
    """/usr/bin/.sshd, /usr/bin/.swhd, /usr/bin/bsd-port and /usr/bin/dpkgd do not exist."""
    facts = security_files
    tools_dir = signatures()["suspicious"]["replaced_tools_dir"]
    for planted in facts.planted:
        mtime = stamp(planted.mtime)
        listing = f" contains: {', '.join(planted.entries)}" if planted.is_dir else ""
        yield failed(
            "security.trojan_files",
            Severity.CRITICAL,
            {"path": planted.path, "entries": ", ".join(planted.entries) or "-"},
            [
                Evidence(
                    planted.path,
                    f"{'directory' if planted.is_dir else 'file'}, {planted.size} bytes, "
                    f"modified {mtime}{listing}",
                    facts.read_at,
                )
            ],
            "tools_dir" if planted.path == tools_dir else "default",
        )

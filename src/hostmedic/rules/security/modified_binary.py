"""Rule: the commonly trojaned system binaries are the ones their packages installed.

Seed 004 §排查病毒木马: ``cp /usr/bin/dpkgd/ps /bin/ps`` — the trojan swaps ps, netstat,
lsof and ss (and rootkits also login, sshd, ls, top…) for its own. Each is compared with
the checksum its package shipped (dpkg's md5sums, ``rpm -V``); a shell script where an
ELF program belongs is a wrapper even when no checksum is recorded.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.errors import FactUnavailable
from hostmedic.facts.security import CHECK_MISMATCH, CHECK_OK, FileFacts
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.security.common import failed, stamp


@rule("security.modified_binary", category="security", runbook_ref="004 §排查病毒木马")
def modified_binary(security_files: FileFacts) -> Iterator[Finding]:
    """ps, netstat, ss, lsof, top, ls, login, sshd… match their package's checksums."""
    facts = security_files
    scripts = [b for b in facts.binaries if b.script and b.status != CHECK_OK]
    if facts.database is None and not scripts:
        raise FactUnavailable("no package checksums", key="reason.no_package_checksums")
    for check in facts.binaries:
        if check.status != CHECK_MISMATCH and check not in scripts:
            continue
        mtime = stamp(check.mtime)
        yield failed(
            "security.modified_binary",
            Severity.CRITICAL,
            {"path": check.path, "package": check.package or "-"},
            [
                Evidence(
                    check.path,
                    f"md5 {check.actual_md5 or '?'}, package {check.package or '-'} recorded "
                    f"{check.expected_md5 or '-'} ({facts.database or 'no database'}); "
                    f"{'a shell script' if check.script else 'a binary'}, modified {mtime}",
                    facts.read_at,
                )
            ],
            "script" if check.script else "default",
        )

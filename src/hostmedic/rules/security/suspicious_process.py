"""Rule: no running process hides where it came from.

Seed 004 §恶意程序 Linux 2 (``ps -aux``: abnormal processes, kill them) and §排查病毒木马
(``find /proc/ -name exe | … | grep deleted``: processes whose file was deleted, the trojan
paths). The signs are the bandwidth verdict's identity clues: a deleted or memory-only
executable, one in /tmp /var/tmp /dev/shm, on a trojan path or hidden in a system
directory, a name borrowed from a kernel thread or a system program. Processes running
the same program with the same signs (a miner's workers) make one finding.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.analysis.verdict import Clue, identity_clues
from hostmedic.engine import rule
from hostmedic.facts.security import ProcessFacts, RunningProcess
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.security.common import clue_list, failed
from hostmedic.rules.security.processes_common import process_evidence

MEMORY_ONLY = "clue.exe_memfd"  # alone, weaker: runc and some launchers run from memfd
SHOWN = 5
SHOWN_PIDS = 12


def _clues(process: RunningProcess) -> list[Clue]:
    clues = identity_clues(process.info)
    if process.exe_on_disk:  # deleted by a package upgrade: the new file is in place
        clues = [c for c in clues if c.key != "clue.exe_deleted"]
    return clues


@rule(
    "security.suspicious_process",
    category="security",
    runbook_ref="004 §恶意程序 Linux 2; §排查病毒木马",
)
def suspicious_process(security_processes: ProcessFacts) -> Iterator[Finding]:
    """Every process runs a file that exists on disk outside temporary directories and
    trojan paths, under a name that is its own."""
    facts = security_processes
    groups: dict[tuple[str, tuple[Clue, ...]], list[RunningProcess]] = {}
    for process in facts.processes:
        clues = _clues(process)
        if clues:
            key = (process.info.exe or "?", tuple(clues))
            groups.setdefault(key, []).append(process)
    for (exe, signs), processes in groups.items():
        first = processes[0].info
        memory_only = all(c.key == MEMORY_ONLY for c in signs)
        yield failed(
            "security.suspicious_process",
            Severity.WARNING if memory_only else Severity.CRITICAL,
            {
                "pid": first.pid,
                "pids": ", ".join(str(p.info.pid) for p in processes),
                "count": len(processes),
                "name": first.name,
                "exe": exe,
                "user": first.user or str(first.uid),
                "clues": clue_list(signs),
            },
            [process_evidence(p, facts.read_at) for p in processes[:SHOWN]],
            "memory" if memory_only else "default",
        )
    if facts.uninspected:
        shown = facts.uninspected[:SHOWN_PIDS]
        pids = ", ".join(map(str, shown)) + (" …" if len(facts.uninspected) > len(shown) else "")
        yield failed(
            "security.suspicious_process",
            Severity.INFO,
            {"count": len(facts.uninspected), "pids": pids},
            [Evidence("/proc/<pid>/exe", f"unreadable for pids {pids}", facts.read_at)],
            "uninspected",
        )

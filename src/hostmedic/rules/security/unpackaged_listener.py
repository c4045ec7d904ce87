"""Rule: every listening port belongs to an installed package's program.

Seed 004 §恶意进程 Linux 2-3: "use netstat -nap to see whether unauthorised ports are
listening, and ls -l /proc/$PID/exe for the file behind them". A program no package owns
may be yours (a Go binary, a jar) — the operator confirms; one that also looks planted is
critical. A socket whose process cannot be named at all is reported too.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.analysis.verdict import identity_clues
from hostmedic.engine import rule
from hostmedic.facts.bandwidth import format_endpoint
from hostmedic.facts.security import Listener, ProcessFacts
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.security.common import clue_list, failed, is_loopback
from hostmedic.rules.security.processes_common import process_evidence


def _ports(listeners: list[Listener]) -> str:
    return ", ".join(f"{x.protocol}/{format_endpoint(x.ip, x.port)}" for x in listeners)


@rule("security.unpackaged_listener", category="security", runbook_ref="004 §恶意进程 Linux 2-3")
def unpackaged_listener(security_processes: ProcessFacts) -> Iterator[Finding]:
    """Every listening socket is held by a program an installed package owns."""
    facts = security_processes
    by_pid: dict[int | None, list[Listener]] = {}
    for listener in facts.listeners:
        by_pid.setdefault(listener.pid, []).append(listener)
    processes = {p.info.pid: p for p in facts.processes}
    for pid, listeners in sorted(by_pid.items(), key=lambda kv: kv[0] or 0):
        exposed = any(not is_loopback(x.ip) for x in listeners)
        process = processes.get(pid) if pid is not None else None
        if process is None:
            yield failed(
                "security.unpackaged_listener",
                Severity.INFO,
                {"ports": _ports(listeners)},
                [
                    Evidence(
                        "sock_diag",
                        f"{_ports(listeners)}: no process holds these sockets "
                        "where /proc can show it",
                        facts.read_at,
                    )
                ],
                "owner_unknown",
            )
            continue
        info = process.info
        clues = identity_clues(info)
        unowned = info.package_checked and info.package is None
        if not clues and not unowned:
            continue
        severity = Severity.CRITICAL if clues else (Severity.WARNING if exposed else Severity.INFO)
        yield failed(
            "security.unpackaged_listener",
            severity,
            {
                "pid": info.pid,
                "name": info.name,
                "exe": info.exe or "?",
                "ports": _ports(listeners),
                "clues": clue_list(clues),
            },
            [process_evidence(process, facts.read_at)],
        )

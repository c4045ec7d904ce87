"""How the process rules cite a process: what ``ls -l /proc/$PID/exe`` and ``ps`` show."""

from __future__ import annotations

from hostmedic.facts.security import RunningProcess
from hostmedic.model import Evidence


def process_evidence(process: RunningProcess, read_at: float) -> Evidence:
    """pid, name, executable (deleted or not), user, parent and command line."""
    info = process.info
    exe = (info.exe or "?") + (" (deleted)" if info.exe_deleted else "")
    excerpt = (
        f"pid={info.pid} name={info.name} exe={exe} user={info.user or info.uid} "
        f"ppid={info.ppid} package={info.package or '-'} cmdline={' '.join(info.cmdline)[:160]!r}"
    )
    return Evidence(f"/proc/{info.pid}", excerpt, read_at)

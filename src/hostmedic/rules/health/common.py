"""Helpers shared by the health rules: one way to build a failed finding, and the
evidence line of a busy process (pid, executable, threads, CPU, memory)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hostmedic.facts.health import ProcessCpu
from hostmedic.model import Evidence, Finding, Severity, Status

SOURCE_PROC = "/proc/<pid>/stat, /proc/<pid>/task/*/stat, /proc/stat"


def failed(
    rule_id: str,
    severity: Severity,
    title_key: str,
    params: Mapping[str, Any],
    evidence: tuple[Evidence, ...],
    remedy_key: str | None = None,
) -> Finding:
    """A failed finding of a health rule (the engine fills in the runbook reference)."""
    return Finding(
        rule_id=rule_id,
        severity=severity,
        status=Status.FAILED,
        title_key=title_key,
        params=dict(params),
        evidence=evidence,
        remedy_key=remedy_key,
    )


def exe_of(p: ProcessCpu) -> str:
    info = p.info
    if info is None or info.exe is None:
        return "-"
    return info.exe + (" (deleted)" if info.exe_deleted else "")


def process_line(p: ProcessCpu, window_s: float) -> str:
    """``pid=… name=… exe=… user=… threads=… cpu=…% …`` for a process row."""
    info = p.info
    argv = " ".join(info.cmdline)[:200] if info else ""
    busy = ", ".join(f"tid {t.tid} {t.name} {t.cpu_percent:.0f}%" for t in p.busy_threads[:3])
    return (
        f"pid={p.pid} ppid={p.ppid} name={p.name} exe={exe_of(p)} "
        f"user={(info.user if info else None) or '?'} state={p.state} threads={p.threads} "
        f"cpu={p.cpu_percent:.1f}% children_cpu={p.children_cpu_percent:.1f}% "
        f"rss_bytes={p.rss_bytes} cmdline={argv!r} window_s={window_s:.1f}"
        + (f" busy_threads=[{busy}]" if busy else "")
    )


def percent_of(part: float, whole: float) -> float:
    return round(100 * part / whole, 1) if whole > 0 else 0.0

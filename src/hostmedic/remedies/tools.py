"""Run the system tools the remedies rely on (nft, systemctl, usermod): found on PATH,
bounded in time, and a missing tool or a failure is an :class:`ActionFailed` naming it."""

from __future__ import annotations

import shutil
import subprocess

from hostmedic.remedies.model import ActionFailed


def run_tool(
    tool: str,
    *args: str,
    script: str | None = None,
    timeout_s: float = 90.0,
    ok: tuple[int, ...] = (0,),
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """``tool args…`` (``script`` on stdin); its exit code must be in ``ok`` unless
    ``check`` is False."""
    path = shutil.which(tool)
    if path is None:
        raise ActionFailed("error.fix.tool_missing", tool=tool)
    shown = " ".join((tool, *args))
    try:
        done = subprocess.run(
            [path, *args],
            input=script,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise ActionFailed(
            "error.fix.tool_failed", tool=shown, detail=f"timeout {timeout_s} s"
        ) from exc
    if check and done.returncode not in ok:
        detail = done.stderr.strip() or f"exit {done.returncode}"
        raise ActionFailed("error.fix.tool_failed", tool=shown, detail=detail)
    return done

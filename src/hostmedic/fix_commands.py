"""The exact ``hostmedic fix`` command for a remedy, for findings to quote in their remedy.

A rule puts ``command_for(action, target)`` in its finding's params (as ``fix``) and the
remedy text says ``{fix}``; the operator copies the line. Kept free of imports so rules
stay pure and cheap.
"""

from __future__ import annotations

import shlex

ACTIONS = ("kill", "stop-unit", "block-ip", "lock-account", "disable-startup", "quarantine")


def command_for(action: str, target: object) -> str:
    """``command_for("kill", 4242)`` → ``hostmedic fix kill 4242`` (target shell-quoted)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown remedy action {action!r}")
    return f"hostmedic fix {action} {shlex.quote(str(target))}"

"""Lock an account (seed 004 §账户 Linux 3: "使用命令 usermod -L 用户名 禁用用户"), and unlock it.

Locking is what ``usermod -L`` does: a ``!`` in front of the password hash in
``/etc/shadow``; under ``--root`` the other disk's files are changed (``usermod
--prefix``). SSH keys still log in to a locked account: the plan says so. Refused: the
``root`` account and the operator's own account (``SUDO_USER``, the login name). Undo
restores the password field exactly (``usermod -U``; an account that had an empty
password gets it back with ``usermod -p ''``).
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import Any

from hostmedic.remedies.model import ActionFailed, FixContext, NothingToDo, Plan, Refused
from hostmedic.remedies.tools import run_tool

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?")


def shadow_field(shadow_text: str, user: str) -> str | None:
    """The password field of ``user`` in /etc/shadow text (None: no such line)."""
    for line in shadow_text.splitlines():
        fields = line.split(":")
        if len(fields) > 1 and fields[0] == user:
            return fields[1]
    return None


def _read(ctx: FixContext, path: str) -> str:
    try:
        with open(ctx.path(path), encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError as exc:
        raise ActionFailed("error.cannot_read", path=ctx.path(path), detail=exc.strerror) from exc


def _operator() -> set[str]:
    names = {os.environ.get("SUDO_USER", "")}
    with contextlib.suppress(OSError):  # no controlling terminal (cron, CI): no login name
        names.add(os.getlogin())
    return {n for n in names if n and n != "root"}


def _usermod(ctx: FixContext, *args: str) -> None:
    run_tool("usermod", *([] if ctx.live else ["--prefix", ctx.root]), *args, timeout_s=60)


class LockAccount:
    """``hostmedic fix lock-account USER``; undone by unlocking."""

    name = "lock-account"
    reversible = True

    def plan(self, target: str, ctx: FixContext) -> Plan:
        if not _NAME.fullmatch(target):
            raise Refused("error.fix.bad_user", user=target)
        if target == "root":
            raise Refused("error.fix.lock_root")
        if target in _operator():
            raise Refused("error.fix.lock_self", user=target)
        field = shadow_field(_read(ctx, "/etc/shadow"), target)
        if field is None:
            raise Refused("error.fix.no_user", user=target, path=ctx.path("/etc/shadow"))
        if field.startswith("!"):
            raise NothingToDo("ui.fix.nothing.already_locked", user=target)
        before = {"user": target, "password_was_empty": field == ""}
        params = {"user": target, "shadow": ctx.path("/etc/shadow")}
        notes = [("ui.fix.note.lock_keys", params)]
        return Plan(self.name, target, [("ui.fix.step.lock", params)], before, notes=notes)

    def apply(self, plan: Plan, ctx: FixContext) -> dict[str, Any]:
        _usermod(ctx, "-L", plan.before["user"])
        field = shadow_field(_read(ctx, "/etc/shadow"), plan.before["user"]) or ""
        if not field.startswith("!"):
            raise ActionFailed("error.fix.not_applied", target=plan.before["user"])
        return {"locked": True}

    def plan_undo(self, before: dict[str, Any], ctx: FixContext) -> Plan:
        params = {"user": before["user"], "shadow": ctx.path("/etc/shadow")}
        return Plan(self.name, before["user"], [("ui.fix.step.unlock", params)], before)

    def undo(self, before: dict[str, Any], ctx: FixContext) -> dict[str, Any]:
        user = before["user"]
        field = shadow_field(_read(ctx, "/etc/shadow"), user)
        if field is None:
            raise ActionFailed("error.fix.no_user", user=user, path=ctx.path("/etc/shadow"))
        if not field.startswith("!"):
            return {"unlocked": False}  # the lock never happened, or was lifted by hand
        if before.get("password_was_empty"):
            _usermod(ctx, "-p", "", user)
        else:
            _usermod(ctx, "-U", user)
        return {"unlocked": True}

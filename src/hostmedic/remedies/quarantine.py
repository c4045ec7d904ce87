"""Quarantine a file (seed 004 §恶意进程 Linux 3 "删除下对应的文件", §排查病毒木马
"chattr -i /usr/bin/.sshd; rm -f /usr/bin/.sshd"): move it out of the way instead of
deleting it, so it can be analysed — or put back.

The file goes to ``<state>/quarantine/<id>/`` (a rename on the same filesystem, else a copy
with owner, mode, times and extended attributes, then the original is removed); the copy
gets mode 000. The journal keeps the original path, its sha256 and all metadata, including
the immutable / append-only flags (cleared to move the file, as the seed's ``chattr -i``,
and set again on undo). Undo moves it back and restores the metadata.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
from typing import Any

from hostmedic.remedies.files import (
    FS_APPEND_FL,
    FS_IMMUTABLE_FL,
    apply_metadata,
    forbidden_path,
    metadata,
    set_flags,
)
from hostmedic.remedies.model import ActionFailed, FixContext, Plan, Refused

STUCK = FS_IMMUTABLE_FL | FS_APPEND_FL


def _sha256(path: str) -> str:
    """The file's sha256, read without touching its access time (O_NOATIME: the plan
    changes nothing, and the times are evidence)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NOATIME)
    except PermissionError:  # O_NOATIME needs ownership or CAP_FOWNER
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    digest = hashlib.sha256()
    with os.fdopen(fd, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _move(source: str, target: str, meta: dict[str, Any]) -> list[str]:
    """Rename, or copy with metadata then unlink across filesystems; returns the metadata
    that could not be carried over."""
    try:
        os.rename(source, target)
        return []
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    shutil.copyfile(source, target, follow_symlinks=False)
    with open(target, "rb") as f:
        os.fsync(f.fileno())
    missed = apply_metadata(target, meta)
    os.unlink(source)
    return missed


class Quarantine:
    """``hostmedic fix quarantine PATH``; undone by moving the file back."""

    name = "quarantine"
    reversible = True

    def plan(self, target: str, ctx: FixContext) -> Plan:
        if not target.startswith("/"):
            raise Refused("error.fix.bad_path", path=target)
        full = ctx.path(target)
        if forbidden_path(full, ctx):
            raise Refused("error.fix.forbidden_path", path=full)
        if not os.path.lexists(full):
            raise Refused("error.fix.no_file", path=full, detail="")
        if os.path.islink(full) or not os.path.isfile(full):
            raise Refused("error.fix.not_regular", path=full)
        meta = metadata(full)
        folder = os.path.join(ctx.state_dir, "quarantine", ctx.entry_id)
        before = {
            "path": target,
            "sha256": _sha256(full),
            "quarantined_to": os.path.join(folder, os.path.basename(target)),
            **meta,
        }
        params = {"path": full, "to": before["quarantined_to"], "sha256": before["sha256"]}
        steps = []
        if meta["flags"] & STUCK:
            steps.append(("ui.fix.step.clear_flags", params))
        steps += [("ui.fix.step.quarantine", params), ("ui.fix.step.chmod_000", params)]
        return Plan(self.name, target, steps, before)

    def apply(self, plan: Plan, ctx: FixContext) -> dict[str, Any]:
        before = plan.before
        full, target = ctx.path(before["path"]), before["quarantined_to"]
        os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
        try:
            if before["flags"] & STUCK:
                set_flags(full, before["flags"] & ~STUCK)
            missed = _move(full, target, before)
            os.chmod(target, 0)
        except OSError as exc:
            raise ActionFailed("error.fix.move_failed", path=full, detail=exc.strerror) from exc
        return {"quarantined_to": target, "metadata_not_kept": missed}

    def plan_undo(self, before: dict[str, Any], ctx: FixContext) -> Plan:
        full = ctx.path(before["path"])
        params = {"path": full, "to": before["quarantined_to"], "sha256": before["sha256"]}
        return Plan(self.name, before["path"], [("ui.fix.step.restore_file", params)], before)

    def undo(self, before: dict[str, Any], ctx: FixContext) -> dict[str, Any]:
        full, held = ctx.path(before["path"]), before["quarantined_to"]
        if not os.path.lexists(held):
            if os.path.lexists(full):
                return {"restored": False}  # the move never happened (interrupted run)
            raise ActionFailed("error.fix.quarantine_lost", path=held)
        if os.path.lexists(full):
            raise ActionFailed("error.fix.undo_conflict", path=full)
        try:
            missed = _move(held, full, before)
            missed += apply_metadata(full, before)
            if _sha256(full) != before["sha256"]:
                raise ActionFailed("error.fix.checksum_changed", path=full)
            if before["flags"] & STUCK:
                set_flags(full, before["flags"])  # last: an immutable file refuses utime
        except OSError as exc:
            raise ActionFailed("error.fix.move_failed", path=held, detail=exc.strerror) from exc
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(held))
        return {"restored": True, "metadata_not_kept": missed}

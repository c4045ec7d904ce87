"""Disable a startup item (seed 004 §恶意程序 Linux 3: "chkconfig 服务名 off … 检查
/etc/rc.local 中是否有异常的项目，如有请注释掉"), and undo it.

Two kinds of item:

* a systemd unit (``name.service``, ``.timer``, ``.socket``, ``.path``): ``systemctl
  disable`` (``--root`` for another disk; it works on files when systemd is not running).
  The symlinks it removed are recorded and undo recreates exactly those.
* a line of a file (``/etc/crontab:12``, ``/var/spool/cron/crontabs/root:3``,
  ``/etc/rc.local:5``): commented out with a marker naming the journal entry. The file's
  bytes before the change are journaled; undo puts them back exactly when the file was not
  edited since, else it restores just the marked line.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Any

from hostmedic.remedies.files import FileState, forbidden_path, read_state, write_like
from hostmedic.remedies.model import ActionFailed, FixContext, NothingToDo, Plan, Refused
from hostmedic.remedies.process import systemd_running
from hostmedic.remedies.tools import run_tool

UNIT_SUFFIXES = (".service", ".timer", ".socket", ".path")
UNIT_DIR = "/etc/systemd/system"
MAX_FILE_BYTES = 4 << 20
_UNIT = re.compile(r"[A-Za-z0-9:_.@\\-]+")


def marker(entry_id: str) -> str:
    """The comment put in front of a disabled line."""
    return f"#hostmedic-disabled {entry_id}# "


def _links(root_dir: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for folder, _dirs, files in os.walk(root_dir):
        for name in files:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                found[path] = os.readlink(path)
    return found


def _systemctl(ctx: FixContext, *args: str) -> None:
    run_tool("systemctl", *([] if ctx.live else [f"--root={ctx.root}"]), *args)


def _relative(path: str, ctx: FixContext) -> str:
    return "/" + os.path.relpath(path, ctx.root) if not ctx.live else path


def _plan_unit(unit: str, ctx: FixContext) -> Plan:
    if not _UNIT.fullmatch(unit):
        raise Refused("error.fix.bad_item", item=unit)
    # What ``systemctl disable`` removes: the unit's links in .wants/.requires folders and
    # its aliases. Recorded before acting, so an interrupted run can be undone too.
    links = {
        _relative(path, ctx): target
        for path, target in _links(ctx.path(UNIT_DIR)).items()
        if unit in (os.path.basename(path), os.path.basename(target))
    }
    if not any(os.path.basename(p) == unit for p in links):
        raise NothingToDo("ui.fix.nothing.unit_not_enabled", unit=unit)
    before = {"kind": "unit", "unit": unit, "links": sorted([p, t] for p, t in links.items())}
    params = {"unit": unit, "links": ", ".join(sorted(ctx.path(p) for p in links))}
    return Plan("disable-startup", unit, [("ui.fix.step.disable_unit", params)], before)


def _plan_line(target: str, ctx: FixContext) -> Plan:
    path, _, number = target.rpartition(":")
    if not path.startswith("/") or not number.isdigit() or int(number) < 1:
        raise Refused("error.fix.bad_item", item=target)
    full = ctx.path(path)
    if forbidden_path(full, ctx):
        raise Refused("error.fix.forbidden_path", path=full)
    state = read_state(full, MAX_FILE_BYTES)
    lines = state.data.splitlines(keepends=True)
    if int(number) > len(lines):
        raise Refused("error.fix.no_line", path=full, line=int(number), lines=len(lines))
    shown = lines[int(number) - 1].decode("utf-8", "replace").rstrip("\r\n")
    if not shown.strip():
        raise Refused("error.fix.empty_line", path=full, line=int(number))
    if shown.lstrip().startswith("#"):
        raise NothingToDo("ui.fix.nothing.line_commented", path=full, line=int(number))
    before = {
        "kind": "line",
        "path": path,
        "line": int(number),
        "text": shown,
        "sha256_before": hashlib.sha256(state.data).hexdigest(),
    }
    params = {"path": full, "line": int(number), "text": shown, "marker": marker(ctx.entry_id)}
    return Plan("disable-startup", target, [("ui.fix.step.comment_line", params)], before)


def _restore_line(full: str, before: dict[str, Any], entry_id: str) -> dict[str, Any]:
    """Take the marker off the lines that carry it: those lines get their exact bytes back,
    and the rest of the file (edited meanwhile or not) stays as it is."""
    state = read_state(full, MAX_FILE_BYTES)
    tag = marker(entry_id).encode()
    lines = state.data.splitlines(keepends=True)
    if not any(line.startswith(tag) for line in lines):
        return {"restored": "nothing"}  # the comment never went in, or was removed by hand
    data = b"".join(line[len(tag) :] if line.startswith(tag) else line for line in lines)
    write_like(full, state, data)
    exact = hashlib.sha256(data).hexdigest() == before["sha256_before"]
    return {"restored": "file" if exact else "line"}


class DisableStartup:
    """``hostmedic fix disable-startup UNIT | FILE:LINE``."""

    name = "disable-startup"
    reversible = True

    def plan(self, target: str, ctx: FixContext) -> Plan:
        if target.endswith(UNIT_SUFFIXES) and "/" not in target:
            return _plan_unit(target, ctx)
        return _plan_line(target, ctx)

    def apply(self, plan: Plan, ctx: FixContext) -> dict[str, Any]:
        before = plan.before
        if before["kind"] == "unit":
            _systemctl(ctx, "disable", before["unit"])
            gone = [p for p, _ in before["links"] if not os.path.lexists(ctx.path(p))]
            return {"removed_links": gone}
        full = ctx.path(before["path"])
        state: FileState = read_state(full, MAX_FILE_BYTES)
        if hashlib.sha256(state.data).hexdigest() != before["sha256_before"]:
            raise ActionFailed("error.fix.changed_meanwhile", path=full)
        lines = state.data.splitlines(keepends=True)
        lines[before["line"] - 1] = marker(ctx.entry_id).encode() + lines[before["line"] - 1]
        write_like(full, state, b"".join(lines))
        return {"commented": before["line"]}

    def plan_undo(self, before: dict[str, Any], ctx: FixContext) -> Plan:
        if before["kind"] == "unit":
            params = {"unit": before["unit"]}
            return Plan(self.name, before["unit"], [("ui.fix.step.enable_unit", params)], before)
        full = ctx.path(before["path"])
        params = {"path": full, "line": before["line"], "text": before["text"]}
        return Plan(self.name, full, [("ui.fix.step.uncomment_line", params)], before)

    def undo(self, before: dict[str, Any], ctx: FixContext) -> dict[str, Any]:
        if before["kind"] == "line":
            return _restore_line(ctx.path(before["path"]), before, ctx.entry_id)
        recreated = []
        for relative, target in before["links"]:
            path = ctx.path(relative)
            if os.path.lexists(path):
                if os.path.islink(path) and os.readlink(path) == target:
                    continue
                raise ActionFailed("error.fix.undo_conflict", path=path)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.symlink(target, path)
            recreated.append(path)
        if ctx.live and systemd_running():
            _systemctl(ctx, "daemon-reload")
        return {"recreated_links": recreated}

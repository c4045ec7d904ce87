"""Stop a process (seed 004 §恶意程序 Linux 2: "异常进程可以使用 kill 命令关闭掉") or the
systemd unit that runs it.

``kill`` holds a pidfd from the moment it checks the process, so the signal can only reach
that process, never a newcomer that reused its pid. It refuses pid 1, kernel threads and
hostmedic itself or its ancestors (the operator's own shell and session). A killed process
cannot be brought back; the journal says so and keeps its command line. ``stop-unit`` is
undone by starting the unit again.
"""

from __future__ import annotations

import os
import select
import signal
from typing import Any

from hostmedic.collectors.procfs import read_ppid, read_process_info
from hostmedic.remedies.model import (
    ActionFailed,
    FixContext,
    NothingToDo,
    Plan,
    Refused,
    require_live,
)
from hostmedic.remedies.tools import run_tool

PF_KTHREAD = 0x00200000
SIGNALS = {"TERM": signal.SIGTERM, "KILL": signal.SIGKILL}
# Units whose stop would cut the operator off or take the machine down.
PROTECTED_UNITS = (
    *("ssh.service", "sshd.service", "dbus.service", "dbus-broker.service"),
    *("init.scope", "-.mount", "-.slice"),
)
PROTECTED_PREFIXES = ("systemd-",)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # fields after the command name, which may hold spaces and parentheses
    return raw[raw.rfind(b")") + 2 :].decode("ascii", "replace").split()


def _ancestors(pid: int) -> set[int]:
    found: set[int] = set()
    while pid > 1 and pid not in found:
        found.add(pid)
        pid = read_ppid(pid) or 0
    return found


def _unit_of(cgroup: str | None) -> str | None:
    last = (cgroup or "").rstrip("/").rsplit("/", 1)[-1]
    return last if last.endswith(".service") else None


class Kill:
    """``hostmedic fix kill PID [--signal KILL]``."""

    name = "kill"
    reversible = False

    def plan(self, target: str, ctx: FixContext) -> Plan:
        require_live(ctx, self.name)
        if not target.isdigit():
            raise Refused("error.fix.bad_pid", target=target)
        pid = int(target)
        if pid <= 1:
            raise Refused("error.fix.pid_one", pid=pid)
        if pid in _ancestors(os.getpid()):
            raise Refused("error.fix.kill_self", pid=pid)
        fields = _stat_fields(pid)
        if fields is None:
            raise Refused("error.fix.no_process", pid=pid)
        if pid == 2 or int(fields[6]) & PF_KTHREAD:
            raise Refused("error.fix.kernel_thread", pid=pid)
        info = read_process_info(pid)
        unit = _unit_of(info.cgroup)
        before = {
            "pid": pid,
            "name": info.name,
            "exe": info.exe,
            "exe_deleted": info.exe_deleted,
            "cmdline": list(info.cmdline),
            "user": info.user,
            "uid": info.uid,
            "start_ticks": int(fields[19]),
            "unit": unit,
            "signal": ctx.signal,
        }
        params = {"pid": pid, "name": info.name, "exe": info.exe or "?", "signal": ctx.signal}
        notes = [("ui.fix.note.kill_irreversible", {"cmdline": " ".join(info.cmdline) or "?"})]
        if unit:
            notes.append(("ui.fix.note.kill_unit", {"unit": unit}))
        return Plan(self.name, target, [("ui.fix.step.kill", params)], before, False, notes)

    def apply(self, plan: Plan, ctx: FixContext) -> dict[str, Any]:
        pid = int(plan.before["pid"])
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError as exc:
            raise ActionFailed("error.fix.no_process", pid=pid) from exc
        try:
            fields = _stat_fields(pid)
            if fields is None or int(fields[19]) != plan.before["start_ticks"]:
                raise ActionFailed("error.fix.pid_reused", pid=pid)
            signal.pidfd_send_signal(pidfd, SIGNALS[ctx.signal])
            exited = bool(select.select([pidfd], [], [], ctx.wait_s)[0])
        except ProcessLookupError:
            exited = True
        finally:
            os.close(pidfd)
        return {"signal": ctx.signal, "exited": exited}

    def plan_undo(self, before: dict[str, Any], ctx: FixContext) -> Plan:
        raise Refused(
            "error.fix.irreversible",
            pid=before.get("pid"),
            cmdline=" ".join(before.get("cmdline") or []) or "?",
        )

    def undo(self, before: dict[str, Any], ctx: FixContext) -> dict[str, Any]:
        self.plan_undo(before, ctx)  # always refuses: a killed process cannot come back
        return {}


def systemd_running() -> bool:
    """Whether systemd is the init system (what sd_booted() checks)."""
    return os.path.isdir("/run/systemd/system")


def _systemctl(*args: str) -> str:
    # exit 3 is "inactive" for is-active: an answer, not a failure
    return run_tool("systemctl", *args, ok=(0, 3)).stdout


def _own_unit() -> str | None:
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as f:
            return _unit_of(f.read().strip().splitlines()[-1].split(":", 2)[-1])
    except (OSError, IndexError):
        return None


class StopUnit:
    """``hostmedic fix stop-unit UNIT``; undone by starting it again."""

    name = "stop-unit"
    reversible = True

    def plan(self, target: str, ctx: FixContext) -> Plan:
        require_live(ctx, self.name)
        if not systemd_running():
            raise Refused("error.fix.no_systemd")
        unit = target if "." in target else f"{target}.service"
        if unit in PROTECTED_UNITS or unit.startswith(PROTECTED_PREFIXES) or unit == _own_unit():
            raise Refused("error.fix.protected_unit", unit=unit)
        state = dict(
            line.split("=", 1)
            for line in _systemctl("show", unit, "-p", "ActiveState,SubState,LoadState")
            .strip()
            .splitlines()
            if "=" in line
        )
        if state.get("LoadState") == "not-found":
            raise Refused("error.fix.no_unit", unit=unit)
        if state.get("ActiveState") not in ("active", "activating", "reloading"):
            raise NothingToDo("ui.fix.nothing.unit_inactive", unit=unit)
        before = {"unit": unit, "active_state": state.get("ActiveState")}
        return Plan(self.name, unit, [("ui.fix.step.stop_unit", {"unit": unit})], before)

    def apply(self, plan: Plan, ctx: FixContext) -> dict[str, Any]:
        _systemctl("stop", plan.before["unit"])
        return {"active_state": _systemctl("is-active", plan.before["unit"]).strip()}

    def plan_undo(self, before: dict[str, Any], ctx: FixContext) -> Plan:
        require_live(ctx, self.name)
        return Plan(self.name, before["unit"], [("ui.fix.step.start_unit", before)], before)

    def undo(self, before: dict[str, Any], ctx: FixContext) -> dict[str, Any]:
        _systemctl("start", before["unit"])
        return {"active_state": _systemctl("is-active", before["unit"]).strip()}

"""Seed 004 mount section: a mount that hides a non-empty directory (scenario 1), and
who keeps a mount busy so that ``umount`` fails (scenario 2, ``fuser -cu``).

Hidden directories are listed by :mod:`.underneath` in a private mount namespace
(needs CAP_SYS_ADMIN and util-linux ``unshare``); the machine's own mount table is never
touched. Busy holders come from one pass over /proc (:mod:`.openfiles`), plus mounts
stacked below and loop devices backed by a file on the mount.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from hostmedic.collectors.health.mountinfo import Mount, top_down
from hostmedic.errors import FactUnavailable, ParseError
from hostmedic.facts.health_storage import BusyMount, HiddenDir, Holder

UNSHARE_TIMEOUT_S = 20.0


def parse_underneath(text: str, mounts: list[Mount]) -> tuple[list[HiddenDir], int]:
    """The helper's JSON → the non-empty hidden directories and how many were checked."""
    try:
        rows = json.loads(text)
    except ValueError as exc:
        raise ParseError(f"underneath helper output: {text[:80]!r}") from exc
    if not isinstance(rows, list):
        raise ParseError("underneath helper output is not a list")
    by_point = {m.mount_point: m for m in mounts}
    hidden, checked = [], 0
    for row in rows:
        if not isinstance(row, dict) or "error" in row or "entries" not in row:
            continue
        checked += 1
        mount = by_point.get(str(row.get("mount_point")))
        files = row.get("files", 0)
        if mount is None or not isinstance(files, int) or files <= 0:
            continue  # empty, or only device nodes and empty directories
        hidden.append(
            HiddenDir(
                mount_point=mount.mount_point,
                source=mount.source,
                fstype=mount.fstype,
                entries=int(row["entries"]),
                files=files,
                sample=tuple(str(s) for s in row.get("sample", []))[:5],
                hidden_bytes=int(row.get("hidden_bytes", 0)),
                truncated=bool(row.get("truncated", False)),
            )
        )
    return hidden, checked


def candidates(mounts: list[Mount]) -> list[str]:
    """Mount points to look under: every directory mount but ``/``, children first (a
    parent is still attached while its child is examined) and the top of a stack before
    the one below it."""
    points = []
    for m in top_down(mounts):
        if m.mount_point == "/" or not os.path.isdir(m.mount_point):
            continue
        points.append(m.mount_point)
    return points


def look_underneath(mounts: list[Mount]) -> tuple[list[HiddenDir], int]:
    """Run the helper in a private mount namespace; FactUnavailable when it cannot."""
    if os.geteuid() != 0:
        raise FactUnavailable("needs CAP_SYS_ADMIN", key="reason.health.needs_root_mounts")
    unshare = shutil.which("unshare")
    if unshare is None:
        raise FactUnavailable("unshare not found", key="reason.health.no_unshare")
    argv = [unshare, "--mount", "--propagation", "private", "--", sys.executable, "-m"]
    argv.append("hostmedic.collectors.health.underneath")
    try:
        done = subprocess.run(
            argv,
            input=json.dumps(candidates(mounts)),
            capture_output=True,
            text=True,
            timeout=UNSHARE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise FactUnavailable(str(exc), key="reason.health.no_unshare") from exc
    if done.returncode != 0:
        raise FactUnavailable(done.stderr.strip()[-200:], key="reason.health.no_unshare")
    try:
        return parse_underneath(done.stdout, mounts)
    except ParseError as exc:
        raise FactUnavailable(str(exc), key="reason.health.no_unshare") from exc


def resolve(asked: str, mounts: list[Mount]) -> Mount | None:
    """The mount whose mount point is ``asked`` (after resolving symlinks); the top one
    when several are stacked there. None when nothing is mounted exactly there."""
    path = os.path.realpath(asked)
    found = [m for m in top_down(mounts) if m.mount_point == path]
    return found[0] if found else None


def _loop_backing(sys_block: str = "/sys/block") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    try:
        names = [n for n in os.listdir(sys_block) if n.startswith("loop")]
    except OSError:
        return out
    for name in names:
        try:
            with open(f"{sys_block}/{name}/loop/backing_file", encoding="utf-8") as f:
                out.append((f"/dev/{name}", f.read().strip()))
        except OSError:
            continue
    return out


def _under(path: str, point: str) -> bool:
    return path == point or path.startswith(point.rstrip("/") + "/")


def busy_mount(
    asked: str, mount: Mount | None, mounts: list[Mount], processes: list[Holder]
) -> BusyMount:
    """Everything that keeps ``mount`` busy: processes (one line per process and kind of
    use), mounts below it, and loop devices whose backing file lives on it."""
    if mount is None:
        return BusyMount(asked, None, "", "", ())
    holders: list[Holder] = []
    seen: set[tuple[int | None, str]] = set()
    for h in processes:
        if (h.pid, h.kind) not in seen:
            seen.add((h.pid, h.kind))
            holders.append(h)
    for m in mounts:
        below = m.mount_point != mount.mount_point and _under(m.mount_point, mount.mount_point)
        if below:
            holders.append(Holder("mount", None, m.source, None, m.mount_point))
    for device, backing in _loop_backing():
        if _under(backing.removesuffix(" (deleted)"), mount.mount_point):
            holders.append(Holder("loop", None, device, None, backing))
    return BusyMount(asked, mount.mount_point, mount.source, mount.fstype, tuple(holders))

"""Disk space and inodes per real filesystem (``df -h`` / ``df -i``), and the big,
recently modified files under the usual log directories — what fills a disk (seed 004:
是否是磁盘空间占满了导致).

The log walk is bounded by an entry count and a time budget and never follows symlinks;
sizes are re-read at the end of the window so a file being written fast shows its growth.
"""

from __future__ import annotations

import glob
import os
import time
from dataclasses import dataclass

from hostmedic.collectors.health.mountinfo import (
    Mount,
    containing_mount,
    health_data,
    is_pseudo,
    top_down,
)
from hostmedic.facts.health_storage import FilesystemUsage, LogFile
from hostmedic.settings_health import HealthSettings

TOP_LOGS = 15


def real_filesystems(mounts: list[Mount]) -> list[Mount]:
    """One mount per device (its shortest mount point), only the visible top of a stack,
    pseudo filesystems left out (an overlay only as ``/``)."""
    visible: dict[str, Mount] = {}
    for m in top_down(mounts):
        visible.setdefault(m.mount_point, m)
    seen: set[tuple[int, int]] = set()
    out = []
    for m in sorted(visible.values(), key=lambda x: (len(x.mount_point), x.mount_point)):
        if is_pseudo(m) and not (m.fstype == "overlay" and m.mount_point == "/"):
            continue
        if "ro" in m.options.split(","):
            continue  # nothing can be written there, so it cannot "fill up"
        if (m.major, m.minor) in seen:
            continue
        seen.add((m.major, m.minor))
        out.append(m)
    return out


def usage_of(m: Mount, path: str) -> FilesystemUsage | None:
    """``statvfs`` of a mount, as df computes it: used = blocks - free; available is what
    an unprivileged user can still write (root's reserve excluded)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    if st.f_blocks == 0:
        return None
    return FilesystemUsage(
        mount_point=m.mount_point,
        source=m.source,
        fstype=m.fstype,
        size_bytes=st.f_blocks * st.f_frsize,
        used_bytes=(st.f_blocks - st.f_bfree) * st.f_frsize,
        available_bytes=st.f_bavail * st.f_frsize,
        inodes_total=st.f_files,
        inodes_free=st.f_ffree,
    )


def filesystems(mounts: list[Mount], root: str = "/") -> list[FilesystemUsage]:
    """Usage of every real filesystem (under ``--root``: those mounted below it)."""
    out = []
    for m in real_filesystems(mounts):
        if root != "/" and not (m.mount_point + "/").startswith(root.rstrip("/") + "/"):
            continue
        row = usage_of(m, m.mount_point)
        if row is not None:
            out.append(row)
    return out


@dataclass
class LogWalk:
    """Candidates found by the walk, their sizes at the start of the window."""

    roots: list[str]
    found: dict[str, tuple[int, float]]  # path → (size, mtime)
    entries_seen: int
    truncated: bool


def log_roots(root: str = "/") -> list[str]:
    """The log directories that exist (globs expanded), under ``root``."""
    out = []
    for pattern in health_data()["logs"]["roots"]:
        for path in sorted(glob.glob(os.path.join(root, pattern.lstrip("/")))):
            if os.path.isdir(path) and not os.path.islink(path) and path not in out:
                out.append(path)
    return out


def walk_logs(roots: list[str], settings: HealthSettings, now: float) -> LogWalk:
    """Big files modified within ``log_recent_hours``, depth-first, within the budgets."""
    min_bytes = int(health_data()["logs"]["min_bytes"])
    since = now - settings.log_recent_hours * 3600
    deadline = time.monotonic() + settings.log_walk_max_s
    found: dict[str, tuple[int, float]] = {}
    seen, truncated = 0, False
    stack = list(reversed(roots))
    visited: set[str] = set()
    while stack:
        directory = stack.pop()
        if directory in visited:
            continue
        visited.add(directory)
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            seen += 1
            if seen > settings.log_walk_max_entries or time.monotonic() > deadline:
                return LogWalk(roots, found, seen, True)
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    if st.st_size >= min_bytes and st.st_mtime >= since:
                        found[entry.path] = (st.st_size, st.st_mtime)
            except OSError:
                continue
    return LogWalk(roots, found, seen, truncated)


def log_files(walk: LogWalk, mounts: list[Mount], window_s: float) -> list[LogFile]:
    """The biggest candidates, re-measured now: growth over the window."""
    rows = []
    for path, (size, mtime) in sorted(walk.found.items(), key=lambda kv: -kv[1][0])[:TOP_LOGS]:
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            continue
        mount = containing_mount(mounts, os.path.realpath(path))
        rows.append(
            LogFile(
                path=path,
                mount_point=mount.mount_point if mount else "?",
                size_bytes=st.st_size,
                mtime=max(st.st_mtime, mtime),
                grown_bytes=max(st.st_size - size, 0),
                window_s=round(window_s, 2),
            )
        )
    return rows

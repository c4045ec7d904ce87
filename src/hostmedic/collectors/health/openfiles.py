"""What processes hold open, read from /proc: deleted files that still take disk space
(``lsof +L1``) and everything that keeps a mount busy (``fuser -cu``: cwd, root, exe,
open files, mapped files).

One pass over ``/proc/<pid>``. Processes that vanish are skipped; those we may not read
(another user's, without root) are counted so the report can say what it did not see.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field

from hostmedic.collectors.health.mountinfo import Mount
from hostmedic.collectors.procfs import parse_status_uid
from hostmedic.facts.health_storage import DeletedOpenFile, Holder

_DELETED = " (deleted)"
# deleted "files" that are really shared memory, not disk space
_NOT_FILES = ("/memfd:", "/SYSV", "/dev/zero", "/anon_hugepage", "/dev/shm/.", "/[")


@dataclass
class ProcessScan:
    deleted: list[DeletedOpenFile] = field(default_factory=list)
    holders: dict[int, list[Holder]] = field(default_factory=dict)  # mount id → holders
    unreadable: int = 0


def _under(path: str, point: str) -> bool:
    return point == "/" or path == point or path.startswith(point.rstrip("/") + "/")


def _dev(m: Mount) -> int:
    return os.makedev(m.major, m.minor)


def parse_fdinfo_mnt_id(text: str) -> int | None:
    """``mnt_id`` from ``/proc/<pid>/fdinfo/<fd>`` (Linux ≥ 3.15)."""
    for line in text.splitlines():
        if line.startswith("mnt_id:"):
            value = line.split(":", 1)[1].strip()
            return int(value) if value.isdigit() else None
    return None


def parse_maps_paths(text: str) -> set[tuple[int, int, str]]:
    """``/proc/<pid>/maps`` → the (major, minor, path) of every file-backed mapping."""
    out = set()
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 6 or not parts[5].startswith("/"):
            continue
        major, _, minor = parts[3].partition(":")
        try:
            out.add((int(major, 16), int(minor, 16), parts[5].removesuffix(_DELETED)))
        except ValueError:
            continue
    return out


class _Proc:
    """One process being scanned: its name and user, read once."""

    def __init__(self, base: str, pid: int) -> None:
        self.base, self.pid = base, pid
        try:
            with open(f"{base}/comm", "rb") as f:
                self.name = f.read().decode("utf-8", "replace").rstrip("\n")
            with open(f"{base}/status", "rb") as f:
                uid = parse_status_uid(f.read().decode("utf-8", "replace"))
        except OSError:
            self.name, uid = "?", None
        self.user = _user(uid)


def _user(uid: int | None) -> str | None:
    if uid is None:
        return None
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _link_on(base: str, link: str, m: Mount) -> str | None:
    """The target of /proc/<pid>/<link> when it lies on mount ``m``."""
    try:
        target = os.readlink(f"{base}/{link}")
        on_dev = os.stat(f"{base}/{link}").st_dev == _dev(m)
    except OSError:
        return None
    target = target.removesuffix(_DELETED)
    return target if on_dev and _under(target, m.mount_point) else None


def _fd_on(base: str, fd: str, target: str, m: Mount) -> bool:
    if not _under(target.removesuffix(_DELETED), m.mount_point):
        return False
    try:
        with open(f"{base}/fdinfo/{fd}", "rb") as f:
            mnt_id = parse_fdinfo_mnt_id(f.read().decode("ascii", "replace"))
    except OSError:
        return False
    return mnt_id == m.mount_id


def _deleted_file(p: _Proc, fd: str, target: str, mounts: list[Mount]) -> DeletedOpenFile | None:
    path = target[: -len(_DELETED)]
    if not path.startswith("/") or path.startswith(_NOT_FILES):
        return None
    try:
        st = os.stat(f"{p.base}/fd/{fd}")
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 0:
        return None
    point = next(
        (
            m.mount_point
            for m in mounts
            if (m.major, m.minor) == (os.major(st.st_dev), os.minor(st.st_dev))
        ),
        "?",
    )
    return DeletedOpenFile(p.pid, p.name, p.user, int(fd), path, st.st_blocks * 512, point)


def _scan_one(p: _Proc, scan: ProcessScan, mounts: list[Mount], busy: list[Mount]) -> None:
    for m in busy:
        found = scan.holders.setdefault(m.mount_id, [])
        for link in ("cwd", "root", "exe"):
            path = _link_on(p.base, link, m)
            if path is not None:
                found.append(Holder(link, p.pid, p.name, p.user, path))
    try:
        fds = os.listdir(f"{p.base}/fd")
    except OSError:
        scan.unreadable += 1
        return
    for fd in fds:
        try:
            target = os.readlink(f"{p.base}/fd/{fd}")
        except OSError:
            continue
        if target.endswith(_DELETED):
            row = _deleted_file(p, fd, target, mounts)
            if row is not None:
                scan.deleted.append(row)
        for m in busy:
            if _fd_on(p.base, fd, target, m):
                scan.holders[m.mount_id].append(Holder("fd", p.pid, p.name, p.user, target))
    if busy:
        _scan_maps(p, scan, busy)


def _scan_maps(p: _Proc, scan: ProcessScan, busy: list[Mount]) -> None:
    try:
        with open(f"{p.base}/maps", "rb") as f:
            mapped = parse_maps_paths(f.read().decode("utf-8", "replace"))
    except OSError:
        return
    for m in busy:
        for major, minor, path in sorted(mapped):
            if (major, minor) == (m.major, m.minor) and _under(path, m.mount_point):
                scan.holders[m.mount_id].append(Holder("mmap", p.pid, p.name, p.user, path))
                break  # one mapping names the process; fuser shows it once too


def scan_processes(proc_root: str, mounts: list[Mount], busy: list[Mount]) -> ProcessScan:
    """Deleted-but-open files of every process, and the holders of the ``busy`` mounts."""
    scan = ProcessScan()
    own = os.getpid()
    for name in os.listdir(proc_root):
        if not name.isdigit() or int(name) == own:
            continue
        _scan_one(_Proc(f"{proc_root}/{name}", int(name)), scan, mounts, busy)
    return scan

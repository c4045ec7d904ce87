"""Processes as /proc shows them: which process owns a socket inode, and what each process is.

The inode → pid map is the expensive part of per-process accounting (nethogs rebuilds it
for every new connection). Here it is rebuilt at most once per tick, and only when a
socket that actually carried traffic has an owner we do not know yet.
The proc root is a parameter so tests can point it at a recorded tree.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from hostmedic.facts.bandwidth import ProcessInfo

_SOCKET_PREFIX = "socket:["
OWNERLESS_LIMIT = 100_000
# partial scans only add inodes; past this many, the next lookup rescans (and so prunes)
OWNERS_LIMIT = 500_000


class SocketOwners:
    """Maps socket inodes to the pid that holds them, refreshing lazily."""

    def __init__(self, proc_root: str = "/proc") -> None:
        self.proc_root = proc_root
        self._owners: dict[int, list[int]] = {}
        # inodes a full scan did not find (kernel-owned sockets, or closed meanwhile): they
        # must not trigger a rescan on every tick
        self._ownerless: set[int] = set()
        self._refreshed_this_tick = False
        self._known_pids: set[int] = set()
        self.scans = 0

    def begin_tick(self) -> None:
        """Allow one more rescan (call once per sampling tick)."""
        self._refreshed_this_tick = False

    def _pids(self) -> set[int]:
        try:
            return {int(n) for n in os.listdir(self.proc_root) if n.isdigit()}
        except OSError:
            return set()

    def _scan(self, pids: Iterable[int], owners: dict[int, list[int]]) -> None:
        """Add the socket inodes held by ``pids`` to ``owners`` (vanished/denied: skipped)."""
        for pid in pids:
            fd_dir = f"{self.proc_root}/{pid}/fd"
            try:
                fds = os.listdir(fd_dir)
            except OSError:  # vanished, or not ours without root
                continue
            for fd in fds:
                try:
                    target = os.readlink(f"{fd_dir}/{fd}")
                except OSError:
                    continue
                if target.startswith(_SOCKET_PREFIX):
                    holders = owners.setdefault(int(target[8:-1]), [])
                    if pid not in holders:
                        holders.append(pid)

    def refresh(self) -> None:
        """Rescan every /proc/<pid>/fd."""
        owners: dict[int, list[int]] = {}
        self._known_pids = self._pids()
        self._scan(self._known_pids, owners)
        self._owners = owners
        if len(self._ownerless) > OWNERLESS_LIMIT:  # bounded memory; costs one extra scan
            self._ownerless.clear()
        self._refreshed_this_tick = True
        self.scans += 1

    def holders(self, inode: int) -> list[int]:
        """Every pid known to hold the socket (a listener shared by pre-forked workers)."""
        return list(self._owners.get(inode, ()))

    def owners_of(self, inodes: Iterable[int], hints: Iterable[int] = ()) -> dict[int, int]:
        """Owner pid of each inode that has one.

        Unknown inodes are first looked for in the ``hints`` (pids likely to own them: the
        connect tracer's pid, the holders of the accepting listener) and in processes born
        since the last full scan; only if some are still unknown is all of /proc rescanned,
        at most once per tick. A full scan costs ~5 µs per open fd on the host.
        """
        wanted = [i for i in inodes if i]
        unknown = [i for i in wanted if i not in self._owners and i not in self._ownerless]
        if unknown and self._known_pids and len(self._owners) < OWNERS_LIMIT:
            current = self._pids()
            likely = (set(hints) | (current - self._known_pids)) & current
            self._known_pids |= current
            self._scan(sorted(likely), self._owners)
            unknown = [i for i in unknown if i not in self._owners]
        if unknown and not self._refreshed_this_tick:
            self.refresh()
            self._ownerless.update(i for i in unknown if i not in self._owners)
        return {i: self._pick(self._owners[i]) for i in wanted if i in self._owners}

    def _pick(self, pids: list[int]) -> int:
        """When a socket is shared (fork, pre-forked servers), name the child, as lsof's
        last line would: a candidate whose parent is another candidate wins."""
        if len(pids) == 1:
            return pids[0]
        candidates = set(pids)
        children = [p for p in pids if read_ppid(p, self.proc_root) in candidates]
        return min(children or pids)


def read_ppid(pid: int, proc_root: str = "/proc") -> int | None:
    """Parent pid from /proc/<pid>/stat, or None when the process is gone."""
    try:
        with open(f"{proc_root}/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # comm may contain spaces and parentheses: fields start after the last ')'
    fields = stat[stat.rfind(b")") + 2 :].split()
    return int(fields[1]) if len(fields) > 1 else None


def _read_text(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return None


def parse_status_uid(status: str) -> int | None:
    """Real uid from /proc/<pid>/status text."""
    for line in status.splitlines():
        if line.startswith("Uid:"):
            parts = line.split()
            return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    return None


def _user_name(uid: int | None) -> str | None:
    if uid is None:
        return None
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def read_process_info(pid: int, proc_root: str = "/proc") -> ProcessInfo:
    """Everything the verdict needs about one process; ``gone=True`` if it has exited."""
    base = f"{proc_root}/{pid}"
    comm = _read_text(f"{base}/comm")
    if comm is None:
        return ProcessInfo(pid, "?", None, False, (), None, None, None, None, None, gone=True)
    try:
        exe: str | None = os.readlink(f"{base}/exe")
    except OSError:
        exe = None  # kernel thread, or not permitted
    deleted = exe is not None and exe.endswith(" (deleted)")
    if deleted and exe is not None:
        exe = exe[: -len(" (deleted)")]
    raw_cmdline = _read_text(f"{base}/cmdline") or ""
    cmdline = tuple(a for a in raw_cmdline.split("\0") if a)
    uid = parse_status_uid(_read_text(f"{base}/status") or "")
    try:
        netns = os.stat(f"{base}/ns/net").st_ino
    except OSError:
        netns = None
    cgroup = (_read_text(f"{base}/cgroup") or "").strip().splitlines()
    return ProcessInfo(
        pid=pid,
        name=comm.rstrip("\n"),
        exe=exe,
        exe_deleted=deleted,
        cmdline=cmdline,
        uid=uid,
        user=_user_name(uid),
        ppid=read_ppid(pid, proc_root),
        netns_inode=netns,
        cgroup=cgroup[-1].split(":", 2)[-1] if cgroup else None,
    )

"""Facts of the host-health runbook about storage, databases and the network edge
(seed 004: disk full, 挂载/umount busy, database lock-ups and connection limits, ping
loss to the gateway). Sizes are bytes, times Unix seconds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FilesystemUsage:
    """Space and inodes of one real filesystem (pseudo filesystems are left out)."""

    mount_point: str
    source: str
    fstype: str
    size_bytes: int
    used_bytes: int
    available_bytes: int
    inodes_total: int
    inodes_free: int


@dataclass(frozen=True, slots=True)
class LogFile:
    """A big file under a log directory, modified recently."""

    path: str
    mount_point: str
    size_bytes: int
    mtime: float
    grown_bytes: int
    window_s: float


@dataclass(frozen=True, slots=True)
class DiskFacts:
    filesystems: tuple[FilesystemUsage, ...]
    logs: tuple[LogFile, ...]
    log_roots: tuple[str, ...]
    log_entries_seen: int
    log_walk_truncated: bool
    read_at: float


@dataclass(frozen=True, slots=True)
class DeletedOpenFile:
    """A deleted file that a process still holds open (``lsof +L1``): its space is not
    freed until the process closes it."""

    pid: int
    name: str
    user: str | None
    fd: int
    path: str
    size_bytes: int
    mount_point: str


@dataclass(frozen=True, slots=True)
class DeletedFacts:
    files: tuple[DeletedOpenFile, ...]
    processes_unreadable: int
    read_at: float


@dataclass(frozen=True, slots=True)
class HiddenDir:
    """A mount point whose directory underneath holds entries the mount hides."""

    mount_point: str
    source: str
    fstype: str
    entries: int
    files: int
    sample: tuple[str, ...]
    hidden_bytes: int
    truncated: bool


@dataclass(frozen=True, slots=True)
class HiddenFacts:
    hidden: tuple[HiddenDir, ...]
    mounts_checked: int
    read_at: float


@dataclass(frozen=True, slots=True)
class Holder:
    """Something that keeps a mount busy: a process (how it uses the mount, like
    ``fuser -cu``: cwd, root, exe, fd, mmap), a mount below it, or a loop device."""

    kind: str
    pid: int | None
    name: str
    user: str | None
    path: str


@dataclass(frozen=True, slots=True)
class BusyMount:
    """One mount the operator named with ``--mount``."""

    asked: str
    mount_point: str | None
    source: str
    fstype: str
    holders: tuple[Holder, ...]


@dataclass(frozen=True, slots=True)
class BusyFacts:
    mounts: tuple[BusyMount, ...]
    processes_unreadable: int
    read_at: float


@dataclass(frozen=True, slots=True)
class LockWait:
    """A session waiting for a lock, and who blocks it when the server says."""

    session: str
    user: str
    database: str
    waited_s: float
    blocked_by: str
    query: str


@dataclass(frozen=True, slots=True)
class LogHits:
    """Lines of a log that match a pattern, with their range in the file's tail."""

    path: str
    first_line: int
    last_line: int
    count: int
    sample: str


@dataclass(frozen=True, slots=True)
class DatabaseServer:
    """A running MySQL/MariaDB or PostgreSQL server and what it said when asked locally."""

    kind: str
    pid: int
    name: str
    endpoint: str
    reachable: bool
    reason_key: str | None
    reason_detail: str
    connections: int | None
    max_connections: int | None
    reserved_connections: int
    refused_connections: int | None
    peak_connections: int | None
    lock_waits: tuple[LockWait, ...]
    log_hits: tuple[LogHits, ...]


@dataclass(frozen=True, slots=True)
class DatabaseFacts:
    servers: tuple[DatabaseServer, ...]
    read_at: float


@dataclass(frozen=True, slots=True)
class PingSummary:
    """What ``ping`` printed at its end: counts, loss and round-trip times (none when no
    reply came back), and its own summary lines."""

    sent: int
    received: int
    loss_percent: float
    rtt_min_ms: float | None
    rtt_avg_ms: float | None
    rtt_max_ms: float | None
    summary: str


@dataclass(frozen=True, slots=True)
class PingFacts(PingSummary):
    """``ping`` to the default gateway, run only with ``--ping-gateway``."""

    gateway: str
    interface: str
    command: str
    read_at: float

"""Shared plumbing of the local database checks: which servers run, their unix sockets,
running a client CLI, and "too many connections" lines in a log's tail.

Databases are only reached through their unix socket on this machine, with the local
identity (root's unix_socket/peer authentication, or a credential file named in the
config) — never with a guessed password, never over the network.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Mapping

from hostmedic.collectors.health.mountinfo import health_data
from hostmedic.facts.health_storage import LogHits

CLIENT_TIMEOUT_S = 8.0
_PATH = "/usr/local/bin:/usr/bin:/bin"
_LISTENING = "01"  # /proc/net/unix state of a listening socket


def servers_running(comms: Mapping[int, str]) -> list[tuple[str, int, str]]:
    """(kind, pid, name) of every database server process that is not the child of
    another one of the same kind (PostgreSQL's backends are children of the postmaster)."""
    kinds = {name: kind for kind, names in health_data()["databases"].items() for name in names}
    out = []
    for pid, comm in sorted(comms.items()):
        kind = kinds.get(comm)
        if kind is None:
            continue
        parent = _ppid(pid)
        if parent is not None and kinds.get(comms.get(parent, "")) == kind:
            continue
        out.append((kind, pid, comm))
    return out


def _ppid(pid: int) -> int | None:
    from hostmedic.collectors.procfs import read_ppid

    return read_ppid(pid)


def parse_proc_net_unix(text: str) -> dict[int, str]:
    """``/proc/net/unix`` → inode → path of listening sockets with a filesystem path."""
    out = {}
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 8 and parts[5] == _LISTENING and parts[7].startswith("/"):
            try:
                out[int(parts[6])] = parts[7]
            except ValueError:
                continue
    return out


def unix_sockets_of(pid: int, proc_root: str = "/proc") -> list[str]:
    """Paths of the listening unix sockets a process holds."""
    try:
        with open(f"{proc_root}/net/unix", encoding="utf-8", errors="replace") as f:
            paths = parse_proc_net_unix(f.read())
        fds = os.listdir(f"{proc_root}/{pid}/fd")
    except OSError:
        return []
    out = []
    for fd in fds:
        try:
            target = os.readlink(f"{proc_root}/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            path = paths.get(int(target[8:-1]))
            if path and path not in out:
                out.append(path)
    return sorted(out)


def run_client(argv: list[str], user: str | None = None) -> tuple[int, str, str]:
    """Run a database client (as ``user`` when given); (exit code, stdout, stderr)."""
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=CLIENT_TIMEOUT_S,
            check=False,
            user=user,
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "LC_ALL": "C",
                "HOME": _home(user),
            },
            cwd="/",
        )
    except subprocess.TimeoutExpired:
        return 124, "", f"timed out after {CLIENT_TIMEOUT_S:.0f} s"
    except OSError as exc:
        return 127, "", exc.strerror or str(exc)
    return done.returncode, done.stdout, done.stderr.strip()


def _home(user: str | None) -> str:
    import pwd

    try:
        return pwd.getpwnam(user).pw_dir if user else os.path.expanduser("~")
    except KeyError:
        return "/"


def scan_log_tail(path: str, pattern: re.Pattern[str], tail_bytes: int) -> LogHits | None:
    """Lines matching ``pattern`` in the last ``tail_bytes`` of a log, numbered from the
    start of the file (newlines before the tail are counted, not kept)."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            start = max(size - tail_bytes, 0)
            f.seek(0)
            line = 1
            remaining = start
            while remaining > 0:
                chunk = f.read(min(remaining, 1 << 20))
                if not chunk:
                    break
                line += chunk.count(b"\n")
                remaining -= len(chunk)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    first = last = count = 0
    sample = ""
    for number, row in enumerate(text.splitlines(), line):
        if pattern.search(row):
            count += 1
            first = first or number
            last, sample = number, row[:300]
    return LogHits(path, first, last, count, sample) if count else None


def scan_log_tails(
    paths: Iterable[str], pattern: re.Pattern[str], tail_bytes: int
) -> tuple[LogHits, ...]:
    """:func:`scan_log_tail` of each log, keeping those with a match."""
    found = (scan_log_tail(path, pattern, tail_bytes) for path in paths)
    return tuple(hits for hits in found if hits is not None)

"""sshd's lines in the auth logs (seed 004 §账户 Linux 1: "or read /var/log/secure"):
/var/log/auth.log* (Debian family), /var/log/secure* (Red Hat family), gzip-rotated ones
too, or the systemd journal when neither exists.

Classic syslog lines carry no year: it is taken from the file's modification time (a line
dated after that month belongs to the year before). RFC 3339 timestamps (rsyslog's high
precision format, ``journalctl -o short-iso``) are read as they are.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import time
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import BinaryIO

from hostmedic.analysis.logins import AuthEvent
from hostmedic.collectors.rootfs import RootFS

LOG_PATTERNS = (("/var/log", "auth.log*"), ("/var/log", "secure*"))
# Bounds that keep a swollen brute-force log to a few seconds (~110k lines/s): the newest
# part of at most four files.
MAX_FILES = 4
TAIL_BYTES = 24 << 20  # of a plain file
TAIL_LINES = 250_000  # of a gzip file
GZIP_LIMIT = 1 << 30  # decompressed bytes
JOURNAL_LINES = 200_000
SSHD_PROGRAMS = frozenset({"sshd", "sshd-session"})

_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, 1)}
_PREFIX = re.compile(
    r"(?P<ts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S*)"
    r" \S+ (?P<prog>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: (?P<msg>.*)"
)
_REPEATED = re.compile(r"message repeated (\d+) times: \[ ?(.*?) ?\]$")
_ACCEPTED = re.compile(r"Accepted (\S+) for (.+?) from (\S+) port \d+")
_FAILED = re.compile(r"Failed (\S+) for (?:invalid user )?(.*?) from (\S+) port \d+")
_INVALID = re.compile(r"Invalid user (.*?) from (\S+)(?: port \d+)?$")


def parse_timestamp(text: str, reference: time.struct_time) -> float | None:
    """Unix time of a syslog timestamp; ``reference`` (the file's mtime, local time)
    supplies the year classic timestamps lack."""
    if text[:4].isdigit():
        try:
            return datetime.fromisoformat(text).timestamp()
        except ValueError:
            return None
    month = _MONTHS.get(text[:3])
    if month is None:
        return None
    year = reference.tm_year - (1 if month > reference.tm_mon else 0)
    try:
        day = int(text[4:6])
        hh, mm, ss = (int(x) for x in text[7:15].split(":"))
        return time.mktime((year, month, day, hh, mm, ss, 0, 0, -1))
    except (ValueError, OverflowError):
        return None


def _cached_time(
    text: str, reference: time.struct_time, minutes: dict[str, float | None]
) -> float | None:
    """parse_timestamp, with classic timestamps converted once per minute."""
    if text[:4].isdigit() or not text[13:15].isdigit():
        return parse_timestamp(text, reference)
    head = text[:12]
    if head not in minutes:
        if len(minutes) > 100_000:
            minutes.clear()
        minutes[head] = parse_timestamp(head + ":00", reference)
    base = minutes[head]
    return None if base is None else base + int(text[13:15])


def parse_auth_lines(
    lines: Iterable[tuple[int, str]], source: str, reference: time.struct_time
) -> Iterator[AuthEvent | float | None]:
    """Login events of sshd, from numbered lines.

    Yields an :class:`AuthEvent` per attempt, the time of every other sshd line (a float:
    how far the log reaches), and None for a line that is not a syslog line at all.
    An "Invalid user" line counts only when its connection logs no "Failed" line (newer
    sshd logs just the former when password login is off).
    """
    failed_conns: set[tuple[str, str]] = set()
    invalid: list[tuple[tuple[str, str], AuthEvent]] = []
    minutes: dict[str, float | None] = {}  # a brute-force log repeats each minute many times
    for number, line in lines:
        m = _PREFIX.match(line)
        if m is None:
            yield None
            continue
        stamp, program, pid, msg = m.groups()
        if program not in SSHD_PROGRAMS:
            continue
        when = _cached_time(stamp, reference, minutes)
        msg, count, pid = msg.rstrip(), 1, pid or ""
        if msg.startswith("message repeated") and (repeated := _REPEATED.match(msg)):
            count, msg = int(repeated[1]), repeated[2]
        if hit := _ACCEPTED.match(msg):
            yield AuthEvent(when, hit[2], hit[3], True, hit[1], source, number, count)
        elif hit := _FAILED.match(msg):
            failed_conns.add((pid, hit[3]))
            yield AuthEvent(when, hit[2], hit[3], False, hit[1], source, number, count)
        elif hit := _INVALID.match(msg):
            event = AuthEvent(when, hit[1], hit[2], False, "invalid-user", source, number, count)
            invalid.append(((pid, hit[2]), event))
        elif when is not None:
            yield when
    for key, event in invalid:
        if key not in failed_conns:
            yield event


def _newline_count(f: BinaryIO, end: int) -> int:
    """Lines before byte ``end`` (so the tail of a big log keeps true line numbers)."""
    count, done = 0, 0
    while done < end:
        chunk = f.read(min(1 << 20, end - done))
        if not chunk:
            break
        count += chunk.count(b"\n")
        done += len(chunk)
    return count


def _gzip_tail(raw: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """The last TAIL_LINES numbered lines of a gzip file (read to its end: gzip cannot
    seek), decompressing at most GZIP_LIMIT bytes (a gzip bomb stops there)."""
    tail: deque[tuple[int, bytes]] = deque(maxlen=TAIL_LINES)
    done = 0
    try:
        for n, line in enumerate(gzip.GzipFile(fileobj=raw), 1):
            done += len(line)
            if done > GZIP_LIMIT:
                break
            tail.append((n, line))
    except (OSError, EOFError, zlib.error):  # truncated or corrupt: keep what was read
        pass
    return iter(tail)


def _plain_tail(raw: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """The lines of a plain file's newest TAIL_BYTES, numbered as in the whole file."""
    first = 1
    start = max(0, os.fstat(raw.fileno()).st_size - TAIL_BYTES)
    if start:
        first += _newline_count(raw, start)
        raw.seek(start - 1)
        if raw.read(1) != b"\n":  # inside a line: skip to the next one
            raw.readline()
            first += 1
    return enumerate(raw, first)


def _numbered_lines(fs: RootFS, path: str) -> Iterator[tuple[int, str]]:
    """Numbered lines of the newest part of a log (plain or gzip-rotated)."""
    fd = fs.open_regular(path)
    with os.fdopen(fd, "rb") as raw:
        lines = _gzip_tail(raw) if path.endswith(".gz") else _plain_tail(raw)
        for n, line in lines:
            yield n, line.decode("utf-8", "replace")


def log_files(fs: RootFS) -> list[str]:
    """The auth logs present, newest first (at most MAX_FILES)."""
    found: list[tuple[float, str]] = []
    for directory, pattern in LOG_PATTERNS:
        for path in fs.glob(directory, pattern):
            try:
                found.append((fs.stat(path).st_mtime, path))
            except OSError:
                continue
    return [p for _, p in sorted(found, reverse=True)[:MAX_FILES] if fs.is_file(p)]


def read_log_file(fs: RootFS, path: str) -> Iterator[AuthEvent | float | None]:
    """Events of one auth log file (OSError when it cannot be opened)."""
    reference = time.localtime(fs.stat(path).st_mtime)
    yield from parse_auth_lines(_numbered_lines(fs, path), path, reference)


def read_journal(fs: RootFS) -> tuple[str, list[str]] | None:
    """sshd's journal lines (``journalctl -o short-iso``), or None without a journal."""
    if shutil.which("journalctl") is None:
        return None
    command = ["journalctl", "--no-pager", "-q", "-o", "short-iso", "-n", str(JOURNAL_LINES)]
    command += [f"--identifier={p}" for p in sorted(SSHD_PROGRAMS)]
    if not fs.live:
        directory = fs.host_path("/var/log/journal")
        if not os.path.isdir(directory):
            return None
        command += ["--directory", directory]
    try:
        proc = subprocess.run(command, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    label = "journalctl " + " ".join(f"-t {p}" for p in sorted(SSHD_PROGRAMS))
    return label, proc.stdout.decode("utf-8", "replace").splitlines()

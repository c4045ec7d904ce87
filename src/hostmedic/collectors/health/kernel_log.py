"""The kernel log, read-only, and the OOM killer's reports in it.

``/dev/kmsg`` gives every record still in the ring buffer with its sequence number and
its time since boot; each reader has its own position, so reading changes nothing for
``dmesg`` or syslog. Without it (non-root with ``dmesg_restrict``) ``journalctl -k`` is
tried. Parsing is pure: records or text lines in, :class:`OomEvent` out.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from hostmedic.errors import FactUnavailable, ParseError
from hostmedic.facts.health import OomEvent

MAX_RECORDS = 200_000  # the ring buffer holds far fewer; a bound against a runaway reader
JOURNAL_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class KernelLine:
    """One kernel message: seconds since boot and its text."""

    since_boot_s: float
    text: str


def parse_kmsg_record(record: bytes) -> KernelLine:
    """One ``/dev/kmsg`` record: ``prio,seq,usec,flags[,…];text`` then optional
    continuation lines (`` KEY=value``) that are not part of the message."""
    head, sep, body = record.partition(b";")
    fields = head.split(b",")
    if not sep or len(fields) < 3 or not fields[2].isdigit():
        raise ParseError(f"not a /dev/kmsg record: {record[:60]!r}")
    text = body.split(b"\n", 1)[0].decode("utf-8", "replace")
    # the kernel escapes non-printable bytes as \xNN; only the newline matters here
    return KernelLine(int(fields[2]) / 1e6, text.replace("\\x0a", " "))


_TEXT_LINE = re.compile(r"^\[\s*(\d+\.\d+)\]\s(?:\S+\s+kernel:\s)?(.*)$")


def parse_kernel_text(lines: Iterable[str]) -> list[KernelLine]:
    """``dmesg`` or ``journalctl -k -o short-monotonic`` lines (others are skipped)."""
    out = []
    for line in lines:
        match = _TEXT_LINE.match(line.rstrip("\n"))
        if match:
            out.append(KernelLine(float(match.group(1)), match.group(2)))
    return out


_INVOKED = re.compile(r"^(?P<who>.+?) invoked oom-killer:")
_OOM_KILL = re.compile(r"^oom-kill:(?P<kv>\S+)")
_KILLED = re.compile(
    r"(?:^|: )Killed process (?P<pid>\d+) \((?P<name>.*)\) total-vm:\d+kB, "
    r"anon-rss:(?P<anon>\d+)kB(?:.*?UID:(?P<uid>\d+))?"
)


def find_oom_events(lines: Iterable[KernelLine], boot_epoch: float | None) -> list[OomEvent]:
    """OOM kills in kernel messages, oldest first. The ``invoked oom-killer`` and
    ``oom-kill:`` lines that precede a kill give the trigger and the constraint
    (global, or a memory cgroup's limit)."""
    events: list[OomEvent] = []
    invoked: str | None = None
    details: dict[str, str] = {}
    for line in lines:
        text = line.text
        if "oom" not in text and "Killed process" not in text:
            continue
        if match := _INVOKED.match(text):
            invoked, details = match.group("who"), {}
        elif match := _OOM_KILL.match(text):
            details = dict(kv.split("=", 1) for kv in match.group("kv").split(",") if "=" in kv)
        elif match := _KILLED.search(text):
            constraint = details.get("constraint")
            if constraint is None and text.startswith("Memory cgroup out of memory"):
                constraint = "CONSTRAINT_MEMCG"
            events.append(
                OomEvent(
                    victim_pid=int(match.group("pid")),
                    victim_name=match.group("name"),
                    anon_rss_bytes=int(match.group("anon")) * 1024,
                    uid=int(match.group("uid")) if match.group("uid") else None,
                    constraint=constraint,
                    memcg=details.get("oom_memcg") or details.get("task_memcg"),
                    invoked_by=invoked,
                    at=boot_epoch + line.since_boot_s if boot_epoch is not None else None,
                    line=text[:300],
                )
            )
            invoked, details = None, {}
    return events


def read_kmsg(path: str = "/dev/kmsg") -> list[KernelLine]:
    """Every record still in the kernel's ring buffer (non-blocking, read-only)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    out: list[KernelLine] = []
    try:
        for _ in range(MAX_RECORDS):
            try:
                record = os.read(fd, 16384)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EPIPE:  # overwritten while we read: next one
                    continue
                raise
            if not record:
                break
            try:
                out.append(parse_kmsg_record(record))
            except ParseError:
                continue
    finally:
        os.close(fd)
    return out


def read_journal_kernel() -> list[KernelLine]:
    """This boot's kernel messages from the journal (the fallback to /dev/kmsg)."""
    if shutil.which("journalctl") is None:
        raise FactUnavailable("journalctl not found", key="reason.health.no_kernel_log")
    done = subprocess.run(
        ["journalctl", "-k", "-b", "-q", "--no-pager", "-o", "short-monotonic"],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=JOURNAL_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise FactUnavailable(done.stderr.strip()[:200], key="reason.health.no_kernel_log")
    return parse_kernel_text(done.stdout.splitlines())


def read_kernel_lines(kmsg: str = "/dev/kmsg") -> tuple[list[KernelLine], str]:
    """(kernel messages, where they came from): /dev/kmsg, else the journal."""
    try:
        return read_kmsg(kmsg), kmsg
    except OSError as exc:
        try:
            return read_journal_kernel(), "journalctl -k -b"
        except (OSError, subprocess.SubprocessError) as journal_exc:
            raise FactUnavailable(
                f"{kmsg}: {exc.strerror}; journalctl: {journal_exc}",
                key="reason.health.no_kernel_log",
            ) from journal_exc
        except FactUnavailable as unavailable:
            raise FactUnavailable(
                f"{kmsg}: {exc.strerror}; {unavailable}", key="reason.health.no_kernel_log"
            ) from exc

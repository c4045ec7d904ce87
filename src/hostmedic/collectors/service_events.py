"""Recent OOM kills and failed services: why a port's owner may have vanished.

Seed 004 §解决办法: "查看服务器是否处于运行状态" and the CPU/memory checks; a service the
kernel OOM-killed, or that systemd marks failed, answers "refused" to every client. Both
are cheap to read: the kernel log ring (/dev/kmsg, needs CAP_SYSLOG) and ``systemctl
list-units --state=failed``. Parsers are pure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time

from hostmedic.errors import FactUnavailable
from hostmedic.facts.network import ServiceEvent

WINDOW_S = 24 * 3600.0
MAX_RECORDS = 50_000
_OOM = re.compile(r"Killed process (\d+) \(([^)]*)\)")
_UNIT = re.compile(r"/([^/\s]+\.(?:service|scope))\s*$")


def parse_kmsg_ooms(records: list[str], boot_time: float, now: float) -> tuple[ServiceEvent, ...]:
    """OOM kills of the last 24 h from /dev/kmsg records (``prio,seq,usec,flags;text``)."""
    events: list[ServiceEvent] = []
    for record in records:
        head, _, text = record.partition(";")
        match = _OOM.search(text)
        if match is None:
            continue
        fields = head.split(",")
        try:
            at = boot_time + int(fields[2]) / 1e6
        except (IndexError, ValueError):
            at = None
        if at is not None and now - at > WINDOW_S:
            continue
        name, pid = match.group(2), int(match.group(1))
        events.append(ServiceEvent("oom_kill", name, pid, at, text.strip()[:200]))
    return tuple(events)


def parse_failed_units(text: str) -> tuple[ServiceEvent, ...]:
    """``systemctl list-units --state=failed --plain --no-legend`` → one event per unit."""
    events = []
    for line in text.splitlines():
        fields = line.lstrip("●* \t").split(None, 1)  # systemd may mark lines with a bullet
        if fields:
            events.append(ServiceEvent("unit_failed", fields[0], None, None, line.strip()[:200]))
    return tuple(events)


def unit_of(cgroup_text: str) -> str | None:
    """The systemd unit a process runs in, from /proc/<pid>/cgroup."""
    for line in cgroup_text.splitlines():
        match = _UNIT.search(line)
        if match:
            return match.group(1)
    return None


def _read_kmsg() -> list[str]:
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise FactUnavailable(str(exc), key="reason.kmsg_unreadable") from exc
    records: list[str] = []
    try:
        for _ in range(MAX_RECORDS):
            try:
                chunk = os.read(fd, 8192)
            except BlockingIOError:
                break
            except BrokenPipeError:  # the ring overwrote the record we were at
                continue
            if not chunk:
                break
            records.append(chunk.decode("utf-8", "replace"))
    finally:
        os.close(fd)
    return records


def read_service_events() -> tuple[ServiceEvent, ...]:
    """OOM kills (kernel log) and failed systemd units; FactUnavailable if neither source
    can be read."""
    events: list[ServiceEvent] = []
    readable = False
    try:
        with open("/proc/uptime", encoding="ascii") as f:
            uptime = float(f.read().split()[0])
        now = time.time()
        events += parse_kmsg_ooms(_read_kmsg(), now - uptime, now)
        readable = True
    except (OSError, ValueError, IndexError, FactUnavailable):
        pass  # not root (CAP_SYSLOG): the systemd half may still answer
    if shutil.which("systemctl") and os.path.isdir("/run/systemd/system"):
        try:
            done = subprocess.run(
                [
                    "systemctl",
                    "list-units",
                    "--state=failed",
                    "--plain",
                    "--no-legend",
                    "--no-pager",
                ],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            done = None
        if done is not None and done.returncode == 0:
            events += parse_failed_units(done.stdout)
            readable = True
    if not readable:
        raise FactUnavailable("no kernel log and no systemd", key="reason.events_unreadable")
    return tuple(events)

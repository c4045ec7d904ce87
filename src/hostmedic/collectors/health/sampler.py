"""Process-table sampling over the shared window: CPU per process and per thread, forks,
zombies and RSS growth.

Every tick reads ``/proc/stat`` and each ``/proc/<pid>/stat`` once (one read per
process). Threads are read only for processes that were near one full core in the last
interval, so a runaway loop (one thread pegged) is found without reading every task of
a busy machine. Snapshot times come from CLOCK_BOOTTIME, the clock process start times
are counted in.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass, field

from hostmedic.collectors.health.procstat import CpuTimes, PidStat, parse_pid_stat, parse_proc_stat
from hostmedic.errors import FactUnavailable, ParseError
from hostmedic.settings_health import HealthSettings

TOP_PROCESSES = 10
TOP_GROWTH = 10
GROWTH_PREFILTER_BYTES = 8 * 1024 * 1024  # smaller growth is never reported: do not carry it
# a process is watched thread by thread when its last interval came this close to the
# runaway threshold (one interval is short: allow for tick jitter)
HOT_FRACTION = 0.8


@dataclass
class Snapshot:
    at: float
    cpu: CpuTimes
    stats: dict[int, PidStat]


@dataclass
class ThreadTrack:
    name: str
    first_at: float
    first_ticks: int
    last_at: float
    last_ticks: int


@dataclass
class Window:
    """What the sampler accumulated; the fact builders in :mod:`.cpu_facts` read it."""

    clk_tck: int
    page_size: int
    first: Snapshot
    last: Snapshot
    threads: dict[tuple[int, int], ThreadTrack] = field(default_factory=dict)
    newborn: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))


def read_text(path: str) -> str | None:
    """A small kernel file's text, or None when it vanished or is not readable."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return None


def read_pid_stats(proc_root: str) -> dict[int, PidStat]:
    """``/proc/<pid>/stat`` of every process; vanished or malformed ones are skipped."""
    stats: dict[int, PidStat] = {}
    try:
        names = os.listdir(proc_root)
    except OSError as exc:
        raise FactUnavailable(str(exc), key="reason.unreadable", path=proc_root) from exc
    for name in names:
        if not name.isdigit():
            continue
        text = read_text(f"{proc_root}/{name}/stat")
        if text is None:
            continue
        try:
            stats[int(name)] = parse_pid_stat(text)
        except ParseError:
            continue
    return stats


def _read_cpu(proc_root: str) -> CpuTimes:
    text = read_text(f"{proc_root}/stat")
    if text is None:
        raise FactUnavailable("/proc/stat", key="reason.unreadable", path=f"{proc_root}/stat")
    try:
        return parse_proc_stat(text)
    except ParseError as exc:
        raise FactUnavailable(str(exc), key="reason.unreadable", path=f"{proc_root}/stat") from exc


def boottime() -> float:
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class ProcessSampler:
    """Takes a snapshot at start, at every tick and at the end of the window."""

    def __init__(self, settings: HealthSettings, proc_root: str = "/proc") -> None:
        self._settings = settings
        self._proc = proc_root
        first = Snapshot(boottime(), _read_cpu(proc_root), read_pid_stats(proc_root))
        self.window = Window(
            clk_tck=os.sysconf("SC_CLK_TCK"),
            page_size=os.sysconf("SC_PAGE_SIZE"),
            first=first,
            last=first,
        )

    def sample(self) -> None:
        """One more snapshot; watch the threads of processes that were nearly pegged."""
        w = self.window
        previous = w.last
        current = Snapshot(boottime(), _read_cpu(self._proc), read_pid_stats(self._proc))
        w.last = current
        elapsed = current.at - previous.at
        if elapsed <= 0:
            return
        limit = HOT_FRACTION * self._settings.runaway_thread_percent / 100
        for pid, stat in current.stats.items():
            if pid not in w.first.stats:
                w.newborn[stat.ppid].add(pid)
            before = previous.stats.get(pid)
            if before is None or before.starttime != stat.starttime:
                continue
            if (stat.cpu_ticks - before.cpu_ticks) / w.clk_tck / elapsed >= limit:
                self._watch_threads(pid, current.at)

    def _watch_threads(self, pid: int, at: float) -> None:
        task_dir = f"{self._proc}/{pid}/task"
        try:
            tids = [int(t) for t in os.listdir(task_dir) if t.isdigit()]
        except OSError:
            return
        for tid in tids:
            text = read_text(f"{task_dir}/{tid}/stat")
            if text is None:
                continue
            try:
                stat = parse_pid_stat(text)
            except ParseError:
                continue
            track = self.window.threads.get((pid, tid))
            if track is None:
                self.window.threads[(pid, tid)] = ThreadTrack(
                    stat.comm, at, stat.cpu_ticks, at, stat.cpu_ticks
                )
            else:
                track.last_at, track.last_ticks = at, stat.cpu_ticks

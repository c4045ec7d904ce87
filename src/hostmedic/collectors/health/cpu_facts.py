"""Turn the sampled window into facts: CPU shares, the busiest processes with their
threads, forks, zombies and RSS growth. Pure over a :class:`~.sampler.Window` except
:func:`describe`, which reads /proc for the few processes that will be named.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable

from hostmedic.collectors.health.procstat import PidStat
from hostmedic.collectors.health.sampler import (
    GROWTH_PREFILTER_BYTES,
    TOP_GROWTH,
    TOP_PROCESSES,
    Window,
)
from hostmedic.facts.bandwidth import ProcessInfo
from hostmedic.facts.health import ParentCount, ProcessCpu, RssGrowth, ThreadCpu

Describe = Callable[[int], ProcessInfo]
TOP_PARENTS = 5
SAMPLE_PIDS = 5


def cpu_shares(w: Window) -> dict[str, float]:
    """Machine-wide CPU use over the window, in percent of all cores."""
    a, b = w.first.cpu, w.last.cpu
    total = b.total - a.total
    if total <= 0:
        return dict.fromkeys(("busy", "user", "system", "iowait", "steal"), 0.0)

    def pct(delta: int) -> float:
        return round(100 * max(delta, 0) / total, 1)

    idle = (b.idle - a.idle) + (b.iowait - a.iowait)
    return {
        "busy": pct(total - idle),
        "user": pct((b.user - a.user) + (b.nice - a.nice)),
        "system": pct((b.system - a.system) + (b.irq - a.irq) + (b.softirq - a.softirq)),
        "iowait": pct(b.iowait - a.iowait),
        "steal": pct(b.steal - a.steal),
    }


def _base(w: Window, pid: int, stat: PidStat) -> tuple[float, int, int]:
    """(time, cpu ticks, children ticks) the process's share is counted from: the first
    snapshot, or its start when it was born during the window."""
    before = w.first.stats.get(pid)
    if before is not None and before.starttime == stat.starttime:
        return w.first.at, before.cpu_ticks, before.children_ticks
    return max(w.first.at, stat.starttime / w.clk_tck), 0, 0


def _threads(w: Window, pid: int, min_percent: float) -> tuple[ThreadCpu, ...]:
    rows = []
    for (owner, tid), track in w.threads.items():
        span = track.last_at - track.first_at
        if owner != pid or span <= 0:
            continue
        percent = 100 * (track.last_ticks - track.first_ticks) / w.clk_tck / span
        if percent >= min_percent:
            rows.append(ThreadCpu(tid, track.name, round(percent, 1), round(span, 2)))
    return tuple(sorted(rows, key=lambda t: -t.cpu_percent))


def busiest(w: Window, describe: Describe, thread_min_percent: float) -> tuple[ProcessCpu, ...]:
    """The processes that used the most CPU over the window, with their busy threads."""
    rows: list[ProcessCpu] = []
    for pid, stat in w.last.stats.items():
        since, ticks, child_ticks = _base(w, pid, stat)
        span = w.last.at - since
        if span <= 0:
            continue
        rows.append(
            ProcessCpu(
                pid=pid,
                ppid=stat.ppid,
                name=stat.comm,
                state=stat.state,
                threads=stat.threads,
                cpu_percent=round(100 * (stat.cpu_ticks - ticks) / w.clk_tck / span, 1),
                children_cpu_percent=round(
                    100 * max(stat.children_ticks - child_ticks, 0) / w.clk_tck / span, 1
                ),
                rss_bytes=stat.rss_pages * w.page_size,
                busy_threads=_threads(w, pid, thread_min_percent),
            )
        )
    rows.sort(key=lambda r: -(r.cpu_percent + r.children_cpu_percent))
    chosen = [r for r in rows[:TOP_PROCESSES] if r.cpu_percent + r.children_cpu_percent > 0]
    chosen += [r for r in rows[TOP_PROCESSES:] if r.busy_threads]
    return tuple(dataclasses.replace(r, info=describe(r.pid)) for r in chosen)


def _parents(groups: dict[int, set[int]], w: Window, describe: Describe) -> tuple[ParentCount, ...]:
    ranked = sorted(groups.items(), key=lambda kv: -len(kv[1]))[:TOP_PARENTS]
    out = []
    for ppid, pids in ranked:
        info = describe(ppid)
        parent = w.last.stats.get(ppid)
        out.append(
            ParentCount(
                ppid=ppid,
                name=parent.comm if parent else info.name,
                exe=info.exe,
                user=info.user,
                count=len(pids),
                sample_pids=tuple(sorted(pids)[:SAMPLE_PIDS]),
            )
        )
    return tuple(out)


def zombie_parents(w: Window, describe: Describe) -> tuple[tuple[ParentCount, ...], int]:
    """Zombies at the end of the window, grouped by the parent that does not reap them."""
    groups: dict[int, set[int]] = defaultdict(set)
    for pid, stat in w.last.stats.items():
        if stat.state == "Z":
            groups[stat.ppid].add(pid)
    return _parents(groups, w, describe), sum(len(p) for p in groups.values())


def spawners(w: Window, describe: Describe) -> tuple[ParentCount, ...]:
    """Parents of the processes born during the window (seen at any tick)."""
    return _parents(w.newborn, w, describe)


def rss_growth(w: Window, describe: Describe) -> tuple[RssGrowth, ...]:
    """Processes alive for the whole window whose RSS grew (largest growth first)."""
    rows = []
    for pid, stat in w.last.stats.items():
        before = w.first.stats.get(pid)
        if before is None or before.starttime != stat.starttime:
            continue
        grown = (stat.rss_pages - before.rss_pages) * w.page_size
        if grown >= GROWTH_PREFILTER_BYTES:
            rows.append((grown, pid, before, stat))
    rows.sort(key=lambda r: -r[0])
    out = []
    for _, pid, before, stat in rows[:TOP_GROWTH]:
        info = describe(pid)
        out.append(
            RssGrowth(
                pid=pid,
                name=stat.comm,
                exe=info.exe,
                user=info.user,
                rss_start_bytes=before.rss_pages * w.page_size,
                rss_end_bytes=stat.rss_pages * w.page_size,
                window_s=round(w.last.at - w.first.at, 2),
            )
        )
    return tuple(out)

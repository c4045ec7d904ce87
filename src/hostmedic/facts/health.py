"""Facts of the host-health runbook (seed 004: server hung / cannot log in, CPU full,
website slow): CPU, processes, memory and the kernel's OOM killer.

Percentages of a process's CPU are of one core, as ``top`` shows them (200 = two cores
busy); a machine-wide percentage is of all cores. Times are Unix seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from hostmedic.facts.bandwidth import ProcessInfo


@dataclass(frozen=True, slots=True)
class ThreadCpu:
    """One thread watched over part of the window (a runaway-loop candidate)."""

    tid: int
    name: str
    cpu_percent: float
    observed_s: float


@dataclass(frozen=True, slots=True)
class ProcessCpu:
    """One busy process over the window."""

    pid: int
    ppid: int
    name: str
    state: str
    threads: int
    cpu_percent: float
    children_cpu_percent: float
    rss_bytes: int
    info: ProcessInfo | None = None
    busy_threads: tuple[ThreadCpu, ...] = ()


@dataclass(frozen=True, slots=True)
class ParentCount:
    """A parent process and how many children of one kind it has (zombies, newborns)."""

    ppid: int
    name: str
    exe: str | None
    user: str | None
    count: int
    sample_pids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CpuFacts:
    """Machine-wide CPU and process-table figures over the sampling window."""

    window_s: float
    cores: int
    load_1: float
    load_5: float
    load_15: float
    busy_percent: float
    user_percent: float
    system_percent: float
    iowait_percent: float
    steal_percent: float
    top: tuple[ProcessCpu, ...]
    forks_per_s: float
    processes_start: int
    processes_end: int
    tasks_end: int
    blocked_tasks: int
    pid_max: int
    threads_max: int
    spawners: tuple[ParentCount, ...]
    zombie_parents: tuple[ParentCount, ...]
    zombies_total: int
    read_at: float


@dataclass(frozen=True, slots=True)
class RssGrowth:
    """A process whose resident memory grew during the window."""

    pid: int
    name: str
    exe: str | None
    user: str | None
    rss_start_bytes: int
    rss_end_bytes: int
    window_s: float


@dataclass(frozen=True, slots=True)
class MemoryUser:
    pid: int
    name: str
    rss_bytes: int


@dataclass(frozen=True, slots=True)
class MemoryFacts:
    """/proc/meminfo, PSI and swap activity over the window, and who grew."""

    total_bytes: int
    available_bytes: int
    swap_total_bytes: int
    swap_free_bytes: int
    swap_in_pages_per_s: float
    swap_out_pages_per_s: float
    psi_some_avg10: float | None
    psi_full_avg10: float | None
    top_rss: tuple[MemoryUser, ...]
    growing: tuple[RssGrowth, ...]
    read_at: float


@dataclass(frozen=True, slots=True)
class OomEvent:
    """One process the kernel's OOM killer killed."""

    victim_pid: int
    victim_name: str
    anon_rss_bytes: int | None
    uid: int | None
    constraint: str | None
    memcg: str | None
    invoked_by: str | None
    at: float | None
    line: str


@dataclass(frozen=True, slots=True)
class OomFacts:
    """OOM kills found in the kernel log since boot (as far as the ring buffer reaches)."""

    events: tuple[OomEvent, ...]
    source: str
    records_read: int
    read_at: float

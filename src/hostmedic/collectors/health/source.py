"""The ``health`` category's collection: process sampling over the shared window, then
memory, kernel log, disk, open files, mounts, databases and (opt-in) the gateway ping.

Each fact is collected on its own: one that cannot be read leaves its
:class:`FactUnavailable` under its name and the other checks still run.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hostmedic.collectors.health import cpu_facts, disk, mounts, mysql, postgres
from hostmedic.collectors.health.dblocal import servers_running
from hostmedic.collectors.health.kernel_log import find_oom_events, read_kernel_lines
from hostmedic.collectors.health.mountinfo import Mount, parse_mountinfo
from hostmedic.collectors.health.openfiles import scan_processes
from hostmedic.collectors.health.ping import GatewayPing
from hostmedic.collectors.health.procstat import (
    parse_loadavg,
    parse_meminfo,
    parse_psi,
    parse_vmstat,
)
from hostmedic.collectors.health.sampler import ProcessSampler, read_text
from hostmedic.collectors.packages import package_database_present, package_owners
from hostmedic.collectors.procfs import read_process_info
from hostmedic.errors import FactUnavailable, ParseError
from hostmedic.facts.bandwidth import ProcessInfo
from hostmedic.facts.health import CpuFacts, MemoryFacts, MemoryUser, OomFacts, ProcessCpu
from hostmedic.facts.health_storage import (
    BusyFacts,
    DatabaseFacts,
    DeletedFacts,
    DiskFacts,
    HiddenFacts,
    PingFacts,
)
from hostmedic.facts.health_types import HEALTH_FACT_TYPES
from hostmedic.settings_health import HealthSettings

if TYPE_CHECKING:
    from hostmedic.gather import Collection, GatherContext

TOP_RSS = 5


def _read(path: str) -> str:
    text = read_text(path)
    if text is None:
        raise FactUnavailable(path, key="reason.unreadable", path=path)
    return text


def read_mounts(proc_root: str = "/proc") -> list[Mount]:
    try:
        return parse_mountinfo(_read(f"{proc_root}/self/mountinfo"))
    except ParseError as exc:
        raise FactUnavailable(str(exc), key="reason.unreadable", path="mountinfo") from exc


def _int_file(path: str) -> int:
    text = read_text(path) or ""
    return int(text.strip()) if text.strip().isdigit() else 0


class HealthCollection:
    """Samples processes every tick; reads everything else once, at the end."""

    wants_window = True

    def __init__(self, settings: HealthSettings, proc_root: str = "/proc") -> None:
        self._s = settings
        self._proc = proc_root
        self._sampler = ProcessSampler(settings, proc_root)
        self._vmstat = parse_vmstat(_read(f"{proc_root}/vmstat"))
        self._started = time.monotonic()
        self._mounts = read_mounts(proc_root)
        self._walk = disk.walk_logs(disk.log_roots(), settings, time.time())
        self._ping: GatewayPing | FactUnavailable | None = None
        if settings.ping_gateway:
            try:
                self._ping = GatewayPing(settings.ping_count, proc_root)
            except FactUnavailable as exc:
                self._ping = exc
        self._described: dict[int, ProcessInfo] = {}

    def tick(self) -> None:
        self._sampler.sample()

    def _describe(self, pid: int) -> ProcessInfo:
        if pid not in self._described:
            self._described[pid] = read_process_info(pid, self._proc)
        return self._described[pid]

    def finish(self) -> dict[str, Any]:
        self._sampler.sample()
        steps: dict[str, Callable[[], Any]] = {
            "health_cpu": self._cpu,
            "health_memory": self._memory,
            "health_oom": self._oom,
            "health_disk": self._disk,
            "health_deleted": self._deleted,
            "health_hidden_mounts": self._hidden,
            "health_busy_mounts": self._busy,
            "health_databases": self._databases,
            "health_ping": self._gateway_ping,
        }
        facts: dict[str, Any] = {}
        for name, step in steps.items():
            try:
                facts[name] = step()
            except FactUnavailable as exc:
                facts[name] = exc
        return facts

    def close(self) -> None:
        if isinstance(self._ping, GatewayPing):
            self._ping.close()

    def _cpu(self) -> CpuFacts:
        w = self._sampler.window
        shares = cpu_facts.cpu_shares(w)
        load = parse_loadavg(_read(f"{self._proc}/loadavg"))
        top = _with_packages(
            cpu_facts.busiest(w, self._describe, 0.5 * self._s.runaway_thread_percent)
        )
        zombies, zombies_total = cpu_facts.zombie_parents(w, self._describe)
        elapsed = w.last.at - w.first.at
        return CpuFacts(
            window_s=round(elapsed, 2),
            cores=w.last.cpu.cores,
            load_1=load[0],
            load_5=load[1],
            load_15=load[2],
            busy_percent=shares["busy"],
            user_percent=shares["user"],
            system_percent=shares["system"],
            iowait_percent=shares["iowait"],
            steal_percent=shares["steal"],
            top=top,
            forks_per_s=round((w.last.cpu.forks - w.first.cpu.forks) / elapsed, 1)
            if elapsed > 0
            else 0.0,
            processes_start=len(w.first.stats),
            processes_end=len(w.last.stats),
            tasks_end=sum(s.threads for s in w.last.stats.values()),
            blocked_tasks=sum(1 for s in w.last.stats.values() if s.state == "D"),
            pid_max=_int_file(f"{self._proc}/sys/kernel/pid_max"),
            threads_max=_int_file(f"{self._proc}/sys/kernel/threads-max"),
            spawners=cpu_facts.spawners(w, self._describe),
            zombie_parents=zombies,
            zombies_total=zombies_total,
            read_at=time.time(),
        )

    def _memory(self) -> MemoryFacts:
        try:
            info = parse_meminfo(_read(f"{self._proc}/meminfo"))
        except ParseError as exc:
            raise FactUnavailable(str(exc), key="reason.unreadable", path="meminfo") from exc
        psi: dict[str, float] = {}
        text = read_text(f"{self._proc}/pressure/memory")
        if text is not None:
            try:
                psi = parse_psi(text)
            except ParseError:
                psi = {}
        end = parse_vmstat(_read(f"{self._proc}/vmstat"))
        elapsed = max(time.monotonic() - self._started, 1e-6)
        w = self._sampler.window
        biggest = sorted(w.last.stats.values(), key=lambda s: -s.rss_pages)[:TOP_RSS]
        return MemoryFacts(
            total_bytes=info["MemTotal"],
            available_bytes=info["MemAvailable"],
            swap_total_bytes=info.get("SwapTotal", 0),
            swap_free_bytes=info.get("SwapFree", 0),
            swap_in_pages_per_s=round((end["pswpin"] - self._vmstat["pswpin"]) / elapsed, 1),
            swap_out_pages_per_s=round((end["pswpout"] - self._vmstat["pswpout"]) / elapsed, 1),
            psi_some_avg10=psi.get("some"),
            psi_full_avg10=psi.get("full"),
            top_rss=tuple(MemoryUser(s.pid, s.comm, s.rss_pages * w.page_size) for s in biggest),
            growing=cpu_facts.rss_growth(w, self._describe),
            read_at=time.time(),
        )

    def _oom(self) -> OomFacts:
        lines, source = read_kernel_lines()
        boot = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
        events = find_oom_events(lines, boot)
        return OomFacts(tuple(events), source, len(lines), time.time())

    def _disk(self) -> DiskFacts:
        elapsed = time.monotonic() - self._started
        return DiskFacts(
            filesystems=tuple(disk.filesystems(self._mounts)),
            logs=tuple(disk.log_files(self._walk, self._mounts, elapsed)),
            log_roots=tuple(self._walk.roots),
            log_entries_seen=self._walk.entries_seen,
            log_walk_truncated=self._walk.truncated,
            read_at=time.time(),
        )

    def _scan(self) -> Any:
        if not hasattr(self, "_scanned"):
            busy = [m for a in self._s.mounts if (m := mounts.resolve(a, self._mounts))]
            self._scanned = scan_processes(self._proc, self._mounts, busy)
        return self._scanned

    def _deleted(self) -> DeletedFacts:
        scan = self._scan()
        rows = sorted(scan.deleted, key=lambda d: -d.size_bytes)
        return DeletedFacts(tuple(rows), scan.unreadable, time.time())

    def _hidden(self) -> HiddenFacts:
        hidden, checked = mounts.look_underneath(self._mounts)
        return HiddenFacts(tuple(hidden), checked, time.time())

    def _busy(self) -> BusyFacts:
        if not self._s.mounts:
            raise FactUnavailable("no --mount", key="reason.health.no_mount_named")
        scan = self._scan()
        rows = []
        for asked in self._s.mounts:
            mount = mounts.resolve(asked, self._mounts)
            held = scan.holders.get(mount.mount_id, []) if mount else []
            rows.append(mounts.busy_mount(asked, mount, self._mounts, held))
        return BusyFacts(tuple(rows), scan.unreadable, time.time())

    def _databases(self) -> DatabaseFacts:
        comms = {pid: s.comm for pid, s in self._sampler.window.last.stats.items()}
        servers = []
        for kind, pid, name in servers_running(comms):
            if kind == "mysql":
                servers.append(
                    mysql.collect(pid, name, self._s.mysql_defaults_file, self._s.db_log_tail_bytes)
                )
            else:
                servers.append(
                    postgres.collect(pid, name, self._s.postgres_user, self._s.db_log_tail_bytes)
                )
        return DatabaseFacts(tuple(servers), time.time())

    def _gateway_ping(self) -> PingFacts:
        if self._ping is None:
            raise FactUnavailable("not asked", key="reason.health.ping_opt_in")
        if isinstance(self._ping, FactUnavailable):
            raise self._ping
        result = self._ping.result()
        return PingFacts(
            **dataclasses.asdict(result),
            gateway=self._ping.gateway,
            interface=self._ping.interface,
            command=" ".join(self._ping.argv),
            read_at=time.time(),
        )


def _with_packages(top: tuple[ProcessCpu, ...]) -> tuple[ProcessCpu, ...]:
    """Fill in the owning package of the busy processes' executables (a verdict clue)."""
    if not package_database_present():
        return top
    exes = sorted({p.info.exe for p in top if p.info and p.info.exe and not p.info.exe_deleted})
    owners = package_owners(exes)
    out = []
    for p in top:
        if p.info is not None and p.info.exe in owners:
            info = dataclasses.replace(p.info, package=owners[p.info.exe], package_checked=True)
            p = dataclasses.replace(p, info=info)
        out.append(p)
    return tuple(out)


def not_live_facts(root: str, settings: HealthSettings) -> dict[str, Any]:
    """Under ``--root`` only the files of the other disk can be judged: its filesystems'
    space and its logs; everything about running processes is skipped."""
    facts: dict[str, Any] = dict.fromkeys(
        HEALTH_FACT_TYPES, FactUnavailable("not live", key="reason.not_live")
    )
    try:
        all_mounts = read_mounts()
        walk = disk.walk_logs(disk.log_roots(root), settings, time.time())
        facts["health_disk"] = DiskFacts(
            filesystems=tuple(disk.filesystems(all_mounts, root)),
            logs=tuple(disk.log_files(walk, all_mounts, 0.0)),
            log_roots=tuple(walk.roots),
            log_entries_seen=walk.entries_seen,
            log_walk_truncated=walk.truncated,
            read_at=time.time(),
        )
    except FactUnavailable as exc:
        facts["health_disk"] = exc
    return facts


def health_source(ctx: GatherContext) -> Collection:
    """``gather.SOURCES['health']``: the sampling collection live, files only under --root."""
    from hostmedic.gather import Instant

    if not ctx.live:
        return Instant(not_live_facts(ctx.root, ctx.settings.health))
    try:
        return HealthCollection(ctx.settings.health, ctx.options.proc_root)
    except FactUnavailable as exc:  # /proc itself unreadable: every health fact says why
        return Instant(dict.fromkeys(HEALTH_FACT_TYPES, exc))

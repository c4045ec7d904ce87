"""Pure parsers of the kernel's process and CPU accounting files: ``/proc/stat``,
``/proc/<pid>/stat``, ``/proc/loadavg``, ``/proc/meminfo``, ``/proc/pressure/*`` and
``/proc/vmstat``. Reading is done elsewhere; here only text → typed values, with a
:class:`ParseError` for anything that does not have the kernel's shape.
"""

from __future__ import annotations

from dataclasses import dataclass

from hostmedic.errors import ParseError

# /proc/stat "cpu" columns, in the kernel's order (guest time is already in user/nice)
CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


@dataclass(frozen=True, slots=True)
class CpuTimes:
    """Aggregate CPU time of all cores, in clock ticks, plus the fork counter."""

    user: int
    nice: int
    system: int
    idle: int
    iowait: int
    irq: int
    softirq: int
    steal: int
    forks: int
    cores: int

    @property
    def total(self) -> int:
        return (
            self.user
            + self.nice
            + self.system
            + self.idle
            + self.iowait
            + self.irq
            + self.softirq
            + self.steal
        )


def parse_proc_stat(text: str) -> CpuTimes:
    """``/proc/stat`` → aggregate CPU times, core count and ``processes`` (forks since boot)."""
    values: list[int] | None = None
    cores = 0
    forks = None
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "cpu":
            try:
                values = [int(v) for v in parts[1 : 1 + len(CPU_FIELDS)]]
            except ValueError as exc:
                raise ParseError(f"/proc/stat cpu line: {line[:80]!r}") from exc
        elif parts[0].startswith("cpu") and parts[0][3:].isdigit():
            cores += 1
        elif parts[0] == "processes" and len(parts) == 2 and parts[1].isdigit():
            forks = int(parts[1])
    if values is None or forks is None or cores == 0:
        raise ParseError("/proc/stat: no aggregate cpu line, per-cpu lines or processes counter")
    values += [0] * (len(CPU_FIELDS) - len(values))  # old kernels lack steal
    return CpuTimes(**dict(zip(CPU_FIELDS, values, strict=True)), forks=forks, cores=cores)


@dataclass(frozen=True, slots=True)
class PidStat:
    """The fields of ``/proc/<pid>/stat`` the health checks use (times in clock ticks)."""

    pid: int
    comm: str
    state: str
    ppid: int
    utime: int
    stime: int
    cutime: int
    cstime: int
    threads: int
    starttime: int
    rss_pages: int

    @property
    def cpu_ticks(self) -> int:
        return self.utime + self.stime

    @property
    def children_ticks(self) -> int:
        return self.cutime + self.cstime


def parse_pid_stat(text: str) -> PidStat:
    """One ``/proc/<pid>/stat`` line. ``comm`` may hold spaces and parentheses, so the
    fields after it start at the *last* ``)``."""
    open_at, close_at = text.find("("), text.rfind(")")
    if open_at < 1 or close_at < open_at:
        raise ParseError(f"not a /proc/<pid>/stat line: {text[:80]!r}")
    rest = text[close_at + 2 :].split()
    try:
        return PidStat(
            pid=int(text[:open_at]),
            comm=text[open_at + 1 : close_at],
            state=rest[0],
            ppid=int(rest[1]),
            utime=int(rest[11]),
            stime=int(rest[12]),
            cutime=int(rest[13]),
            cstime=int(rest[14]),
            threads=int(rest[17]),
            starttime=int(rest[19]),
            rss_pages=int(rest[21]),
        )
    except (IndexError, ValueError) as exc:
        raise ParseError(f"/proc/<pid>/stat fields: {text[:80]!r}") from exc


def parse_loadavg(text: str) -> tuple[float, float, float]:
    """``/proc/loadavg`` → the 1, 5 and 15 minute load averages."""
    parts = text.split()
    try:
        return float(parts[0]), float(parts[1]), float(parts[2])
    except (IndexError, ValueError) as exc:
        raise ParseError(f"not a /proc/loadavg line: {text[:80]!r}") from exc


def parse_meminfo(text: str) -> dict[str, int]:
    """``/proc/meminfo`` → bytes by field name (lines that do not parse are skipped)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if not parts or not parts[0].isdigit():
            continue
        scale = 1024 if len(parts) > 1 and parts[1] == "kB" else 1
        out[name.strip()] = int(parts[0]) * scale
    for needed in ("MemTotal", "MemAvailable"):
        if needed not in out:
            raise ParseError(f"/proc/meminfo has no {needed} (kernel older than 3.14?)")
    return out


def parse_psi(text: str) -> dict[str, float]:
    """``/proc/pressure/memory`` → ``{"some": avg10, "full": avg10}``."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        parts = line.split()
        if not parts or parts[0] not in ("some", "full"):
            continue
        for field in parts[1:]:
            key, _, value = field.partition("=")
            if key == "avg10":
                try:
                    out[parts[0]] = float(value)
                except ValueError as exc:
                    raise ParseError(f"PSI value: {line[:80]!r}") from exc
    if "some" not in out:
        raise ParseError(f"not a PSI file: {text[:80]!r}")
    return out


def parse_vmstat(text: str, names: tuple[str, ...] = ("pswpin", "pswpout")) -> dict[str, int]:
    """``/proc/vmstat`` → the named counters (0 when the kernel does not have them)."""
    out = dict.fromkeys(names, 0)
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in out and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out

"""The three monitors of the comparison (hostmedic, nethogs, iftop): how each is started
inside the lab's server namespace, how its output is parsed into bytes, and what it costs.

Units, checked against each tool's source and against the lab's counters:
- nethogs counts ``pcap_pkthdr.len``: the whole Ethernet frame (IP bytes + 14 per packet).
  Its ``-v 0`` KB/s is ``bytes of the last PERIOD=5 whole-second buckets / 5 / 1024``
  (``tokbps`` in process.cpp; KB = 1 << 10); ``-v 2`` prints cumulative bytes. Trace lines
  are ``name/pid/uid<TAB>sent<TAB>received`` with six significant digits (C++ ``cout``).
  Its clock (``curtime``) is the timestamp of the last captured packet: on a link that falls
  silent the rates freeze, so the lab keeps a ping trickle on a separate "clock" link.
- iftop counts IP bytes (``ip_len``; IPv6: payload + 40). Text-mode sizes are
  ``readable_size(…, 1024, bytes)``: KB = 1024, MB = 1024², three significant digits
  (≤ 0.5 % rounding per figure). ``-s N`` prints from the packet path only: it needs one
  packet after the deadline, and that packet is counted after the print.
- hostmedic: IP bytes (docs/json.md).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import compare_lab  # noqa: F401  (puts the repository root on sys.path)
from tests.lab.netlab import counting_handles

ETHERNET_HEADER_BYTES = 14
NETHOGS_KB = 1024
IFTOP_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- /proc figures of a monitor process ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class CpuSample:
    """CPU time of one process at one moment: ``stat`` ticks (threads and reaped children
    included) and the sum of its live threads' ``schedstat`` run time (ns precision)."""

    at_s: float
    stat_s: float
    sched_s: float


def cpu_sample(pid: int) -> CpuSample | None:
    """utime+stime+cutime+cstime of ``pid`` (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            rest = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    ticks = sum(int(v) for v in rest[11:15])
    sched = 0
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/schedstat") as f:
                sched += int(f.read().split()[0])
    return CpuSample(time.monotonic(), ticks / CLK_TCK, sched / 1e9)


def cpu_share(a: CpuSample | None, b: CpuSample | None) -> dict[str, float] | None:
    """CPU seconds per wall second between two samples (1.0 = one full core)."""
    if a is None or b is None or b.at_s <= a.at_s:
        return None
    wall = b.at_s - a.at_s
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(b.stat_s - a.stat_s, 3),
        "core_share": (b.stat_s - a.stat_s) / wall,
        "core_share_schedstat": (b.sched_s - a.sched_s) / wall,
    }


def memory_kib(pid: int) -> dict[str, int]:
    """VmHWM (peak RSS) and VmRSS of ``pid`` in KiB (empty once it is gone)."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(value.split()[0])
    return out


# --- the monitors -------------------------------------------------------------------------


@dataclass
class Monitor:
    """One running monitor: what it is, its process and where its stdout goes."""

    name: str  # label in the tables: hostmedic, nethogs, nethogs -C, nethogs -C -v2, iftop p1
    kind: str  # hostmedic | nethogs | iftop
    proc: subprocess.Popen[str]
    out_path: Path
    sockets_needed: int
    started_s: float = field(default_factory=time.monotonic)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.out_path.read_text(errors="replace") if self.out_path.exists() else ""

    def errors(self) -> str:
        err = self.out_path.with_suffix(".err")
        return err.read_text(errors="replace") if err.exists() else ""


def hostmedic_argv(hostmedic: str, duration_s: float) -> list[str]:
    return [hostmedic, "bandwidth", "--duration", f"{duration_s:g}", "--json"]


def nethogs_argv(devices: Iterable[str], udp: bool, view: int, refresh_limit: int) -> list[str]:
    """Trace mode, 1 s refresh; ``udp`` adds -C; ``view`` 0 = KB/s, 2 = cumulative bytes."""
    flags = ["-t", "-d", "1", "-v", str(view), "-c", str(refresh_limit)]
    return ["nethogs", *flags, *(["-C"] if udp else []), *devices]


def iftop_argv(device: str, seconds: int) -> list[str]:
    return ["iftop", "-t", "-n", "-N", "-P", "-B", "-L", "100000", "-s", str(seconds), "-i", device]


def start_monitor(
    lab: Any, workdir: Path, name: str, kind: str, argv: list[str], sockets_needed: int
) -> Monitor:
    """Spawn ``argv`` in the lab's server namespace with stdout and stderr to files."""
    slug = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")
    out = workdir / f"{slug}.out"
    with open(out, "w") as stdout, open(workdir / f"{slug}.err", "w") as stderr:
        proc = lab.spawn(lab.srv, argv, stdout=stdout, stderr=stderr)
    return Monitor(name, kind, proc, out, sockets_needed)


def wait_ready(monitors: Collection[Monitor], timeout_s: float = 20.0) -> dict[str, float]:
    """Block until every monitor holds its packet sockets (hostmedic: its cgroup eBPF links
    or its ring); returns each one's start-up time."""
    deadline = time.monotonic() + timeout_s
    ready: dict[str, float] = {}
    while len(ready) < len(monitors):
        for m in monitors:
            if m.name in ready:
                continue
            if m.proc.poll() is not None:
                raise RuntimeError(f"{m.name} exited {m.proc.returncode}: {m.errors()[-500:]}")
            if counting_handles(m.pid) >= m.sockets_needed:
                ready[m.name] = time.monotonic() - m.started_s
        if time.monotonic() > deadline:
            missing = [m.name for m in monitors if m.name not in ready]
            raise RuntimeError(f"monitors never opened their capture: {missing}")
        time.sleep(0.02)
    return ready


# --- parsers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NethogsLine:
    name: str
    pid: int
    uid: int
    sent: float
    received: float


def parse_nethogs(text: str) -> list[list[NethogsLine]]:
    """nethogs ``-t`` output as one list of lines per refresh (``Unknown connection`` rows,
    which only list hashes, are skipped)."""
    refreshes: list[list[NethogsLine]] = []
    for raw in text.splitlines():
        line = raw.rstrip("\n")
        if line.startswith("Refreshing:"):
            refreshes.append([])
            continue
        if not refreshes or "\t" not in line:
            continue
        head, *values = line.split("\t")
        if len(values) != 2:
            continue
        name, _, rest = head.rpartition("/")
        name, _, pid = name.rpartition("/")
        try:
            refreshes[-1].append(
                NethogsLine(name, int(pid), int(rest), float(values[0]), float(values[1]))
            )
        except ValueError:
            continue
    return refreshes


def nethogs_integrated(
    refreshes: list[list[NethogsLine]], pids: Collection[int], interval_s: float = 1.0
) -> tuple[float, float]:
    """(sent, received) bytes from KB/s lines: Σ rate × refresh interval over all refreshes."""
    sent = sum(ln.sent for r in refreshes for ln in r if ln.pid in pids)
    recv = sum(ln.received for r in refreshes for ln in r if ln.pid in pids)
    return sent * NETHOGS_KB * interval_s, recv * NETHOGS_KB * interval_s


def nethogs_totals(
    refreshes: list[list[NethogsLine]], pids: Collection[int]
) -> tuple[float, float]:
    """(sent, received) bytes of ``-v 2`` output: the last refresh's cumulative figures."""
    last: dict[int, NethogsLine] = {}
    for r in refreshes:
        for ln in r:
            last[ln.pid] = ln
    rows = [ln for pid, ln in last.items() if pid in pids]
    return sum(ln.sent for ln in rows), sum(ln.received for ln in rows)


def nethogs_names(refreshes: list[list[NethogsLine]]) -> dict[str, int]:
    """name/pid → count of refreshes it appeared in (what nethogs saw, for the JSON)."""
    seen: dict[str, int] = {}
    for r in refreshes:
        for ln in r:
            key = f"{ln.name}/{ln.pid}"
            seen[key] = seen.get(key, 0) + 1
    return seen


@dataclass(frozen=True, slots=True)
class IftopPair:
    local: str  # ip:port
    remote: str
    sent_bytes: float
    received_bytes: float


_IFTOP_SIZE = re.compile(r"^([0-9.]+)([KMGT]?B)$")


def iftop_size(text: str) -> float:
    """``49.5MB`` → bytes (KB = 1024, as iftop's readable_size with ksize 1024)."""
    m = _IFTOP_SIZE.match(text)
    if m is None:
        raise ValueError(f"not an iftop byte size: {text!r}")
    return float(m.group(1)) * IFTOP_UNITS[m.group(2)]


def parse_iftop(text: str) -> tuple[list[IftopPair], bool]:
    """Host-pair lines of one ``iftop -t -B -P`` print (cumulative column), and whether the
    print was complete (its closing ``====`` line seen)."""
    pairs: list[IftopPair] = []
    pending: tuple[str, float] | None = None
    complete = False
    for line in text.splitlines():
        if line.startswith("===="):
            complete = True
        parts = line.split()
        if "=>" in parts:
            i = parts.index("=>")
            pending = (parts[i - 1], iftop_size(parts[-1]))
        elif "<=" in parts and pending is not None:
            i = parts.index("<=")
            pairs.append(IftopPair(pending[0], parts[i - 1], pending[1], iftop_size(parts[-1])))
            pending = None
    return pairs, complete


def remote_matches(endpoint: str, ips: Collection[str]) -> bool:
    """Whether an iftop ``-P`` endpoint (``ip:port``, IPv6 too: iftop appends ``:port``
    without brackets) is one of ``ips``."""
    for ip in ips:
        if endpoint == ip or (endpoint.startswith(ip + ":") and endpoint[len(ip) + 1 :].isdigit()):
            return True
    return False


def iftop_remote_bytes(
    pairs: Iterable[IftopPair], remote_ips: Collection[str]
) -> tuple[float, float]:
    """(sent, received) bytes of every pair whose remote host is one of ``remote_ips``."""
    sent = recv = 0.0
    for p in pairs:
        if remote_matches(p.remote, remote_ips):
            sent += p.sent_bytes
            recv += p.received_bytes
    return sent, recv


def stop_iftop(lab: Any, mon: Monitor, link: int) -> bool:
    """Nudge an ``iftop -s`` after its deadline until it prints and exits (≤ 8 tries);
    ``lab`` is a CompareLab (its nudge sends one datagram onto lab link ``link``)."""
    deadline = mon.started_s + mon.extra["seconds"] + 1.2
    time.sleep(max(0.0, deadline - time.monotonic()))
    for _ in range(8):
        if mon.proc.poll() is not None:
            break
        lab.nudge(link)
        time.sleep(0.7)
    mon.extra["exited"] = mon.proc.poll() is not None
    return bool(mon.extra["exited"])

"""Running processes as the compromise checks need them (seed 004 §恶意进程 Linux:
``netstat -nap`` for unauthorised listening ports, ``ls -l /proc/$PID/exe`` for the file
behind them; §排查病毒木马: ``find /proc/ -name exe | … | grep deleted``).

Live only. Hidden processes are found three ways, none of which trusts the /proc
directory listing a readdir hook (an ``ld.so.preload`` rootkit) filters: probing
``/proc/<pid>`` over the pid range in use, the ``children`` lists of every visible task,
and mounts laid over a ``/proc/<pid>`` directory.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import time

from hostmedic.collectors.packages import package_database_present, package_owners
from hostmedic.collectors.procfs import SocketOwners, read_process_info
from hostmedic.collectors.sockdiag import SockDiag
from hostmedic.errors import FactUnavailable
from hostmedic.facts.bandwidth import ProcessInfo
from hostmedic.facts.security import HiddenProcess, Listener, ProcessFacts, RunningProcess

PROC = "/proc"
TCP_LISTEN, UDP_UNCONNECTED = 10, 7
KTHREADD = 2
PROBE_MARGIN = 1024  # pids above the highest in use, for processes born meanwhile
MAX_PROBES = 200_000  # ~10 µs each on procfs; beyond, the children lists still cover
MAX_PROCESSES = 20_000
_MOUNTED_PID = re.compile(r"/proc/(\d+)(?:/|$)")


def _listed(proc: str) -> set[int]:
    return {int(n) for n in os.listdir(proc) if n.isdigit()}


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read(1 << 20).decode("utf-8", "replace")
    except OSError:
        return None


def _tasks_and_children(proc: str, pids: set[int]) -> tuple[set[int], set[int]]:
    """Thread ids of the listed processes, and every pid their ``children`` files name."""
    tids: set[int] = set()
    children: set[int] = set()
    for pid in pids:
        try:
            tasks = [int(t) for t in os.listdir(f"{proc}/{pid}/task") if t.isdigit()]
        except OSError:
            continue
        tids.update(tasks)
        for tid in tasks:
            text = _read(f"{proc}/{pid}/task/{tid}/children") or ""
            children.update(int(c) for c in text.split() if c.isdigit())
    return tids, children


def parse_mounted_pids(mountinfo: str) -> set[int]:
    """Pids whose /proc directory has a mount laid over it (mountinfo field 5)."""
    pids: set[int] = set()
    for line in mountinfo.splitlines():
        fields = line.split()
        match = _MOUNTED_PID.match(fields[4]) if len(fields) > 4 else None
        if match:
            pids.add(int(match[1]))
    return pids


def _probe_limit(proc: str, listed: set[int]) -> int:
    def number(path: str) -> int:
        text = (_read(path) or "").strip()
        return int(text) if text.isdigit() else 0

    pid_max = number(f"{proc}/sys/kernel/pid_max") or 4_194_304
    highest = max([*listed, number(f"{proc}/sys/kernel/ns_last_pid")], default=0)
    return min(pid_max, highest + PROBE_MARGIN, MAX_PROBES)


def _tgid(proc: str, pid: int) -> int | None:
    for line in (_read(f"{proc}/{pid}/status") or "").splitlines():
        if line.startswith("Tgid:"):
            value = line.split()[1:2]
            return int(value[0]) if value and value[0].isdigit() else None
    return None


def find_hidden(proc: str = PROC) -> tuple[list[HiddenProcess], int]:
    """Processes /proc answers for but does not list, and pids mounted over; with the
    number of pids probed."""
    listed = _listed(proc)
    tids, children = _tasks_and_children(proc, listed)
    limit = _probe_limit(proc, listed)
    suspects = {p for p in children if p not in listed}
    suspects |= {p for p in range(1, limit + 1) if p not in tids and os.path.exists(f"{proc}/{p}")}
    suspects -= listed
    if suspects:  # born during the scan, or a thread whose process is listed: not hidden
        listed |= _listed(proc)
        suspects = {
            p
            for p in suspects - listed
            if os.path.exists(f"{proc}/{p}") and _tgid(proc, p) not in listed
        }
    hidden = [_hidden(proc, pid, "unlisted") for pid in sorted(suspects)]
    mounted = parse_mounted_pids(_read(f"{proc}/self/mountinfo") or "")
    hidden += [_hidden(proc, pid, "mounted_over") for pid in sorted(mounted)]
    return hidden, limit


def _hidden(proc: str, pid: int, how: str) -> HiddenProcess:
    info = read_process_info(pid, proc)
    return HiddenProcess(pid, info.name, info.exe, how)


def read_listeners() -> list[Listener]:
    """Listening TCP sockets and bound, unconnected UDP sockets, with their owner pid."""
    records = []
    with SockDiag() as diag:
        for family in (socket.AF_INET, socket.AF_INET6):
            records += diag.dump(socket.IPPROTO_TCP, family, 1 << TCP_LISTEN)
            records += [
                r
                for r in diag.dump(socket.IPPROTO_UDP, family)
                if r.remote_port == 0 and r.state == UDP_UNCONNECTED
            ]
    owners = SocketOwners()
    owners.refresh()
    listeners: list[Listener] = []
    for r in records:
        pids = owners.holders(r.inode)
        proto = "tcp" if r.protocol == socket.IPPROTO_TCP else "udp"
        listeners.append(Listener(proto, r.local_ip, r.local_port, min(pids) if pids else None))
    return listeners


def _with_packages(processes: list[ProcessInfo]) -> list[ProcessInfo]:
    if not package_database_present():
        return processes
    exes = sorted({p.exe for p in processes if p.exe and not p.exe_deleted})
    owners = package_owners(exes)
    return [
        dataclasses.replace(p, package=owners.get(p.exe), package_checked=True)
        if p.exe and not p.exe_deleted
        else p
        for p in processes
    ]


def read_processes(proc: str = PROC) -> ProcessFacts:
    """Every process with its identity, the listening sockets and the hidden processes.

    Raises FactUnavailable when /proc cannot be listed.
    """
    read_at = time.time()
    try:
        pids = sorted(_listed(proc))[:MAX_PROCESSES]
    except OSError as exc:
        raise FactUnavailable(str(exc), key="reason.unreadable", path=proc) from exc
    infos = [i for i in (read_process_info(p, proc) for p in pids) if not i.gone]
    infos = _with_packages(infos)
    running = tuple(
        RunningProcess(i, bool(i.exe) and i.exe_deleted and os.path.exists(i.exe or ""))
        for i in infos
    )
    listeners = read_listeners()
    hidden, probed = find_hidden(proc)
    # kernel threads (kthreadd, pid 2, and its children) have no executable by nature
    blind = tuple(
        i.pid for i in infos if i.exe is None and i.pid != KTHREADD and i.ppid != KTHREADD
    )
    return ProcessFacts(running, tuple(listeners), tuple(hidden), probed, read_at, blind)

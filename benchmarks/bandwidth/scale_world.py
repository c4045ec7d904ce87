"""The simulated host for the bandwidth scale benchmark: servers, idle clients, churn.

Three roles, each a separate process started by ``scale.py`` inside its namespaces:

* ``server`` (peer namespace): listening sockets with a huge backlog that never accept.
  The kernel completes every handshake and parks the connection in the accept queue, so
  the peer side of 50,000 connections holds no file descriptor. That matters: /proc is
  shared by all network namespaces, and a server process holding 50,000 fds would double
  the monitor's /proc/*/fd rescan with sockets that belong to "another host".
* ``world`` (monitored namespace): opens N connections, forks a child that keeps them and
  sleeps, closes its own copies, repeats; writes the children's pids to a JSON file.
  Children flagged as talkers send small writes while SIGUSR1 is in force (until SIGUSR2).
* ``churn`` (monitored namespace, started by the measuring process): on each line read
  from stdin opens a few NEW connections that carry bytes, closes the oldest beyond a cap,
  and answers ``ok`` -- each tick then has sockets whose owner the monitor does not know.

Everything is bounded: every process arms ``alarm(max_seconds)`` (default action: exit),
children die with their parent (PR_SET_PDEATHSIG), and the churn keeps at most ``keep``
sockets. Stdlib only, so forked children stay small.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import gc
import json
import os
import signal
import socket
import sys
import time
from collections import deque

PR_SET_PDEATHSIG = 1
TALK_PERIOD_S = 0.05
TALK_PAYLOAD = b"x" * 100
CHURN_PAYLOAD = b"c" * 200
_CONTROL = {signal.SIGUSR1, signal.SIGUSR2}


def _die_with_parent() -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")


def _connect(server: str, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5.0)
    try:
        s.connect((server, port))
    except BaseException:
        s.close()
        raise
    s.setblocking(False)
    return s


def _child(socks: list[socket.socket], talker: bool, max_seconds: int) -> None:
    """Body of one forked client process: hold the sockets; talk while told to."""
    gc.disable()  # nothing to collect, and a collection would un-share COW pages
    _die_with_parent()
    signal.alarm(max_seconds)
    if not talker:
        while True:
            signal.sigwait(_CONTROL)  # ignore; the control signals are blocked and queued
    active = False
    while True:
        if active:
            info = signal.sigtimedwait(_CONTROL, TALK_PERIOD_S)
        else:
            info = signal.sigwaitinfo(_CONTROL)
        if info is not None:
            active = info.si_signo == signal.SIGUSR1
        if active:
            for s in socks:
                try:
                    s.send(TALK_PAYLOAD)
                except BlockingIOError:  # peer's window full: skip this round
                    continue


def run_world(a: argparse.Namespace) -> None:
    """Create the client processes, write their pids, then wait to be killed."""
    _die_with_parent()
    signal.alarm(a.max_seconds)
    # Blocked before fork so a control signal can never hit a child before it waits for it.
    signal.pthread_sigmask(signal.SIG_BLOCK, _CONTROL)
    gc.freeze()
    per_process = [a.sockets // a.processes] * a.processes
    for i in range(a.sockets % a.processes):
        per_process[i] += 1
    talkers = set(range(a.talkers))
    ports = a.ports
    children: list[int] = []
    t0 = time.monotonic()
    n = 0
    for index, count in enumerate(per_process):
        socks = []
        for _ in range(count):
            socks.append(_connect(a.server, ports[n % len(ports)]))
            n += 1
        pid = os.fork()
        if pid == 0:
            try:
                _child(socks, index in talkers, a.max_seconds)
            finally:
                os._exit(0)
        for s in socks:
            s.close()
        children.append(pid)
    info = {
        "world_pid": os.getpid(),
        "children": children,
        "talkers": [children[i] for i in sorted(talkers)],
        "sockets": n,
        "build_s": time.monotonic() - t0,
    }
    tmp = a.pids + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(info, f)
    os.replace(tmp, a.pids)
    # Never reap: a dead child stays a zombie, so its pid cannot be reused before the
    # orchestrator kills it by pid.
    while True:
        signal.pause()


def run_server(a: argparse.Namespace) -> None:
    """Listen on every port with a huge backlog and never accept; print ``ready``."""
    _die_with_parent()
    signal.alarm(a.max_seconds)
    listeners = []
    for port in a.ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((a.server, port))
        s.listen(a.backlog)
        listeners.append(s)
    print("ready", flush=True)
    while True:
        signal.pause()


def run_churn(a: argparse.Namespace) -> None:
    """Per stdin line: open ``per_tick`` new connections with bytes, keep at most ``keep``."""
    _die_with_parent()
    signal.alarm(a.max_seconds)
    open_socks: deque[socket.socket] = deque()
    n = 0
    for line in sys.stdin:
        if line.strip() != "go":
            break
        for _ in range(a.per_tick):
            s = _connect(a.server, a.ports[n % len(a.ports)])
            n += 1
            s.send(CHURN_PAYLOAD)
            open_socks.append(s)
        while len(open_socks) > a.keep:
            open_socks.popleft().close()
        print("ok", flush=True)
    for s in open_socks:
        s.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("role", choices=("server", "world", "churn"))
    p.add_argument("--server", required=True, help="server IPv4 address")
    p.add_argument("--ports", type=int, nargs="+", required=True)
    p.add_argument("--max-seconds", type=int, default=900)
    p.add_argument("--backlog", type=int, default=65535)
    p.add_argument("--sockets", type=int, default=0)
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--talkers", type=int, default=0)
    p.add_argument("--pids", default="")
    p.add_argument("--per-tick", type=int, default=5)
    p.add_argument("--keep", type=int, default=200)
    a = p.parse_args(argv)
    {"server": run_server, "world": run_world, "churn": run_churn}[a.role](a)


if __name__ == "__main__":
    main()

"""Cost of watching containers: one ``BandwidthMonitor.sample()`` with N attached namespaces.

For each N the script builds ``hmE-ns-host`` (the monitored host, bridge ``br0`` on
198.18.40.1/24) and N container namespaces ``hmE-ns-c<i>`` attached to the bridge by veth
pairs (Docker's layout). Each container runs one process holding 10 TCP connections to a
sink on the host and sending, every 100 ms, 100 bytes on one of them and a UDP datagram to
the host (``--traffic busy``: every tick every namespace has sockets to dump and traffic to
attribute; ``idle``: the same sockets, silent, the common case on a host). Then,
inside the host namespace, ``start()`` and ``--cycles`` calls of ``sample()`` one second
apart: wall time and CPU time per cycle, and the monitor's whole CPU use (all threads:
the re-discovery of the containers every 10 s runs on a helper thread).

Needs root. Not a test. Usage (from the repository root)::

    .venv/bin/python benchmarks/bandwidth/namespaces.py      # N = 0, 20, 50; idle, busy
    .venv/bin/python benchmarks/bandwidth/namespaces.py --counts 20 --cycles 30

Prints a Markdown table and writes ``benchmarks/results/namespaces-<date>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
REPO = HERE.parents[2]
RESULTS = REPO / "benchmarks" / "results"
HOST = "hmE-ns-host"
HOST_IP = "198.18.40.1"
TCP_PORT, UDP_PORT = 7100, 7101
MAX_SECONDS = 300.0


def sh(*cmd: str, check: bool = True) -> None:
    subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=60)


def ours() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return [ln.split()[0] for ln in out.stdout.splitlines() if ln.startswith("hmE-ns-")]


def teardown() -> None:
    """Kill what runs in our namespaces (only our processes run there), delete them."""
    for name in ours():
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True,
                              check=False).stdout.split()  # fmt: skip
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        sh("ip", "netns", "del", name, check=False)


def spawn(ns: str, *args: str, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, str(HERE), *args],
                            text=True, **kw)  # fmt: skip


def build(n: int) -> None:
    sh("ip", "netns", "add", HOST)
    sh("ip", "-n", HOST, "link", "set", "lo", "up")
    sh("ip", "-n", HOST, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", HOST, "addr", "add", f"{HOST_IP}/24", "dev", "br0")
    sh("ip", "-n", HOST, "link", "set", "br0", "up")
    for i in range(n):
        ns, dev = f"hmE-ns-c{i}", f"c{i}"
        sh("ip", "netns", "add", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", HOST, "link", "add", dev, "type", "veth", "peer", "name", "eth0",
           "netns", ns)  # fmt: skip
        sh("ip", "-n", HOST, "link", "set", dev, "master", "br0")
        sh("ip", "-n", HOST, "link", "set", dev, "up")
        sh("ip", "-n", ns, "addr", "add", f"198.18.40.{10 + i}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")


# --- roles run inside the namespaces ---------------------------------------------------------


def sink(seconds: float) -> None:
    """On the host: accept the containers' TCP connections, drain them and the UDP port."""
    sel = selectors.DefaultSelector()
    listener = socket.create_server((HOST_IP, TCP_PORT), backlog=1024)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((HOST_IP, UDP_PORT))
    for s in (listener, udp):
        sel.register(s, selectors.EVENT_READ)
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for key, _ in sel.select(0.5):
            s = key.fileobj
            if s is listener:
                conn, _ = listener.accept()
                sel.register(conn, selectors.EVENT_READ)
            elif isinstance(s, socket.socket) and not s.recv(65536) and s is not udp:
                sel.unregister(s)
                s.close()


def worker(seconds: float, busy: bool) -> None:
    """In a container: 10 TCP connections and 2 UDP sockets; a little traffic every 100 ms
    when ``busy``."""
    conns = [socket.create_connection((HOST_IP, TCP_PORT), timeout=5) for _ in range(10)]
    udp = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
    deadline, i = time.monotonic() + seconds, 0
    while not busy and time.monotonic() < deadline:
        time.sleep(0.5)
    while time.monotonic() < deadline:
        conns[i % len(conns)].sendall(b"x" * 100)
        udp[i % 2].sendto(b"y" * 100, (HOST_IP, UDP_PORT))
        i += 1
        time.sleep(0.1)


def measure(cycles: int, interval: float) -> None:
    """In the host namespace: time start() and each sample(); JSON on stdout."""
    sys.path.insert(0, str(REPO / "src"))
    from hostmedic.collectors.bandwidth import BandwidthMonitor, MonitorOptions

    mon = BandwidthMonitor(MonitorOptions())
    t0 = time.perf_counter()
    mon.start()
    start_ms = (time.perf_counter() - t0) * 1000
    rows = []
    w_start, c_start = time.perf_counter(), time.process_time()
    try:
        for _ in range(cycles):
            time.sleep(interval)
            refreshed_before = mon._read_s
            w0, c0 = time.perf_counter(), time.thread_time()
            mon.sample()
            wall, cpu = time.perf_counter() - w0, time.thread_time() - c0
            rows.append({"wall_ms": wall * 1000, "cpu_ms": cpu * 1000,
                         "refresh": mon._read_s != refreshed_before})  # fmt: skip
        share = (time.process_time() - c_start) / (time.perf_counter() - w_start)
        watched = len(mon._spaces) - 1
        labels = sorted(c.info.label for c in mon._watch.attached.values()) if mon._watch else []
    finally:
        mon.close()
    print(json.dumps({"start_ms": start_ms, "cycles": rows, "watched": watched,
                      "cpu_share": share, "labels": labels[:3]}))  # fmt: skip


# --- orchestration ------------------------------------------------------------------------


def run_one(n: int, cycles: int, interval: float, traffic: str) -> dict[str, Any]:
    teardown()
    procs: list[subprocess.Popen[str]] = []
    try:
        build(n)
        seconds = str(cycles * interval + 30)
        procs.append(spawn(HOST, "--role", "sink", "--seconds", seconds, stdout=subprocess.PIPE))
        assert procs[0].stdout is not None
        if procs[0].stdout.readline().strip() != "ready":
            raise RuntimeError("sink did not start")
        for i in range(n):
            procs.append(spawn(f"hmE-ns-c{i}", "--role", "worker", "--seconds", seconds,
                               "--traffic", traffic))  # fmt: skip
        time.sleep(2.0)  # connections established
        done = subprocess.run(
            ["ip", "netns", "exec", HOST, sys.executable, str(HERE), "--role", "measure",
             "--cycles", str(cycles), "--interval", str(interval)],
            capture_output=True, text=True, timeout=cycles * interval + 120, check=True,
        )  # fmt: skip
        result: dict[str, Any] = json.loads(done.stdout)
        result["containers"] = n
        result["traffic"] = traffic
        result["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
        return result
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.kill()
            p.wait(timeout=10)
        teardown()


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| containers watched | traffic | cycle median ms | p95 ms | max ms | cycle CPU median ms "
        "| monitor CPU (all threads) | start() ms | load avg |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        plain = r["cycles"][1:]  # the first cycle warms up
        walls = sorted(c["wall_ms"] for c in plain)
        cpus = [c["cpu_ms"] for c in plain]
        p95 = walls[min(len(walls) - 1, int(0.95 * len(walls)))]
        lines.append(
            f"| {r['watched']} | {r['traffic']} | {statistics.median(walls):.1f} | {p95:.1f} "
            f"| {walls[-1]:.1f} "
            f"| {statistics.median(cpus):.1f} | {100 * r['cpu_share']:.1f} % | "
            f"{r['start_ms']:.0f} | {' '.join(r['loadavg'])} |"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--role", choices=("orchestrate", "sink", "worker", "measure"),
                    default="orchestrate")  # fmt: skip
    ap.add_argument("--counts", type=int, nargs="+", default=[0, 20, 50])
    ap.add_argument("--cycles", type=int, default=25)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--traffic", choices=("busy", "idle", "both"), default="both")
    a = ap.parse_args()
    seconds = min(a.seconds, MAX_SECONDS)
    if a.role == "sink":
        sink(seconds)
        return 0
    if a.role == "worker":
        worker(seconds, a.traffic != "idle")
        return 0
    if a.role == "measure":
        measure(a.cycles, a.interval)
        return 0
    if os.geteuid() != 0:
        print("namespaces.py needs root (network namespaces)", file=sys.stderr)
        return 2
    results = []
    try:
        kinds = ("idle", "busy") if a.traffic == "both" else (a.traffic,)
        for n in a.counts:
            for kind in kinds if n else kinds[:1]:
                print(f"[{time.strftime('%H:%M:%S')}] {n} {kind} containers", file=sys.stderr)
                results.append(run_one(n, a.cycles, a.interval, kind))
    except KeyboardInterrupt:
        teardown()
        return 130
    print(table(results))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"namespaces-{dt.datetime.now():%Y-%m-%d-%H%M%S}.json"
    path.write_text(json.dumps(results, indent=1))
    print(f"results: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The measuring side of the bandwidth scale benchmark (runs inside the monitored namespace).

Builds one ``BandwidthMonitor`` (``--no-tcp-iterator``: without the changed-only TCP
iterator), times ``start()`` and then ``sample()`` in three regimes -- idle sockets,
steady traffic on ~1 % of sockets whose owners are known, and churn (new connections with
bytes every tick, which forces the /proc/*/fd rescan) -- then breaks the worst regime down
twice: with wall-clock wrappers around the big steps of ``sample()`` (low overhead, honest
milliseconds) and with cProfile (per-function view, inflated by the profiler's per-call
cost). Results go to a JSON file for ``scale.py``.
"""

from __future__ import annotations

import cProfile
import gc
import inspect
import json
import math
import os
import pstats
import select
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

WORLD = Path(__file__).with_name("scale_world.py")
TCP_LISTEN = 10
SEP = " > "  # joins a nested step's label to its parent's


def rss_kib() -> dict[str, int]:
    """VmRSS and VmHWM of this process, in KiB."""
    out = {}
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0])
    return out


def summarize(times_s: list[float]) -> dict[str, Any]:
    """Median, p95 (nearest rank), max, mean and min in milliseconds, plus the raw list."""
    ms = sorted(t * 1000 for t in times_s)
    return {
        "cycles": len(ms),
        "median_ms": statistics.median(ms),
        "p95_ms": ms[max(0, math.ceil(0.95 * len(ms)) - 1)],
        "max_ms": ms[-1],
        "mean_ms": statistics.fmean(ms),
        "min_ms": ms[0],
        "all_ms": [round(t, 3) for t in ms],
    }


class Churn:
    """The churn process: each ``tick()`` makes it open new connections that carry bytes."""

    def __init__(self, world: dict[str, Any], per_tick: int, max_seconds: int) -> None:
        cmd = [sys.executable, str(WORLD), "churn", "--server", world["server"], "--ports"]
        cmd += [str(p) for p in world["ports"]]
        cmd += ["--per-tick", str(per_tick), "--max-seconds", str(max_seconds)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def tick(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], 10.0)
        if not ready or self.proc.stdout.readline().strip() != "ok":
            raise RuntimeError("churn process did not answer within 10 s")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # our own child, by pid
        self.proc.wait(timeout=10)


class Timers:
    """Wall-clock wrappers around methods; nested calls are labelled under their parent."""

    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._stack: list[str] = []
        self._undo: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, name: str, label: str | Callable[[tuple], str]) -> None:
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            key = label(args) if callable(label) else label
            key = f"{self._stack[-1]}{SEP}{key}" if self._stack else key
            self._stack.append(key)
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.total[key] += time.perf_counter() - t0
                self.calls[key] += 1
                self._stack.pop()

        setattr(owner, name, timed)
        self._undo.append((owner, name, original))

    def restore(self) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)
        self._undo.clear()


def instrument(mon: Any, timers: Timers) -> None:
    """Wrap the big steps of BandwidthMonitor.sample() (see collectors/bandwidth.py)."""
    import hostmedic.collectors.bandwidth as bw

    def dump_label(args: tuple) -> str:
        return "tcp dump" if args[0] == socket.IPPROTO_TCP else "udp dump"

    timers.wrap(mon, "_refresh_namespaces", "containers (apply the new view)")
    timers.wrap(mon, "_drain_connects", "connect tracer drain")
    timers.wrap(mon.own.sockdiag, "dump", dump_label)
    timers.wrap(mon.own.sockdiag._nl, "recv", "kernel (recv)")
    if mon._tcp_iterator is not None:
        import hostmedic.collectors.tcp_iterator as ti

        timers.wrap(mon._tcp_iterator, "read", "tcp iterator")
        timers.wrap(ti.bpf, "iter_read", "kernel (iterator run)")
        timers.wrap(ti, "parse_output", "parse")
    if mon.own.destroy is not None:
        timers.wrap(mon.own.destroy, "drain", "destroy drain")
    timers.wrap(mon.own.tcp, "update", "delta tracker")
    timers.wrap(mon._owners, "owners_of", "owner lookup")
    timers.wrap(mon._owners, "refresh", "rescan /proc/*/fd")
    timers.wrap(mon._datagram_owners, "attribute", "udp/icmp owners")
    timers.wrap(bw, "read_process_info", "process info")
    timers.wrap(bw.netdev, "read_net_dev", "read /proc/net/dev")
    timers.wrap(bw.netdev, "interface_traffic", "interface counters (parse)")
    timers.wrap(mon.ledger, "tick", "ledger tick")


def run_regime(
    mon: Any,
    cycles: int,
    warmup: int,
    interval_s: float,
    before: Callable[[], None] | None = None,
    cpu: list[float] | None = None,
) -> tuple[list[float], int]:
    """Time ``cycles`` calls of sample() after ``warmup`` untimed ones; also count rescans.

    With ``cpu``, the process CPU time (user + system) of each timed cycle is appended to
    it: wall time well above CPU time means the monitor was preempted (a busy machine).
    """
    times: list[float] = []
    scans0 = mon._owners.scans
    for i in range(warmup + cycles):
        if before is not None:
            before()
        time.sleep(interval_s)
        if i == warmup:
            scans0 = mon._owners.scans
        c0, t0 = time.process_time(), time.perf_counter()
        mon.sample()
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        if i >= warmup:
            times.append(dt)
            if cpu is not None:
                cpu.append(dc)
    return times, mon._owners.scans - scans0


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        os.kill(pid, sig)  # talkers are the world's children, started by us


def breakdown(mon: Any, cycles: int, interval_s: float, before: Any) -> dict[str, Any]:
    """Mean milliseconds per cycle of each wrapped step, plus the unwrapped rest."""
    timers = Timers()
    gc_s, gc_full, gc_started = [0.0], [0], [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
            return
        gc_s[0] += time.perf_counter() - gc_started[0]
        gc_full[0] += info["generation"] == 2

    instrument(mon, timers)
    gc.callbacks.append(on_gc)
    try:
        times, scans = run_regime(mon, cycles, 0, interval_s, before)
    finally:
        gc.callbacks.remove(on_gc)
        timers.restore()
    n = len(times)
    per = {k: v * 1000 / n for k, v in timers.total.items()}
    top = sum(v for k, v in per.items() if SEP not in k)
    return {
        "cycles": n,
        "rescans": scans,
        "sample_ms": statistics.fmean(times) * 1000,
        "parts_ms": dict(sorted(per.items())),
        "calls": dict(timers.calls),
        "rest_ms": statistics.fmean(times) * 1000 - top,
        # cyclic GC runs inside whichever step allocates: a share of the steps above
        "gc_ms": gc_s[0] * 1000 / n,
        "gc_full_collections": gc_full[0],
    }


def profile(mon: Any, cycles: int, interval_s: float, before: Any, top: int = 20) -> list[dict]:
    """cProfile over ``cycles`` samples: the top functions by own time, ms per cycle."""
    prof = cProfile.Profile()
    for _ in range(cycles):
        if before is not None:
            before()
        time.sleep(interval_s)
        prof.runcall(mon.sample)
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    rows = []
    for (path, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.items():
        where = f"{Path(path).name}:{line}({func})" if line else func
        rows.append(
            {
                "function": where,
                "calls_per_cycle": ncalls / cycles,
                "tottime_ms": tottime * 1000 / cycles,
                "cumtime_ms": cumtime * 1000 / cycles,
            }
        )
    rows.sort(key=lambda r: -r["tottime_ms"])
    return rows[:top]


def micro(mon: Any) -> dict[str, float]:
    """Offline timings: the TCP->TcpSample conversion (GC off) and one standalone rescan."""
    from hostmedic.collectors.ns_sockets import FAMILIES, tcp_sample

    records = [r for f in FAMILIES for r in mon.own.sockdiag.dump(socket.IPPROTO_TCP, f)]
    # tcp_sample() gained a listening-ports argument; pass it when the signature has it
    extra: tuple[Any, ...] = ()
    if len(inspect.signature(tcp_sample).parameters) > 2:
        extra = ({r.local_port for r in records if r.state == TCP_LISTEN},)
    gc.disable()  # the pure conversion cost; the breakdown reports GC separately
    try:
        t0 = time.perf_counter()
        live = [tcp_sample(r, mon._netns, *extra) for r in records if r.state != TCP_LISTEN]
        t1 = time.perf_counter()
    finally:
        gc.enable()
    t2 = time.perf_counter()
    mon._owners.refresh()
    t3 = time.perf_counter()
    return {
        "records": len(records),
        "tcp_sample_conversion_ms": (t1 - t0) * 1000,
        "live": len(live),
        "standalone_rescan_ms": (t3 - t2) * 1000,
        "socket_inodes_in_proc": len(mon._owners._owners),
    }


def monitor_main(world_file: str, out_file: str, a: Any) -> None:
    """Measure everything for one world and write the JSON result to ``out_file``."""
    world = json.loads(Path(world_file).read_text(encoding="utf-8"))
    result: dict[str, Any] = {"rss_before_import_kib": rss_kib()}
    from hostmedic.collectors.bandwidth import BandwidthMonitor, MonitorOptions

    result["rss_after_import_kib"] = rss_kib()
    churn = Churn(world, a.churn_per_tick, a.max_seconds)
    mon = BandwidthMonitor(MonitorOptions(tcp_iterator=not a.no_tcp_iterator))
    try:
        t0 = time.perf_counter()
        mon.start()
        result["start_ms"] = (time.perf_counter() - t0) * 1000
        result["rss_after_start_kib"] = rss_kib()
        result["not_counted"] = mon.not_counted
        result["sources"] = {
            "destroy": mon.own.destroy is not None,
            "connect_tracer": mon._tracer is not None,
            "capture": mon.datagram_method,
            "tcp_iterator": mon.own.iterating,
        }

        def log(msg: str) -> None:
            print(f"  [{world['sockets']}] {msg}", file=sys.stderr, flush=True)

        log(f"start() {result['start_ms']:.0f} ms; sources {result['sources']}")
        regimes: dict[str, Any] = {}
        # One call per cycle: shows each regime really has the traffic it claims.
        deltas: list[int] = []
        update = mon.own.tcp.update

        def counted_update(*args: Any, **kwargs: Any) -> Any:
            out = update(*args, **kwargs)
            deltas.append(len(out))
            return out

        mon.own.tcp.update = counted_update
        befores: dict[str, Any] = {"idle": None, "steady": None, "churn": churn.tick}
        for name in ("idle", "steady", "churn"):
            if name == "steady":
                _signal_all(world["talkers"], signal.SIGUSR1)
            warmup = 2
            cpu: list[float] = []
            deltas.clear()
            times, scans = run_regime(mon, a.cycles, warmup, a.interval, befores[name], cpu)
            if name == "steady":
                _signal_all(world["talkers"], signal.SIGUSR2)
            regimes[name] = summarize(times) | {
                "rescans": scans,
                "warmup": warmup,
                "cpu_median_ms": statistics.median(cpu) * 1000,
                "tcp_deltas_per_cycle": statistics.fmean(deltas[warmup:]),
                "loadavg": Path("/proc/loadavg").read_text(encoding="ascii").split()[:3],
            }
            r = regimes[name]
            log(
                f"{name}: median {r['median_ms']:.1f} p95 {r['p95_ms']:.1f} max {r['max_ms']:.1f}"
                f" ms, {r['tcp_deltas_per_cycle']:.0f} sockets with bytes per cycle"
            )
        result["regimes"] = regimes
        del mon.own.tcp.update  # the class's method again, before the breakdown wraps it
        result["tracked_tcp_sockets"] = len(mon.own.tcp._last)
        result["rss_after_cycles_kib"] = rss_kib()
        if a.profile_cycles > 0:
            worst = max(regimes, key=lambda k: regimes[k]["median_ms"])
            before = befores[worst]
            if worst == "steady":
                _signal_all(world["talkers"], signal.SIGUSR1)
            result["breakdown"] = {"regime": worst} | breakdown(
                mon, a.profile_cycles, a.interval, before
            )
            result["cprofile"] = profile(mon, max(5, a.profile_cycles // 2), a.interval, before)
            if worst == "steady":
                _signal_all(world["talkers"], signal.SIGUSR2)
            result["micro"] = micro(mon)
            log(f"breakdown of {worst} done")
        result["rss_end_kib"] = rss_kib()
    finally:
        mon.close()
        churn.close()
    Path(out_file).write_text(json.dumps(result, indent=1), encoding="utf-8")

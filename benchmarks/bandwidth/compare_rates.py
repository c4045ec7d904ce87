"""Rate windows: hostmedic's 2 s / 10 s / 40 s averages against the link's true rate.

The windows are not in the JSON document, so this drives the Python API inside the lab's
server namespace (run as a script, this module is that child). iperf3 sends to peer 1 at a
steady rate; two monitors (two processes) watch it, ticked the two ways hostmedic ticks:
``absolute`` (every whole second after the start, like a UI timer: ``hostmedic top``) and
``drift`` (sleep one interval after each sample, like ``hostmedic bandwidth``). Each monitor's clock
is wrapped so that the peer's veth counters are read at the very moment the monitor reads
its clock: truth and tool share their timestamps. The truth for a window of ``k`` seconds
ending at a tick is the counter difference over the last ``k`` seconds of wall time
(counters interpolated linearly between ticks; the rate is steady), divided by ``k``.
The tool reads its own counters a moment after its clock (up to a few milliseconds, the
tick's reads), so the peer's counters are read again when each tick is done: the
*bracketed* error measures the tool against the truth interval between the two readings
(0 inside it), which a bursty sender's single write landing in that moment cannot move.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
WINDOWS = (2, 10, 40)


# --- child: inside the server namespace -----------------------------------------------------


def _peer_counters(pid: int, device: str) -> tuple[int, int]:
    """(tx, rx) IP-level bytes *seen from the server* of the peer's ``device``."""
    with open(f"/proc/{pid}/net/dev", encoding="ascii") as f:
        for line in f.read().splitlines()[2:]:
            name, _, data = line.partition(":")
            if name.strip() == device:
                v = [int(x) for x in data.split()]
                return v[0] - 14 * v[1], v[8] - 14 * v[9]  # peer rx = server tx
    raise LookupError(device)


def _child_run(schedule: str, args: argparse.Namespace, out: dict[str, Any]) -> None:
    from hostmedic.collectors.bandwidth import BandwidthMonitor, MonitorOptions

    clock_reads: list[tuple[float, int, int]] = []

    def clock() -> float:
        t = time.monotonic()
        clock_reads.append((t, *_peer_counters(args.truth_pid, args.truth_dev)))
        return t

    m = BandwidthMonitor(MonitorOptions(), clock=clock)
    m.start()
    # the peer's counters again once the tick's reads are done: what the tool read lies
    # between the clock read's counters and these (keyed by the tick's timestamp)
    after_reads = [
        (m.ledger.now_s if m.ledger else 0.0, *_peer_counters(args.truth_pid, args.truth_dev))
    ]
    ticks = []
    try:
        start = time.monotonic()
        for n in range(1, args.seconds + 1):
            if schedule == "absolute":
                time.sleep(max(0.0, start + n - time.monotonic()))
            else:
                time.sleep(1.0)
            m.sample()
            if m.ledger:
                after_reads.append(
                    (m.ledger.now_s, *_peer_counters(args.truth_pid, args.truth_dev))
                )
            f = m.facts(lambda ip: None, None)
            proc = next((p for p in f.processes if p.pid == args.pid), None)
            iface = next((i for i in f.interfaces if i.name == args.device), None)
            ticks.append(
                {
                    "now_s": m.ledger.now_s if m.ledger else None,
                    "elapsed_s": m.ledger.elapsed_s if m.ledger else None,
                    "process": _rates(proc.rates) if proc else None,
                    "interface": _rates(iface.rates) if iface else None,
                }
            )
    finally:
        m.close()
    out[schedule] = {"clock_reads": clock_reads, "after_reads": after_reads, "ticks": ticks}


def _rates(r: Any) -> dict[str, float]:
    return {f"{d}_{w}s": getattr(r, f"{d}_{w}s_bytes_per_s") for d in ("tx", "rx") for w in WINDOWS}


def child(args: argparse.Namespace) -> None:
    out: dict[str, Any] = {}
    _child_run(args.schedule, args, out)
    print(json.dumps(out[args.schedule]))


# --- parent ---------------------------------------------------------------------------------


def _truth_at(reads: list[tuple[float, int, int]], t: float) -> tuple[float, float] | None:
    """(tx, rx) counters at time ``t``, interpolated between clock reads."""
    times = [r[0] for r in reads]
    i = bisect.bisect_left(times, t)
    if i == 0 or i >= len(reads):
        return (
            (float(reads[i][1]), float(reads[i][2])) if i < len(reads) and times[i] == t else None
        )
    (t0, x0, y0), (t1, x1, y1) = reads[i - 1], reads[i]
    a = (t - t0) / (t1 - t0)
    return x0 + a * (x1 - x0), y0 + a * (y1 - y0)


def _bracketed_error(
    tool: float, window: tuple[float, float], window_after: tuple[float, float]
) -> float:
    """The tool's bytes against the truth *interval* its reading instants allow: the tool
    reads its counters a moment after the clock read, so the bytes of a window lie between
    before(end) − after(start) and after(end) − before(start). 0 inside; outside, the
    distance to the nearer bound relative to the truth."""
    (start, end), (start_after, end_after) = window, window_after
    truth, low, high = end - start, end - start_after, end_after - start
    if low <= tool <= high:
        return 0.0
    return (tool - (high if tool > high else low)) / truth


def analyse(run: dict[str, Any]) -> dict[str, Any]:
    """Per window and row kind: tool/truth − 1 at every tick where the window is full
    (``errors``), and the same against the truth interval of the reading instants
    (``bracketed``, when the run recorded the counters after each tick)."""
    reads = [tuple(r) for r in run["clock_reads"]]
    after = [tuple(r) for r in run.get("after_reads", [])]
    result: dict[str, Any] = {}
    for kind in ("process", "interface"):
        for w in WINDOWS:
            errors, bracketed = [], []
            for tick in run["ticks"]:
                if tick[kind] is None or tick["elapsed_s"] < w - 0.01:
                    continue
                now = tick["now_s"]
                a, b = _truth_at(reads, now - w), _truth_at(reads, now)
                if a is None or b is None or b[0] <= a[0]:
                    continue
                tool = tick[kind][f"tx_{w}s"] * w
                errors.append(tool / (b[0] - a[0]) - 1)
                a2, b2 = (
                    (_truth_at(after, now - w), _truth_at(after, now)) if after else (None, None)
                )
                if a2 is not None and b2 is not None:
                    bracketed.append(_bracketed_error(tool, (a[0], b[0]), (a2[0], b2[0])))
            if errors:
                result[f"{kind} tx {w}s"] = {
                    "n": len(errors),
                    "max_abs_error": max(abs(e) for e in errors),
                    "mean_error": sum(errors) / len(errors),
                    "within_1pct": sum(abs(e) <= 0.01 for e in errors) / len(errors),
                    "errors": [round(e, 5) for e in errors],
                }
                if bracketed:
                    result[f"{kind} tx {w}s"]["max_abs_bracketed"] = max(map(abs, bracketed))
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(reads)]
    result["tick_gap_s"] = {"min": min(gaps), "max": max(gaps)} if gaps else None
    return result


def run(
    seconds: int,
    rate: str = "50M",
    schedules: tuple[str, ...] = ("absolute", "drift"),
    write_size: str | None = None,
) -> dict[str, Any]:
    """iperf3 at ``rate`` to peer 1 for ``seconds`` + 7 s; the monitors tick ``seconds`` times.
    ``write_size``: iperf3's ``-l`` (its default, 128 KiB, when None)."""
    from compare_lab import build, loadavg

    c = build(1, clock=False)
    try:
        p1 = c.lab.peer(1)
        server = c.lab.spawn(
            p1.ns, ["timeout", f"{seconds + 40}", "iperf3", "-s", "-1", "-B", p1.peer_ip4]
        )
        c.lab.wait_listening(p1.ns, 5201)
        sizes = ["-l", write_size] if write_size else []
        client = c.lab.spawn(
            c.srv, ["iperf3", "-c", p1.peer_ip4, "-b", rate, "-t", f"{seconds + 7}", *sizes]
        )
        time.sleep(2.0)  # iperf3 at its steady rate before the monitors start
        load_start = loadavg()
        children = {}
        for schedule in schedules:
            argv = [
                sys.executable,
                str(HERE),
                "child",
                "--pid",
                str(client.pid),
                "--device",
                p1.srv_dev,
                "--truth-pid",
                str(server.pid),
                "--truth-dev",
                p1.peer_dev,
                "--seconds",
                str(seconds),
                "--schedule",
                schedule,
            ]
            children[schedule] = c.lab.spawn(
                c.srv, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        raw = {}
        for schedule, proc in children.items():
            out, err = proc.communicate(timeout=seconds + 60)
            if proc.returncode != 0:
                raise RuntimeError(f"rate child ({schedule}) failed: {err.strip()[-800:]}")
            raw[schedule] = json.loads(out)
        return {
            "seconds": seconds,
            "rate": rate,
            "write_size": write_size or "128K (iperf3's default)",
            "loadavg": {"start": load_start, "end": loadavg()},
            "schedules": {s: analyse(raw[s]) for s in schedules},
        }
    finally:
        c.destroy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("child")
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--device", required=True)
    p.add_argument("--truth-pid", type=int, required=True)
    p.add_argument("--truth-dev", required=True)
    p.add_argument("--seconds", type=int, default=45)
    p.add_argument("--schedule", choices=["absolute", "drift"], default="absolute")
    a = ap.parse_args()
    a.seconds = min(a.seconds, 700)
    child(a)


if __name__ == "__main__":
    main()

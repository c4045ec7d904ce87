"""What each monitor costs per packet under a small-packet UDP flood: machine CPU per packet.

``compare.py``'s flood section measures the machine's maximum packet rate directly (three
unpinned senders as fast as they go, each monitor run bracketed by runs without one). On a
2-vCPU VM that rate moves by ±10 % from one run to the next, more than the 5 % bar, so it
cannot show a cost of a few per cent. This script measures the same thing the other way
round: one sender pinned to CPU 0 floods 16-byte datagrams as fast as it can
(``iperf3 -u -l 16 -b 0``) over a veth pair, and in a window in the middle of the flood
(after it has started and the receiver's state is steady; before it ends) the machine's
busy CPU time (``/proc/stat``: everything but idle, iowait and steal, on every CPU, every
process, softirq and monitor included) is divided by the packets the sending device
counted. While the machine is CPU bound, its maximum packet rate is inversely
proportional to that cost, so

    max packet rate reduction = 1 − cost without a monitor / cost with it.

Noise only ever adds CPU time, so the *lowest* cost of the rounds is the estimate (as
``timeit`` takes the best of its repeats); the median is shown beside it, and the median
of *paired* reductions (each monitor run against the run without one that came right
before it in the same round), which cancels the machine's slow drift between rounds.

Receivers:

- ``remote``: the peer drops the flood in its prerouting hook, before any socket, as when
  the receiver is another host: each datagram crosses hostmedic's counter once (egress).
- ``local``: an iperf3 server on CPU 1 owns the receiving socket but is stopped
  (SIGSTOP) during the window: every datagram crosses the counter twice (egress, then
  ingress at the socket) and is dropped at the socket's full buffer, a fixed amount of
  work per packet.
- ``local-read``: the same server reads the flood. Its CPU sleeps and is woken at a rate
  that depends on the sender's speed, so the cost per packet moves by ±5 % between runs
  without any monitor: kept to compare with earlier figures, not to resolve a few per cent.

Senders: ``iperf3`` (a connected socket: hostmedic's fast path) or, with ``--sender spray``
(remote receiver only), ``spray.py``: one unconnected socket ``sendto()`` round-robin to
64 ports, the outbound-flood pattern, every datagram through the hash map. It is Python,
so it makes fewer packets a second than iperf3, each costing the machine more.

Needs root, iperf3, nftables, taskset (util-linux), nethogs and iftop. Network namespaces
``hmB-*`` of its own, lab addresses only, every run bounded (the flood by ``-t``). Usage
(repository root)::

    .venv/bin/python benchmarks/bandwidth/packet_cost.py              # 8 rounds, ≈ 12 min
    .venv/bin/python benchmarks/bandwidth/packet_cost.py --rounds 3 --receivers remote
    .venv/bin/python benchmarks/bandwidth/packet_cost.py --monitors hostmedic,counter,noop
    .venv/bin/python benchmarks/bandwidth/packet_cost.py --sender spray --receivers remote

Ablations (see ``counter_only.py``): ``counter`` / ``counter-hash``, the in-kernel counter
alone, with and without its fast path for connected sockets; ``noop``, programs that only
return 1 on the same two cgroup hooks, the floor of any cgroup_skb counter;
``noop-egress`` / ``noop-ingress``, one hook of the two; ``noop-tp`` / ``noop-tp-rx``, one
such program on a BTF tracepoint instead (``net_dev_start_xmit``, once per packet sent;
``netif_receive_skb``, once per packet received, before any socket is known).

Prints a Markdown table and writes ``benchmarks/results/packet-cost-<date>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import compare_lab  # noqa: E402,F401  (puts the repository root on sys.path)
from compare_lab import loadavg  # noqa: E402
from compare_monitors import hostmedic_argv, iftop_argv, nethogs_argv  # noqa: E402
from tests.lab.netlab import process_tree  # noqa: E402
from tests.lab.veth import B4, Lab, veth_lab  # noqa: E402

REPO = HERE.parents[1]
HOSTMEDIC = REPO / ".venv" / "bin" / "hostmedic"
RESULTS = REPO / "benchmarks" / "results"
MONITORS = ("none", "hostmedic", "nethogs", "iftop")
COUNTER_ONLY = HERE / "counter_only.py"
SPRAY = HERE / "spray.py"
SENDERS = ("iperf3", "spray")
SPRAY_PORTS = 64
# what each ablation passes to counter_only.py
ABLATIONS = {
    "counter": [],
    "counter-hash": ["--hash"],
    "noop": ["--noop"],
    "noop-egress": ["--noop", "--hook", "egress"],
    "noop-ingress": ["--noop", "--hook", "ingress"],
    "noop-tp": ["--noop-tracepoint", "net_dev_start_xmit"],
    "noop-tp-rx": ["--noop-tracepoint", "netif_receive_skb"],
}
RECEIVERS = ("remote", "local", "local-read")
PORT = 5201
PAYLOAD = 16
NOT_BUSY = (3, 4, 7)  # idle, iowait, steal in a /proc/stat cpu line
MONITOR_SETTLE_S = 3.0
RAMP_S = 1.5  # from the flood's start to the receiver's steady state (its buffer full)
STEADY_S = 0.3  # after stopping the receiver
FLOOD_TAIL_S = 3  # the flood goes on this long after the window


def busy_jiffies() -> int:
    """Busy CPU time of the whole machine (all CPUs), in clock ticks."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return sum(v for i, v in enumerate(fields[:8]) if i not in NOT_BUSY)


def process_cpu_s(proc: subprocess.Popen[bytes] | None) -> float:
    """CPU seconds a running monitor has used: every thread of it and of its descendants
    (it runs under ``timeout``), from the scheduler's nanosecond clock (``schedstat``; a
    monitor uses a few ms a second, less than /proc/PID/stat's 10 ms ticks resolve);
    0 without one."""
    if proc is None:
        return 0.0
    ns = 0
    for pid in process_tree(proc.pid):
        with contextlib.suppress(OSError):  # exited meanwhile
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/schedstat", encoding="ascii") as f:
                    ns += int(f.read().split()[0])
    return ns / 1e9


def tx_packets(lab: Lab) -> int:
    text = subprocess.run(
        ["ip", "netns", "exec", lab.a, "cat", "/proc/net/dev"],
        capture_output=True, text=True, check=True, timeout=10,
    ).stdout  # fmt: skip
    for line in text.splitlines()[2:]:
        name, _, data = line.partition(":")
        if name.strip() == lab.dev_a:
            return int(data.split()[9])
    raise LookupError(lab.dev_a)


def monitor_argv(lab: Lab, name: str, seconds: int) -> list[str] | None:
    if name in ABLATIONS:
        return [sys.executable, str(COUNTER_ONLY), "--seconds", str(seconds), *ABLATIONS[name]]
    return {
        "none": None,
        "hostmedic": hostmedic_argv(str(HOSTMEDIC), seconds),
        "nethogs": nethogs_argv([lab.dev_a], False, 0, seconds),
        "iftop": iftop_argv(lab.dev_a, seconds),
    }[name]


def start_monitor(lab: Lab, name: str, seconds: int) -> subprocess.Popen[bytes] | None:
    argv = monitor_argv(lab, name, seconds)
    if argv is None:
        return None
    proc = subprocess.Popen(
        ["ip", "netns", "exec", lab.a, "timeout", str(seconds + 10), *argv],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(MONITOR_SETTLE_S)
    if proc.poll() is not None:
        raise RuntimeError(f"{name} exited {proc.returncode} before the flood")
    return proc


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def receiver(lab: Lab, kind: str) -> None:
    """``remote``: b drops the flood before any socket; otherwise nothing is dropped."""
    subprocess.run(["ip", "netns", "exec", lab.b, "nft", "delete", "table", "inet", "hm_cost"],
                   capture_output=True, check=False, timeout=10)  # fmt: skip
    if kind == "remote":
        rules = (
            "table inet hm_cost {\n chain pre {\n  type filter hook prerouting priority -300;\n"
            f"  ip length {20 + 8 + PAYLOAD} udp dport {PORT}-{PORT + SPRAY_PORTS - 1} drop\n"
            " }\n}\n"
        )
        subprocess.run(["ip", "netns", "exec", lab.b, "nft", "-f", "-"], input=rules.encode(),
                       capture_output=True, check=True, timeout=10)  # fmt: skip


@contextlib.contextmanager
def stopped(server: subprocess.Popen[bytes] | None, really: bool) -> Iterator[None]:
    """The iperf3 server (started by this script, found under its own ``timeout``) stopped
    for the block when ``really``; continued whatever happens."""
    pids = []
    if really:
        if server is None:
            raise RuntimeError("no receiver to stop")
        for pid in process_tree(server.pid):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/comm", encoding="ascii") as f:
                if f.read().strip() == "iperf3":
                    pids.append(pid)
        if not pids:
            raise RuntimeError("the iperf3 server is gone")
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def flood_argv(sender: str, seconds: int, packets: int | None = None) -> list[str]:
    """The flood's command, run in namespace a on CPU 0: ``seconds`` long, or ``packets``
    datagrams (then ``seconds`` only bounds the sprayer)."""
    if sender == "spray":
        count = ["--count", str(packets)] if packets else []
        return [sys.executable, str(SPRAY), B4, "--port", str(PORT), "--ports",
                str(SPRAY_PORTS), "--seconds", str(seconds), "--payload", str(PAYLOAD),
                *count]  # fmt: skip
    bound = ["-k", str(packets)] if packets else ["-t", str(seconds)]
    return ["iperf3", "-c", B4, "-p", str(PORT), "-u", "-l", str(PAYLOAD), "-b", "0", *bound]


def start_server(lab: Lab, sender: str) -> subprocess.Popen[bytes] | None:
    """iperf3's server on CPU 1 of namespace b, for one client; none for the sprayer (the
    remote receiver drops its datagrams before any socket)."""
    if sender == "spray":
        return None
    return subprocess.Popen(
        ["ip", "netns", "exec", lab.b, "taskset", "-c", "1", "timeout", "120",
         "iperf3", "-s", "-1", "-B", B4, "-p", str(PORT)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def snapshot(lab: Lab, mon: subprocess.Popen[bytes] | None) -> tuple[int, int, float, float]:
    """Packets sent, busy jiffies, the monitor's CPU seconds, the time: one window end."""
    return tx_packets(lab), busy_jiffies(), process_cpu_s(mon), time.monotonic()


def one_run(
    lab: Lab, monitor: str, kind: str, window_s: float, rnd: int, sender: str = "iperf3"
) -> dict[str, Any]:
    flood_s = round(RAMP_S + STEADY_S + window_s) + FLOOD_TAIL_S
    server = start_server(lab, sender)
    mon = None
    try:
        time.sleep(0.5)
        mon = start_monitor(lab, monitor, 60)
        client = subprocess.Popen(
            ["ip", "netns", "exec", lab.a, "taskset", "-c", "0", *flood_argv(sender, flood_s)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            time.sleep(RAMP_S)
            with stopped(server, kind == "local"):
                time.sleep(STEADY_S)
                p0, j0, m0, t0 = snapshot(lab, mon)
                time.sleep(window_s)
                p1, j1, m1, t1 = snapshot(lab, mon)
        finally:
            _, err = client.communicate(timeout=flood_s + 60)
        if client.returncode != 0:
            raise RuntimeError(f"{sender} failed: {err.decode(errors='replace').strip()}")
    finally:
        stop(mon)
        if server is not None:
            server.wait(timeout=60)
    sent = p1 - p0
    busy_s = (j1 - j0) / os.sysconf("SC_CLK_TCK")
    return {
        "monitor": monitor,
        "receiver": kind,
        "sender": sender,
        "round": rnd,
        "packets": sent,
        "busy_s": busy_s,
        "wall_s": t1 - t0,
        "ns_per_packet": busy_s / sent * 1e9,
        "monitor_process_ns_per_packet": (m1 - m0) / sent * 1e9,
        "loadavg": loadavg(),
    }


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for kind in dict.fromkeys(r["receiver"] for r in runs):
        costs = {
            m: [r["ns_per_packet"] for r in runs if r["receiver"] == kind and r["monitor"] == m]
            for m in dict.fromkeys(r["monitor"] for r in runs)
        }
        base_min, base_median = min(costs["none"]), statistics.median(costs["none"])
        base_of = {r["round"]: r["ns_per_packet"] for r in runs
                   if r["receiver"] == kind and r["monitor"] == "none"}  # fmt: skip
        for m, values in costs.items():
            paired = [1 - base_of[r["round"]] / r["ns_per_packet"] for r in runs
                      if r["receiver"] == kind and r["monitor"] == m]  # fmt: skip
            rows.append({
                "receiver": kind,
                "monitor": m,
                "runs": len(values),
                "best_ns": min(values),
                "median_ns": statistics.median(values),
                "reduction_best": 1 - base_min / min(values),
                "reduction_median": 1 - base_median / statistics.median(values),
                "reduction_paired_median": statistics.median(paired),
                "monitor_process_ns_median": statistics.median(
                    r["monitor_process_ns_per_packet"] for r in runs
                    if r["receiver"] == kind and r["monitor"] == m
                ),
            })  # fmt: skip
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    out = [
        "| receiver | monitor | runs | ns/packet best | median"
        " | max rate reduction (best) | (median) | (paired median) | monitor process ns/packet |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        cuts = [
            "–" if r["monitor"] == "none" else f"{100 * r[key]:.1f} %"
            for key in ("reduction_best", "reduction_median", "reduction_paired_median")
        ]
        own = r["monitor_process_ns_median"]
        out.append(f"| {r['receiver']} | {r['monitor']} | {r['runs']} | {r['best_ns']:.0f} | "
                   f"{r['median_ns']:.0f} | {' | '.join(cuts)} | {own:.1f} |")  # fmt: skip
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--window", type=float, default=3.0, help="seconds measured per run")
    ap.add_argument("--receivers", default=",".join(RECEIVERS))
    ap.add_argument("--sender", choices=SENDERS, default="iperf3")
    ap.add_argument("--monitors", default=",".join(MONITORS))
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("packet_cost.py needs root (network namespaces, nftables)", file=sys.stderr)
        return 2
    monitors = [m for m in args.monitors.split(",") if m]
    if "none" not in monitors:
        monitors.insert(0, "none")
    receivers = [k for k in args.receivers.split(",") if k]
    unknown = set(monitors) - {*MONITORS, *ABLATIONS} | set(receivers) - set(RECEIVERS)
    if unknown:
        print(f"unknown monitor or receiver: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    if args.sender == "spray" and receivers != ["remote"]:
        print("--sender spray needs --receivers remote (nothing listens on its ports)",
              file=sys.stderr)  # fmt: skip
        return 2
    started = dt.datetime.now(dt.UTC)
    runs = []
    with veth_lab() as lab:
        for kind in receivers:
            receiver(lab, kind)
            for rnd in range(args.rounds):
                for m in monitors:
                    run = one_run(lab, m, kind, args.window, rnd, args.sender)
                    runs.append(run)
                    cost, load = run["ns_per_packet"], run["loadavg"][0]
                    own = run["monitor_process_ns_per_packet"]
                    line = (f"[{rnd}] {kind:10s} {m:12s} {cost:7.0f} ns/packet, of which the"
                            f" monitor process {own:4.0f} (load {load})")  # fmt: skip
                    print(line, flush=True)
    rows = summarize(runs)
    print(render(rows))
    Path(args.out).mkdir(parents=True, exist_ok=True)
    path = Path(args.out) / f"packet-cost-{started:%Y-%m-%d-%H%M%S}.json"
    path.write_text(json.dumps({"started": started.isoformat(), "runs": runs, "rows": rows},
                               indent=1))  # fmt: skip
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

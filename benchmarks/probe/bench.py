"""Probe timing bars and the path mode against mtr, in the reachability lab (run as root):

    .venv/bin/python benchmarks/probe/bench.py [--runs 5] [--cycles 20]

1. Bars of issue 4: ``hostmedic probe`` on one target with 3 ports and a URL, default
   timeouts, (a) when everything answers — must finish in ≤ 15 s — and (b) when everything
   times out (the router silently drops all traffic to the target) — ≤ 30 s; (c) the same
   by name, when even the resolver is silent.
2. The path mode against ``mtr -r -c N`` on the same lab path in the same run, ICMP and
   TCP, with the router dropping 10 % of forwarded packets each way (expected end-to-end
   loss 1 - 0.9² = 19 %): wall time, final-hop loss and average latency of both, and the
   ratios hostmedic / mtr.

Results go to benchmarks/results/probe-<time>.json (not committed) and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
REPO = HERE.parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.lab.netlab import sweep_stale  # noqa: E402
from tests.lab.probelab import NAME, ROUTER_C4, TARGET4, ProbeLab  # noqa: E402

ARGS = ("--port", "80", "--port", "8088", "--port", "9001", "--url", f"http://{TARGET4}/")
SILENT_ROUTER = """table inet bench_drop {
  chain forward_drop {
    type filter hook forward priority 0; policy accept;
    ip daddr 203.0.113.10 drop
  }
  chain input_drop {
    type filter hook input priority 0; policy accept;
    udp dport 53 drop
  }
}
"""


def timed_probe(lab: ProbeLab, target: str, *args: str) -> tuple[float, dict[str, Any]]:
    start = time.monotonic()
    done = lab.hostmedic_in(lab.client, "probe", target, *args, "--json", timeout=120)
    elapsed = time.monotonic() - start
    return elapsed, json.loads(done.stdout)


def bars(lab: ProbeLab, runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for case in ("answers", "times_out", "times_out_by_name"):
        lab.clear_nft(lab.router)
        lab.set_resolver(TARGET4)
        target = TARGET4
        if case != "answers":
            lab.nft(lab.router, SILENT_ROUTER)
        if case == "times_out_by_name":
            lab.set_resolver(ROUTER_C4)  # the router drops DNS: the name never resolves
            target = NAME
        times, statuses = [], []
        for _ in range(runs):
            elapsed, doc = timed_probe(lab, target, *ARGS)
            times.append(elapsed)
            statuses.append(doc["status"])
        out[case] = {
            "seconds": [round(t, 3) for t in times],
            "median_s": round(statistics.median(times), 3),
            "max_s": round(max(times), 3),
            "bar_s": 15.0 if case == "answers" else 30.0,
            "statuses": statuses,
        }
    lab.clear_nft(lab.router)
    lab.set_resolver(TARGET4)
    return out


def _mtr(lab: ProbeLab, cycles: int, tcp: bool) -> tuple[float, dict[str, Any]]:
    argv = ["mtr", "-n", "-j", "-c", str(cycles), TARGET4]
    if tcp:
        argv[1:1] = ["-T", "-P", "80"]
    start = time.monotonic()
    done = subprocess.run(
        ["ip", "netns", "exec", lab.client, *argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    elapsed = time.monotonic() - start
    hubs = json.loads(done.stdout)["report"]["hubs"]
    last = hubs[-1]
    return elapsed, {
        "hops": [h["host"] for h in hubs],
        "final_loss_pct": last["Loss%"],
        "final_avg_ms": last["Avg"],
    }


def _ours(lab: ProbeLab, cycles: int, tcp: bool) -> tuple[float, dict[str, Any]]:
    mode = ["--path-mode", "tcp", "--path-port", "80"] if tcp else []
    elapsed, doc = timed_probe(
        lab, TARGET4, "--no-ping", "--path", "--cycles", str(cycles), "--interval", "1", *mode
    )
    hops = doc["observation"]["paths"][0]["hops"]
    return elapsed, {
        "hops": [h["address"] or "???" for h in hops],
        "final_loss_pct": hops[-1]["loss_pct"],
        "final_avg_ms": hops[-1]["avg_ms"],
    }


def _mean(rows: list[dict[str, Any]], who: str, key: str) -> float:
    values = [r[f"{who}_s"] if key == "s" else r[who][key] for r in rows]
    return round(statistics.mean(values), 3)


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def paths(lab: ProbeLab, cycles: int, rounds: int) -> dict[str, Any]:
    lab.loss(10)
    out: dict[str, Any] = {"router_loss_pct_each_way": 10, "expected_final_loss_pct": 19.0}
    try:
        for mode in ("icmp", "tcp"):
            rows = []
            for _ in range(rounds):
                t_ours, ours = _ours(lab, cycles, mode == "tcp")
                t_mtr, mtr = _mtr(lab, cycles, mode == "tcp")
                rows.append(
                    {
                        "hostmedic_s": round(t_ours, 3),
                        "mtr_s": round(t_mtr, 3),
                        "hostmedic": ours,
                        "mtr": mtr,
                    }
                )
            mean = {
                f"{who}_{key}": _mean(rows, who, key)
                for who in ("hostmedic", "mtr")
                for key in ("s", "final_loss_pct", "final_avg_ms")
            }
            out[mode] = {
                "cycles": cycles,
                "rounds": rows,
                "mean": mean,
                "ratio_time": _ratio(mean["hostmedic_s"], mean["mtr_s"]),
                "ratio_loss": _ratio(mean["hostmedic_final_loss_pct"], mean["mtr_final_loss_pct"]),
                "ratio_avg_latency": _ratio(
                    mean["hostmedic_final_avg_ms"], mean["mtr_final_avg_ms"]
                ),
            }
    finally:
        lab.clear_nft(lab.router)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    opts = parser.parse_args()
    sweep_stale("hmP-")
    with tempfile.TemporaryDirectory() as tmp, ProbeLab() as lab:
        lab.start_servers(Path(tmp))
        result = {"bars": bars(lab, opts.runs), "path_vs_mtr": paths(lab, opts.cycles, opts.rounds)}
    stamp = time.strftime("%Y-%m-%d-%H%M%S")
    folder = REPO / "benchmarks" / "results"
    folder.mkdir(exist_ok=True)
    (folder / f"probe-{stamp}.json").write_text(json.dumps(result, indent=1) + "\n")
    for case, row in result["bars"].items():
        print(
            f"{case:>18}: median {row['median_s']:6.2f} s  max {row['max_s']:6.2f} s  "
            f"(bar {row['bar_s']:.0f} s)  {row['statuses'][0]}"
        )
    for mode in ("icmp", "tcp"):
        row = result["path_vs_mtr"][mode]
        m = row["mean"]
        print(
            f"path {mode:>4}: hostmedic {m['hostmedic_s']:.1f} s, final-hop loss "
            f"{m['hostmedic_final_loss_pct']:.1f} %, avg {m['hostmedic_final_avg_ms']:.3f} ms | "
            f"mtr {m['mtr_s']:.1f} s, {m['mtr_final_loss_pct']:.1f} %, "
            f"{m['mtr_final_avg_ms']:.3f} ms | ratios time {row['ratio_time']} "
            f"loss {row['ratio_loss']} latency {row['ratio_avg_latency']}"
        )


if __name__ == "__main__":
    main()

"""hostmedic logs vs goaccess: lines per second and peak memory on the same generated
combined log, in the same run.

A deterministic ~1 GiB combined log is generated (``generate.py``: seeded, addresses as
data — nothing is sent), then each round runs goaccess and ``hostmedic logs --all``
(both parse every line; the order alternates between rounds, since other work may share
the machine). Every run records wall time, CPU time, the peak memory (PSS) of the whole process
tree (sampled from /proc every 0.5 s, so hostmedic's worker processes count) and the
load average before and after. A last run times hostmedic's default window (the last
hour of the log), which skips the chunks before it.

    .venv/bin/python benchmarks/logs/bench.py                 # 1 GiB, 3 rounds
    .venv/bin/python benchmarks/logs/bench.py --size-mb 200 --rounds 1

Prints a Markdown table and writes ``benchmarks/results/logs-<date>.json``. The log goes
to a temporary directory (``--workdir``) and is deleted at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RESULTS = REPO / "benchmarks" / "results"
HOSTMEDIC = REPO / ".venv" / "bin" / "hostmedic"
sys.path.insert(0, str(HERE))

import generate  # noqa: E402


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def _pss_kib(pid: int) -> int:
    """Proportional set size: forked workers share the parent's pages copy-on-write, so
    adding their RSS would count those pages twice; PSS splits them."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _tree_memory_kib(root: int) -> int:
    """Memory (PSS) of a process and all its descendants (KiB)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += _pss_kib(pid)
        todo.extend(children.get(pid, []))
    return total


def measure(name: str, argv: list[str], lines: int) -> dict[str, Any]:
    """Run one tool to completion; wall/CPU time, tree peak PSS, lines/s."""
    before = loadavg()
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_memory_kib(proc.pid))
            done.wait(0.5)  # reading smaps is not free: sample twice a second

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1, 2):  # hostmedic exits 1/2 when it finds something, as designed
        raise SystemExit(f"{name} failed ({code}): {stderr[-500:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "tool": name,
        "argv": argv,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "lines_per_s": round(lines / wall),
        "peak_pss_mib": round(peak / 1024, 1),
        "max_rss_one_process_mib": round(usage.ru_maxrss / 1024, 1),
        "loadavg_before": before,
        "loadavg_after": loadavg(),
        "exit_code": code,
    }


def commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the generated log")
    args = parser.parse_args()
    if shutil.which("goaccess") is None:
        raise SystemExit("needs goaccess (apt-get install goaccess)")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="hm-bench-logs-"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "access.log"
    try:
        t = time.perf_counter()
        lines = generate.write(log, args.size_mb)
        took = time.perf_counter() - t
        print(
            f"generated {log}: {lines} lines, {log.stat().st_size} B in {took:.0f} s",
            file=sys.stderr,
        )
        goaccess = [
            "goaccess",
            str(log),
            "--log-format=COMBINED",
            "--no-progress",
            "-o",
            str(work / "goaccess.json"),
        ]
        hostmedic = [str(HOSTMEDIC), "logs", str(log), "--all", "--json"]
        runs: list[dict[str, Any]] = []
        for r in range(args.rounds):
            order = [("goaccess", goaccess), ("hostmedic", hostmedic)]
            for name, argv in order if r % 2 == 0 else order[::-1]:
                result = measure(name, argv, lines)
                result["round"] = r + 1
                runs.append(result)
                print(json.dumps(result), file=sys.stderr)
        window = measure(
            "hostmedic (default window: last hour)",
            [str(HOSTMEDIC), "logs", str(log), "--json"],
            lines,
        )
        summary = {}
        for name in ("goaccess", "hostmedic"):
            mine = [r for r in runs if r["tool"] == name]
            summary[name] = {
                "median_lines_per_s": statistics.median(r["lines_per_s"] for r in mine),
                "median_wall_s": statistics.median(r["wall_s"] for r in mine),
                "median_cpu_s": statistics.median(r["cpu_s"] for r in mine),
                "max_peak_pss_mib": max(r["peak_pss_mib"] for r in mine),
            }
        ratios = [
            h["lines_per_s"] / g["lines_per_s"]
            for h, g in zip(
                [r for r in runs if r["tool"] == "hostmedic"],
                [r for r in runs if r["tool"] == "goaccess"],
                strict=True,
            )
        ]
        doc = {
            "benchmark": "logs",
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "commit": commit(),
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
                "goaccess": subprocess.run(
                    ["goaccess", "--version"], capture_output=True, text=True
                ).stdout.split("\n")[0],
            },
            "log": {
                "lines": lines,
                "bytes": log.stat().st_size,
                "generator": "benchmarks/logs/generate.py seed 7",
            },
            "runs": runs,
            "default_window_run": window,
            "summary": summary,
            "ratio_lines_per_s_per_round": [round(x, 2) for x in ratios],
            "ratio_median": round(statistics.median(ratios), 2),
        }
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / f"logs-{dt.date.today().isoformat()}.json"
        out.write_text(json.dumps(doc, indent=2) + "\n")
        print("| tool | round | wall s | CPU s | lines/s | peak PSS MiB | load before → after |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for r in [*runs, window]:
            print(
                f"| {r['tool']} | {r.get('round', '-')} | {r['wall_s']} | {r['cpu_s']} | "
                f"{r['lines_per_s']:,} | {r['peak_pss_mib']} | "
                f"{r['loadavg_before']} → {r['loadavg_after']} |"
            )
        per_round = doc["ratio_lines_per_s_per_round"]
        print(f"\nhostmedic/goaccess lines/s: {per_round} (median {doc['ratio_median']})")
        print(f"results: {out}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

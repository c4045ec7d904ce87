"""hostmedic vs nethogs vs iftop: the same lab traffic, watched by all of them in the same run.

Sections (every one in fresh ``hmF-`` network namespaces, torn down even on Ctrl-C):
1. accuracy — five scenarios (bulk TCP, connected UDP, unconnected UDP spray, HTTP
   download, short TCP connections); share of the truth's bytes per tool, for the right
   process (hostmedic, nethogs ×3 ways) and the right remote (hostmedic, iftop);
2. overhead — CPU per wall second and peak RSS of every monitor under 200 Mbit/s TCP and
   50 short connections/s (all monitors at once), and a small-packet UDP flood with each
   monitor alone, interleaved with no-monitor runs: the packet-rate reduction per tool;
3. rates — hostmedic's 2 s / 10 s / 40 s averages against the true rate (Python API);
4. soak (``--soak SECONDS`` or ``--only soak``) — hostmedic's RSS under a moderate flood.

Needs root, nethogs, iftop, iperf3 (and nginx + curl for the HTTP scenario). Waits (bounded)
until no namespace of the heavy scale benchmark (``hmE-``) exists, and records the load
average with every result. Usage, from the repository root::

    .venv/bin/python benchmarks/bandwidth/compare.py            # ≈ 7 min
    .venv/bin/python benchmarks/bandwidth/compare.py --quick    # ≈ 3 min
    .venv/bin/python benchmarks/bandwidth/compare.py --only bulk_tcp,flood
    .venv/bin/python benchmarks/bandwidth/compare.py --only soak         # 600 s soak

Prints Markdown tables and writes ``benchmarks/results/compare-<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import compare_lab  # noqa: E402  (puts the repository root on sys.path)
import compare_report as report  # noqa: E402
from compare_accuracy import SCENARIOS  # noqa: E402
from compare_accuracy import run as run_accuracy  # noqa: E402
from compare_overhead import RECEIVERS, flood, load, soak  # noqa: E402
from compare_rates import run as run_rates  # noqa: E402

REPO = HERE.parents[1]
RESULTS = REPO / "benchmarks" / "results"
HOSTMEDIC = REPO / ".venv" / "bin" / "hostmedic"
SECTIONS = ("tcp200", "short50", "flood", "rates")
FLOOD_MONITORS = ("hostmedic", "nethogs", "nethogs -C", "iftop")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _first_line(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return f"{argv[0]} missing"
    text = (done.stdout + done.stderr).strip().splitlines()
    return next((ln.strip() for ln in text if "version" in ln.lower()), text[0] if text else "?")


def source_state() -> str:
    """The commit hostmedic runs from, ``+dirty`` when src/ has uncommitted changes (other
    engineers work in this repository while benchmarks run)."""
    git = ["git", "-C", str(REPO)]
    head = (
        subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
        or "?"
    )
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "src"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return head + ("+dirty" if dirty else "")


def machine_facts() -> dict[str, Any]:
    model = "?"
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "?")
    pretty = "?"
    if os.path.exists("/etc/os-release"):
        with open("/etc/os-release", encoding="utf-8") as f:
            pretty = next(
                (
                    ln.split("=", 1)[1].strip().strip('"')
                    for ln in f
                    if ln.startswith("PRETTY_NAME=")
                ),
                "?",
            )
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "os": pretty,
        "hostmedic": importlib.metadata.version("hostmedic"),
        "source_start": source_state(),
        "nethogs": "nethogs" + _first_line(["nethogs", "-V"]).replace("version", "").rstrip(),
        "iftop": _first_line(["iftop", "-h"]),
        "iperf3": _first_line(["iperf3", "--version"]),
        "started": dt.datetime.now().isoformat(timespec="seconds"),
        "loadavg_start": compare_lab.loadavg(),
    }


def foreign_namespaces(prefixes: list[str]) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    names = [ln.split()[0] for ln in out.stdout.splitlines() if ln.strip()]
    return [n for n in names if any(n.startswith(p) for p in prefixes)]


def wait_for_quiet_machine(prefixes: list[str], max_wait_s: float) -> list[str]:
    """Poll (≤ ``max_wait_s``) until no namespace of another benchmark exists."""
    deadline = time.monotonic() + max_wait_s
    while (busy := foreign_namespaces(prefixes)) and time.monotonic() < deadline:
        log(f"waiting for {busy} to go away (load {compare_lab.loadavg()})")
        time.sleep(10)
    return busy


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--only",
        default="",
        help="comma-separated: " + ", ".join([*SCENARIOS, "accuracy", "overhead", *SECTIONS]),
    )
    ap.add_argument("--quick", action="store_true", help="shorter windows, one flood round")
    ap.add_argument(
        "--soak",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="also soak hostmedic under a moderate UDP flood (e.g. 600)",
    )
    ap.add_argument("--hostmedic", default=str(HOSTMEDIC), help="the hostmedic entry point")
    ap.add_argument("--wait-for", default="hmE-", help="namespace prefixes to wait out (comma)")
    ap.add_argument("--max-wait", type=float, default=1200.0, help="seconds to wait at most")
    ap.add_argument("--flood-rounds", type=int, default=None)
    ap.add_argument(
        "--rates-write-size",
        default=None,
        help="iperf3 -l for the rate windows (default iperf3's 128 KiB: one write is 1.05 %% "
        "of a 2 s window at 50 Mbit/s, the granularity of the point truth)",
    )
    ap.add_argument(
        "--flood-receivers",
        default=",".join(RECEIVERS),
        help="where the flood is received: local (a socket on this machine), remote (dropped"
        " before any socket, as on another host); comma-separated",
    )
    ap.add_argument("--out", default=str(RESULTS))
    ap.add_argument("--keep-raw", action="store_true", help="keep the monitors' raw outputs")
    ap.add_argument("--render", metavar="JSON", help="only print the tables of a results file")
    return ap.parse_args()


def selected(only: str) -> set[str]:
    if not only:
        return {*SCENARIOS, *SECTIONS}
    chosen: set[str] = set()
    for word in (w.strip() for w in only.split(",") if w.strip()):
        if word == "accuracy":
            chosen |= set(SCENARIOS)
        elif word == "overhead":
            chosen |= {"tcp200", "short50", "flood"}
        elif word in SCENARIOS or word in SECTIONS or word == "soak":
            chosen.add(word)
        else:
            raise SystemExit(f"--only: unknown section {word!r}")
    return chosen


def _guarded(label: str, fn: Any, *args: Any) -> dict[str, Any]:
    """Run one section; a harness failure is recorded (and retried once), never fatal."""
    error = ""
    for attempt in (1, 2):
        try:
            return fn(*args)
        except (compare_lab.LabError, RuntimeError, subprocess.TimeoutExpired, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            log(f"{label} attempt {attempt} failed: {error}")
    return {"error": error}


def _interrupt(signum: int, frame: object) -> None:
    # SIGTERM takes the Ctrl-C path: every lab is torn down by its finally block
    raise KeyboardInterrupt


def main() -> int:
    args = parse_args()
    if args.render:
        print(render(json.loads(Path(args.render).read_text())))
        return 0
    if os.geteuid() != 0:
        print("compare.py needs root (network namespaces, packet capture)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
    todo = selected(args.only)
    prefixes = [p for p in args.wait_for.split(",") if p]
    busy = wait_for_quiet_machine(prefixes, args.max_wait)
    facts = machine_facts()
    foreign_seen: set[str] = set(busy)
    q = args.quick
    secs, window, flood_window = (3.0, 5.0, 4.0) if q else (5.0, 10.0, 6.0)
    rounds = args.flood_rounds or (1 if q else 3)
    stamp = f"{dt.datetime.now():%Y-%m-%d-%H%M%S}"
    keep = Path(args.out) / f"compare-raw-{stamp}" if args.keep_raw else None
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "machine": facts,
        "args": vars(args),
        "accuracy": [],
        "loads": {},
        "flood": [],
        "rates": None,
        "soak": None,
    }

    def checkpoint(name: str) -> None:
        seen = foreign_namespaces(prefixes)
        foreign_seen.update(seen)
        doc.setdefault("sources", {})[name] = source_state()
        log(f"{name} (load {compare_lab.loadavg()}{', BUSY: ' + str(seen) if seen else ''})")

    try:
        for name in SCENARIOS:
            if name in todo:
                checkpoint(f"accuracy {name}")
                r = _guarded(name, run_accuracy, name, args.hostmedic, secs, keep)
                doc["accuracy"].append({"scenario": name, **r})
        for kind in ("tcp200", "short50"):
            if kind in todo:
                checkpoint(f"overhead {kind}")
                doc["loads"][kind] = _guarded(kind, load, kind, args.hostmedic, window)
        if "rates" in todo:
            checkpoint("rates")
            doc["rates"] = _guarded(
                "rates", run_rates, 14 if q else 45, "50M", ("absolute", "drift"),
                args.rates_write_size,
            )  # fmt: skip
        if "flood" in todo:
            receivers = [r for r in args.flood_receivers.split(",") if r in RECEIVERS]
            configs: list[tuple[str | None, str]] = []
            for _ in range(rounds):  # every monitor run is bracketed by two baselines
                for receiver in receivers:
                    configs += [(m, receiver) for m in (None, *FLOOD_MONITORS)]
            configs += [(None, receiver) for receiver in receivers]
            checkpoint(f"flood ({len(configs)} runs)")
            doc["flood"] = flood(configs, args.hostmedic, flood_window)
        if "soak" in todo and args.soak <= 0:
            args.soak = 600.0
        if args.soak > 0:
            checkpoint(f"soak {args.soak:g} s")
            doc["soak"] = _guarded("soak", soak, args.soak, args.hostmedic)
    except KeyboardInterrupt:
        log("interrupted: labs were torn down; writing what was measured")
        doc["interrupted"] = True
    facts["loadavg_end"] = compare_lab.loadavg()
    facts["source_end"] = source_state()
    facts["foreign_seen"] = sorted(foreign_seen)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"compare-{stamp}.json"
    path.write_text(json.dumps(doc, indent=1, default=str))
    print(render(doc))
    log(f"results: {path}")
    return 130 if doc.get("interrupted") else 0


def render(doc: dict[str, Any]) -> str:
    parts = ["## hostmedic vs nethogs vs iftop", "", report.machine(doc["machine"]), ""]
    ok_loads = {k: v for k, v in doc["loads"].items() if "error" not in v}
    if doc["accuracy"]:
        parts += [
            "### Accuracy",
            "",
            report.accuracy_table(doc["accuracy"]),
            "",
            report.accuracy_notes(),
            "",
        ]
    if ok_loads or doc["flood"]:
        parts += ["### Overhead", "", report.overhead_table(ok_loads, doc["flood"]), ""]
    if doc["flood"]:
        parts += [
            "### Packet-rate reduction under a UDP flood",
            "",
            report.flood_table(doc["flood"]),
            "",
        ]
    rates = doc["rates"] if doc["rates"] and "error" not in doc["rates"] else None
    if rates:
        parts += ["### Rate windows (hostmedic)", "", report.rates_table(rates), ""]
    soak_doc = doc["soak"] if doc["soak"] and "error" not in doc["soak"] else None
    if soak_doc:
        parts += ["### Soak (hostmedic)", "", report.soak_table(soak_doc), ""]
    sections = [*doc["loads"].items(), ("rates", doc["rates"] or {}), ("soak", doc["soak"] or {})]
    failed = [f"{k}: {v['error']}" for k, v in sections if isinstance(v, dict) and "error" in v]
    parts += [
        "### hostmedic against its bars",
        "",
        *report.bars(ok_loads, doc["flood"], rates, soak_doc),
    ]
    if failed:
        parts += ["", "Failed sections: " + "; ".join(failed)]
    return "\n".join(parts)


if __name__ == "__main__":
    sys.exit(main())

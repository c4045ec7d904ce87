"""How long the security collection takes: live on this machine, and against a ``--root``
disk whose logs a long brute-force run swelled (auth.log, btmp), compared with
``grep -c`` / ``lastb`` reading the same files.

Usage, from the repository root (root for the live part)::

    .venv/bin/python benchmarks/security/scale.py            # ≈ 1 min
    .venv/bin/python benchmarks/security/scale.py --lines 200000

Prints a Markdown table and writes ``benchmarks/results/security-<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.security_tree import healthy_tree  # noqa: E402

from hostmedic.collectors.bandwidth import MonitorOptions  # noqa: E402
from hostmedic.collectors.security import collect_security  # noqa: E402
from hostmedic.gather import GatherContext  # noqa: E402
from hostmedic.settings import Settings  # noqa: E402

RECORD = 384


def auth_log(path: Path, lines: int) -> None:
    """A brute-force run: ``lines`` sshd failures from 5,000 addresses."""
    with path.open("w") as f:
        for i in range(lines):
            ip = f"203.0.{(i // 250) % 20}.{i % 250}"
            stamp = f"Nov 20 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}"
            user = "root" if i % 3 else "invalid user admin"
            f.write(
                f"{stamp} web sshd[{1000 + i % 30000}]: Failed password for {user} from {ip} "
                f"port {40000 + i % 20000} ssh2\n"
            )


def btmp(path: Path, records: int) -> None:
    from hostmedic.collectors.security.utmp import UTMP

    with path.open("wb") as f:
        for i in range(records):
            host = f"198.51.100.{i % 250}".encode()
            f.write(
                UTMP.pack(
                    6,
                    i,
                    b"ssh:notty",
                    b"",
                    b"root",
                    host,
                    0,
                    0,
                    0,
                    1795000000 + i,
                    0,
                    bytes(16),
                    bytes(20),
                )
            )


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def run_root(lines: int, records: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hmS-bench-") as tmp:
        tree = healthy_tree(Path(tmp))
        auth_log(Path(tmp) / "var/log/auth.log", lines)
        btmp(Path(tmp) / "var/log/btmp", records)
        ctx = GatherContext(Settings(home_country="CN"), 0, MonitorOptions(), root=tmp, live=False)
        seconds, facts = timed(lambda: collect_security(ctx))
        size = (Path(tmp) / "var/log/auth.log").stat().st_size
        grep_s, _ = timed(
            lambda: subprocess.run(
                ["grep", "-c", "Failed password", f"{tmp}/var/log/auth.log"],
                capture_output=True,
                check=False,
            )
        )
        lastb_s, _ = timed(
            lambda: subprocess.run(
                ["lastb", "-f", f"{tmp}/var/log/btmp"], capture_output=True, check=False
            )
        )
        groups = facts["security_logins"].failures_by_host
        del tree
    return {
        "auth_log_lines": lines,
        "auth_log_bytes": size,
        "btmp_records": records,
        "collect_s": round(seconds, 3),
        "grep_c_s": round(grep_s, 3),
        "lastb_s": round(lastb_s, 3),
        "failure_groups": len(groups),
        "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def run_live() -> dict[str, Any]:
    ctx = GatherContext(Settings(), 0, MonitorOptions())
    seconds, facts = timed(lambda: collect_security(ctx))
    processes = facts["security_processes"]
    return {
        "collect_s": round(seconds, 3),
        "processes": len(getattr(processes, "processes", ())),
        "pids_probed": getattr(processes, "pids_probed", 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--records", type=int, default=50_000)
    args = parser.parse_args()
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(),
        "load": Path("/proc/loadavg").read_text().split()[:3],
        "root": run_root(args.lines, args.records),
        "live": run_live(),
    }
    r, live = result["root"], result["live"]
    print("| what | hostmedic | reference |\n| --- | --- | --- |")
    print(
        f"| --root, auth.log {r['auth_log_lines']:,} lines ({r['auth_log_bytes'] >> 20} MiB) "
        f"+ btmp {r['btmp_records']:,} records | {r['collect_s']} s | "
        f"grep -c {r['grep_c_s']} s, lastb {r['lastb_s']} s |"
    )
    print(
        f"| live, {live['processes']} processes, {live['pids_probed']} pids probed | "
        f"{live['collect_s']} s | — |"
    )
    print(f"| peak RSS | {r['max_rss_mib']} MiB | — |")
    out = ROOT / "benchmarks" / "results" / f"security-{dt.date.today().isoformat()}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()

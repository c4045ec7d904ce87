"""Scale benchmark of hostmedic's bandwidth monitor: one sample() with thousands of sockets.

The bar (from the issue): with 20,000 open TCP sockets and 2,000 processes on the host one
sampling cycle takes <= 100 ms; with 50,000 sockets, <= 250 ms. A cycle is one call of
``BandwidthMonitor.sample()``.

For each size the script builds a fresh world and tears it down again:
namespaces ``hmE-srv`` (the monitored host) and ``hmE-peer``, joined through a router
namespace ``hmE-rtr`` (198.18.205.1 → .2, 198.18.206.1 → .2): a namespace joined to the
host by a veth is one of its containers and would be monitored too, with its 20k sockets;
behind a router, the peer is the outside world. In hmE-peer a server that listens on
several ports and never accepts (see scale_world.py for why); in hmE-srv ``--processes``
client processes holding ``--sockets`` established connections between them, and the
measuring process itself.
It reports cycle time (median / p95 / max) for idle sockets, steady traffic on ~1 % of
sockets, and churn (new connections with bytes every tick: the /proc rescan worst case),
the start() time, the monitor's and the world's memory, and a breakdown of the worst regime.

Needs root. Not a test: never run it in CI. Usage (from the repository root)::

    .venv/bin/python benchmarks/bandwidth/scale.py --quick        # 5k sockets, < 60 s
    .venv/bin/python benchmarks/bandwidth/scale.py                # 20k and 50k, 2k procs
    .venv/bin/python benchmarks/bandwidth/scale.py --sockets 20000 --processes 2000

Prints a Markdown table and writes ``benchmarks/results/scale-<date>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
WORLD = HERE / "scale_world.py"
RESULTS = REPO / "benchmarks" / "results"
SRV, RTR, PEER = "hmE-srv", "hmE-rtr", "hmE-peer"
SRV_IP, RTR_SRV_IP, RTR_PEER_IP, PEER_IP = (
    "198.18.205.1",
    "198.18.205.2",
    "198.18.206.1",
    "198.18.206.2",
)
CONNECTIONS_PER_PORT = 8000  # well below the 10000-65001 ephemeral range per destination
REGIMES = ("idle", "steady", "churn")
SEP = " > "  # as in scale_monitor.Timers


def bar_ms(sockets: int) -> float | None:
    """The issue's bar for this many sockets (none above 50k)."""
    if sockets <= 20_000:
        return 100.0
    if sockets <= 50_000:
        return 250.0
    return None


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=60)


def netns_pids(name: str) -> list[int]:
    out = sh("ip", "netns", "pids", name, check=False).stdout
    return [int(p) for p in out.split()]


def kill_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone: nothing to do
        os.kill(pid, signal.SIGKILL)


def delete_namespaces() -> None:
    """Kill what still runs in our namespaces (started by us), then delete them."""
    existing = sh("ip", "netns", "list").stdout
    for name in (SRV, RTR, PEER):
        if name in existing.split():
            for pid in netns_pids(name):
                kill_pid(pid)
            sh("ip", "netns", "del", name, check=False)


class World:
    """One benchmark world; ``with World(...)`` always tears it down, even on Ctrl-C."""

    def __init__(self, sockets: int, processes: int, max_seconds: int, tmp: Path) -> None:
        self.sockets, self.processes, self.max_seconds = sockets, processes, max_seconds
        self.ports = [5001 + i for i in range(max(2, -(-sockets // CONNECTIONS_PER_PORT)))]
        self.talkers = max(1, -(-sockets // 100) // max(1, sockets // processes))
        self.tmp = tmp
        self.procs: list[subprocess.Popen[str]] = []
        self.info: dict[str, Any] = {}

    def __enter__(self) -> World:
        try:
            self._build()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def _spawn(self, ns: str, *args: str, **kw: Any) -> subprocess.Popen[str]:
        cmd = ["ip", "netns", "exec", ns, sys.executable, *args]
        proc = subprocess.Popen(cmd, text=True, **kw)  # ip netns exec execs: pid is python's
        self.procs.append(proc)
        return proc

    def _build(self) -> None:
        delete_namespaces()  # leftovers of an interrupted earlier run (ours by name)
        for name in (SRV, RTR, PEER):
            sh("ip", "netns", "add", name)
            sh("ip", "-n", name, "link", "set", "lo", "up")
        sh(*f"ip -n {SRV} link add v0 type veth peer name v1 netns {RTR}".split())
        sh(*f"ip -n {RTR} link add v2 type veth peer name v3 netns {PEER}".split())
        links = ((SRV, "v0", SRV_IP), (RTR, "v1", RTR_SRV_IP), (RTR, "v2", RTR_PEER_IP),
                 (PEER, "v3", PEER_IP))  # fmt: skip
        for name, dev, ip in links:
            sh("ip", "-n", name, "addr", "add", f"{ip}/24", "dev", dev)
            sh("ip", "-n", name, "link", "set", dev, "up")
        sh("ip", "netns", "exec", RTR, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        sh("ip", "-n", SRV, "route", "add", f"{PEER_IP}/32", "via", RTR_SRV_IP)
        sh("ip", "-n", PEER, "route", "add", "default", "via", RTR_PEER_IP)
        sh("ip", "netns", "exec", SRV, "sysctl", "-qw", "net.ipv4.ip_local_port_range=10000 65001")
        sh("ip", "netns", "exec", PEER, "sysctl", "-qw", "net.core.somaxconn=65535")
        sh("ip", "netns", "exec", PEER, "sysctl", "-qw", "net.ipv4.tcp_max_syn_backlog=65535")
        ports = [str(p) for p in self.ports]
        common = ["--server", PEER_IP, "--ports", *ports, "--max-seconds", str(self.max_seconds)]
        server = self._spawn(PEER, str(WORLD), "server", *common, stdout=subprocess.PIPE)
        assert server.stdout is not None
        if server.stdout.readline().strip() != "ready":
            raise RuntimeError("server did not start")
        pids_file = self.tmp / f"world-{self.sockets}.json"
        pids_file.unlink(missing_ok=True)  # a stale one would name someone else's pids
        t0 = time.monotonic()
        sizes = f"--sockets {self.sockets} --processes {self.processes} --talkers {self.talkers}"
        world = self._spawn(
            SRV, str(WORLD), "world", *common, *sizes.split(), "--pids", str(pids_file)
        )
        deadline = t0 + max(60.0, self.sockets / 200)
        while not pids_file.exists():
            if world.poll() is not None:
                raise RuntimeError(f"world process exited with {world.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("world not built in time")
            time.sleep(0.2)
        self.info = json.loads(pids_file.read_text(encoding="utf-8"))
        self.info |= {"server": PEER_IP, "ports": self.ports, "wall_build_s": time.monotonic() - t0}
        self.info["memory"] = self._memory()
        self.info["alive_before"] = self.alive()
        if self.info["alive_before"] != len(self.info["children"]):
            raise RuntimeError(
                f"only {self.info['alive_before']} of {len(self.info['children'])} client"
                " processes are alive after the build"
            )
        self.info["sockstat"] = sh("ip", "netns", "exec", SRV, "cat", "/proc/net/sockstat").stdout
        self.world_file = self.tmp / f"world-info-{self.sockets}.json"
        self.world_file.write_text(json.dumps(self.info), encoding="utf-8")

    def alive(self) -> int:
        """How many client processes are still running (a dead one stays a zombie)."""
        n = 0
        for pid in self.info["children"]:
            try:
                stat = Path(f"/proc/{pid}/stat").read_bytes()
            except OSError:
                continue
            state = stat[stat.rfind(b")") + 2 :][:1]  # comm may contain ")"
            n += state not in (b"Z", b"X")
        return n

    def _memory(self) -> dict[str, float]:
        """Resident and proportional set size of the world (all client processes)."""
        rss = pss = 0
        for pid in [self.info["world_pid"], *self.info["children"]]:
            try:
                with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
                    text = f.read()
            except OSError:  # died: alive() reports it
                continue
            for line in text.splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        return {"rss_sum_mib": rss / 1024, "pss_sum_mib": pss / 1024}

    def destroy(self) -> None:
        """Kill every process we started, by pid (children first), delete the namespaces."""
        for pid in self.info.get("children", []):
            kill_pid(pid)  # still our zombie or live child: the world never reaps
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                print(f"warning: pid {proc.pid} did not exit", file=sys.stderr)
        delete_namespaces()

    def measure(self, a: argparse.Namespace) -> dict[str, Any]:
        """Run the measuring process inside hmE-srv and return its JSON result."""
        out = self.tmp / f"monitor-{self.sockets}.json"
        options = {
            "--world-file": self.world_file,
            "--out": out,
            "--cycles": a.cycles,
            "--interval": a.interval,
            "--profile-cycles": a.profile_cycles,
            "--max-seconds": a.max_seconds,
            "--churn-per-tick": a.churn_per_tick,
        }
        if a.no_tcp_iterator:
            options["--no-tcp-iterator"] = ""
        args = [str(Path(__file__).resolve()), "--role", "monitor"]
        args += [str(x) for kv in options.items() for x in kv if x != ""]
        proc = self._spawn(SRV, *args)
        proc.wait(timeout=a.max_seconds)
        if proc.returncode != 0:
            raise RuntimeError(f"monitor process failed with exit code {proc.returncode}")
        return json.loads(out.read_text(encoding="utf-8"))


def source_state() -> dict[str, Any]:
    """Which hostmedic was measured: HEAD and the uncommitted files under src/."""
    head = sh("git", "-C", str(REPO), "rev-parse", "HEAD", check=False).stdout.strip()
    dirty = sh("git", "-C", str(REPO), "status", "--porcelain", "src", check=False).stdout
    return {"git_head": head, "src_uncommitted": dirty.splitlines()}


def machine_facts() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
    model = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), None
    )
    return {
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "cpu": model,
        "python": platform.python_version(),
        "mem_total_gib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30,
        "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
        "host_processes": sum(1 for p in os.listdir("/proc") if p.isdigit()),
    }


def verdict(r: dict[str, Any], bar: float | None) -> str:
    if bar is None:
        return "(no bar)"
    if r["max_ms"] <= bar:
        return "met"
    return "p95 met, max over" if r["p95_ms"] <= bar else "MISSED"


def breakdown_rows(b: dict[str, Any]) -> list[tuple[str, float]]:
    """Top-level steps by cost, each followed by its nested steps and its own remainder."""
    parts: dict[str, float] = b["parts_ms"]
    rows = []
    for top in sorted((k for k in parts if SEP not in k), key=lambda k: -parts[k]):
        rows.append((top, parts[top]))
        nested = {k: v for k, v in parts.items() if k.startswith(top + SEP)}
        for k, v in sorted(nested.items(), key=lambda kv: -kv[1]):
            rows.append(("&nbsp;&nbsp;↳ " + k[len(top) + len(SEP) :], v))
        if nested:
            rows.append(
                (
                    "&nbsp;&nbsp;↳ own time (Python parse, bookkeeping)",
                    parts[top] - sum(nested.values()),
                )
            )
    rows.append(("rest of sample() (TcpSample conversion, filters, FlowKeys)", b["rest_ms"]))
    rows.append(("**sample() mean**", b["sample_ms"]))
    if "gc_ms" in b:
        label = f"of which cyclic GC, inside the steps above ({b['gc_full_collections']} full)"
        rows.append((label, b["gc_ms"]))
    return rows


def markdown(facts: dict[str, Any], runs: list[dict[str, Any]]) -> str:
    lines = [
        f"Machine: {facts['nproc']} CPU ({facts['cpu']}), kernel {facts['kernel']}, "
        f"Python {facts['python']}, load at start {' '.join(facts['loadavg_start'])}; "
        f"hostmedic {facts['git_head'][:10]}"
        + (
            f" + {len(facts['src_uncommitted'])} uncommitted src files"
            if facts["src_uncommitted"]
            else ""
        ),
        "",
        "| sockets | procs | regime | min ms | median ms | p95 ms | max ms | CPU median ms "
        "| sockets w/ bytes | rescans | bar ms | verdict |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in runs:
        bar = bar_ms(run["sockets"])
        for name in REGIMES:
            r = run["monitor"]["regimes"][name]
            lines.append(
                f"| {run['sockets']} | {run['processes']} | {name} | {r['min_ms']:.1f} "
                f"| {r['median_ms']:.1f} "
                f"| {r['p95_ms']:.1f} | {r['max_ms']:.1f} | {r['cpu_median_ms']:.1f} "
                f"| {r['tcp_deltas_per_cycle']:.0f} | {r['rescans']}/{r['cycles']} "
                f"| {bar or '-'} | {verdict(r, bar)} |"
            )
    lines += [
        "",
        "| sockets | start() ms | monitor RSS MiB (import / start / peak) "
        "| world RSS sum / PSS sum MiB | world build s |",
        "|---:|---:|---|---|---:|",
    ]
    for run in runs:
        m, w = run["monitor"], run["world"]
        rss = [m[k]["VmRSS"] / 1024 for k in ("rss_after_import_kib", "rss_after_start_kib")]
        rss.append(m["rss_end_kib"]["VmHWM"] / 1024)
        lines.append(
            f"| {run['sockets']} | {m['start_ms']:.0f} | {' / '.join(f'{x:.0f}' for x in rss)} "
            f"| {w['memory']['rss_sum_mib']:.0f} / {w['memory']['pss_sum_mib']:.0f} "
            f"| {w['wall_build_s']:.1f} |"
        )
    for run in runs:
        b = run["monitor"].get("breakdown")
        if not b:
            continue
        title = (
            f"Breakdown, {run['sockets']} sockets, regime {b['regime']} ({b['cycles']} cycles,"
            f" {b['rescans']} rescans), wall-clock wrappers:"
        )
        lines += ["", title, "", "| part | ms/cycle |", "|---|---:|"]
        lines += [f"| {part} | {ms:.2f} |" for part, ms in breakdown_rows(b)]
        mi = run["monitor"]["micro"]
        offline = (
            f"Offline: {mi['live']} dump records -> TcpSample (GC off): "
            f"{mi['tcp_sample_conversion_ms']:.1f} ms; standalone /proc rescan "
            f"{mi['standalone_rescan_ms']:.1f} ms over {mi['socket_inodes_in_proc']} socket inodes."
        )
        lines += ["", offline]
        lines += ["", "cProfile top (own time, ms/cycle, profiler-inflated):", ""]
        lines += ["| function | calls/cycle | tottime | cumtime |", "|---|---:|---:|---:|"]
        for row in run["monitor"]["cprofile"][:12]:
            lines.append(
                f"| {row['function']} | {row['calls_per_cycle']:.0f} "
                f"| {row['tottime_ms']:.1f} | {row['cumtime_ms']:.1f} |"
            )
    return "\n".join(lines)


def orchestrate(a: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    # Both run the finally blocks; SIGINT may arrive ignored from a non-interactive shell.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    facts = machine_facts() | source_state()
    runs = []
    with tempfile.TemporaryDirectory(prefix="hmE-scale-") as tmp:
        for sockets in a.sockets:
            processes = min(a.processes, sockets)
            print(f"building world: {sockets} sockets, {processes} processes", file=sys.stderr)
            with World(sockets, processes, a.max_seconds, Path(tmp)) as world:
                print(f"  built in {world.info['wall_build_s']:.1f} s", file=sys.stderr)
                monitor = world.measure(a)
                world.info["alive_after"] = world.alive()
                run = {"sockets": sockets, "processes": processes}
                run["world"] = {k: v for k, v in world.info.items() if k not in ("children",)}
                runs.append(run | {"monitor": monitor})
    facts["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    report = markdown(facts, runs)
    print(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"scale-{dt.datetime.now():%Y-%m-%d-%H%M%S}.json"
    payload = {"machine": facts, "args": vars(a), "runs": runs, "markdown": report}
    out.write_text(json.dumps(payload, indent=1), encoding="utf-8")
    print(f"\nresults: {out}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sockets", type=int, nargs="+", default=[20_000, 50_000])
    p.add_argument("--processes", type=int, default=2000)
    p.add_argument("--cycles", type=int, default=30, help="timed cycles per regime (>= 20)")
    p.add_argument("--interval", type=float, default=0.2, help="seconds between cycles")
    p.add_argument("--profile-cycles", type=int, default=20, help="0: no breakdown")
    p.add_argument("--churn-per-tick", type=int, default=5)
    p.add_argument("--max-seconds", type=int, default=900, help="hard bound on every process")
    p.add_argument("--quick", action="store_true", help="5k sockets, 500 processes, < 60 s")
    p.add_argument(
        "--no-tcp-iterator", action="store_true", help="full sock_diag dumps every tick (A/B)"
    )
    p.add_argument("--role", choices=("orchestrate", "monitor"), default="orchestrate")
    p.add_argument("--world-file", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.quick:
        a.sockets, a.processes, a.cycles, a.interval, a.profile_cycles = [5000], 500, 20, 0.1, 10
    if a.role == "monitor":
        from scale_monitor import monitor_main  # sibling module; the script's dir is on sys.path

        monitor_main(a.world_file, a.out, a)
        return 0
    try:
        return orchestrate(a)
    except KeyboardInterrupt:
        print("interrupted: processes killed, namespaces deleted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

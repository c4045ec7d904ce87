"""Accuracy: the same lab traffic watched by hostmedic, nethogs (three ways) and iftop at once.

Per scenario, one fresh lab: servers start, the lab goes quiet, every monitor starts inside
the server namespace and opens its capture, then bounded generators run. Truth is the
measured peers' veth counters (IP level) from just before the generators start to after
every monitor has stopped counting (the links must stay quiet after the generators end).
Per expectation (one peer link = one known process) it reports the share of the truth's
bytes each tool gives the right process (hostmedic flows[], nethogs lines) and the right
remote (hostmedic remotes[], iftop host pairs).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compare_lab import CompareLab, LabError, build, kill_all, loadavg, wait_until
from compare_monitors import (
    ETHERNET_HEADER_BYTES,
    Monitor,
    cpu_sample,
    cpu_share,
    hostmedic_argv,
    iftop_argv,
    iftop_remote_bytes,
    memory_kib,
    nethogs_argv,
    nethogs_integrated,
    nethogs_names,
    nethogs_totals,
    parse_iftop,
    parse_nethogs,
    start_monitor,
    stop_iftop,
    wait_ready,
)
from tests.lab import traffic
from tests.lab.netlab import process_tree
from tests.lab.traffic import Counters, Measurement

NETHOGS_TAIL_S = 6.5  # nethogs' 5 s window must drain (whole seconds) before it stops
SETTLE_S = 1.5  # after every capture is open: nethogs' first refresh, iftop's first tick


@dataclass(frozen=True)
class Expect:
    """All traffic on link ``peer`` belongs to ``pids``; the remote is the peer."""

    key: str
    label: str
    peer: int
    pids: frozenset[int]


@dataclass
class Setup:
    start: Callable[[], list[subprocess.Popen[str]]]  # the bounded generators
    expects: Callable[[], list[Expect]]  # called after start(): pids are known then
    max_s: float  # the generators end within this
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    name: str
    label: str
    peers: int
    fn: Callable[[CompareLab, Path, float], Setup]


def _iperf_servers(c: CompareLab, peers: list[int]) -> None:
    for i in peers:
        p = c.lab.peer(i)
        c.lab.spawn(p.ns, ["timeout", "90", "iperf3", "-s", "-1", "-B", p.peer_ip4])
        c.lab.wait_listening(p.ns, 5201)


def _iperf_pair(c: CompareLab, secs: float, opts1: list[str], opts2: list[str]) -> Setup:
    _iperf_servers(c, [1, 2])
    procs: list[subprocess.Popen[str]] = []
    p1, p2 = c.lab.peer(1), c.lab.peer(2)

    def start() -> list[subprocess.Popen[str]]:
        for p, opts in ((p1, opts1), (p2, opts2)):
            argv = ["iperf3", "-c", p.peer_ip4, "-t", f"{secs:g}", *opts]
            procs.append(c.lab.spawn(c.srv, argv))
        return procs

    def expects() -> list[Expect]:
        return [
            Expect("send", f"iperf3 {' '.join(opts1)} → p1", 1, frozenset({procs[0].pid})),
            Expect("receive", f"iperf3 {' '.join(opts2)} ← p2", 2, frozenset({procs[1].pid})),
        ]

    return Setup(start, expects, secs + 2.0)


def bulk_tcp(c: CompareLab, tmp: Path, secs: float) -> Setup:
    return _iperf_pair(c, secs, ["-b", "100M"], ["-b", "100M", "-R"])


def bulk_udp(c: CompareLab, tmp: Path, secs: float) -> Setup:
    return _iperf_pair(c, secs, ["-u", "-b", "20M"], ["-u", "-b", "20M", "-R"])


def udp_spray(c: CompareLab, tmp: Path, secs: float) -> Setup:
    p1, p2 = c.lab.peer(1), c.lab.peer(2)
    for p, ports in ((p1, "9001,9002"), (p2, "9001,9003")):
        argv = traffic.argv("udp-sink", "--bind", p.peer_ip4, "--ports", ports, "--lifetime", 90)
        c.lab.spawn(p.ns, argv, ready_line="READY")
    targets = f"{p1.peer_ip4}:9001,{p2.peer_ip4}:9001,{p1.peer_ip4}:9002,{p2.peer_ip4}:9003"
    procs: list[subprocess.Popen[str]] = []

    def start() -> list[subprocess.Popen[str]]:
        argv = traffic.argv(
            "udp-spray",
            "--to",
            targets,
            "--count",
            int(secs * 1000),
            "--size",
            1000,
            "--interval",
            0.001,
            "--max-seconds",
            secs + 1,
        )
        procs.append(c.lab.spawn(c.srv, argv))
        return procs

    def expects() -> list[Expect]:
        pid = frozenset({procs[0].pid})
        return [
            Expect("to_p1", "one sendto() socket → p1", 1, pid),
            Expect("to_p2", "one sendto() socket → p2", 2, pid),
        ]

    return Setup(start, expects, secs + 2.0)


def http_download(c: CompareLab, tmp: Path, secs: float) -> Setup:
    if shutil.which("nginx") is None or shutil.which("curl") is None:
        raise LabError("needs nginx and curl")
    p1 = c.lab.peer(1)
    root = tmp / "www"
    root.mkdir()
    traffic.write_blob(root / "blob.bin", 20 << 20)
    conf = traffic.nginx_config(tmp, [f"{p1.srv_ip4}:8080"], root)
    nginx = ["nginx", "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(conf)]
    master = c.lab.spawn(c.srv, ["timeout", "90", *nginx, "-g", "daemon off;"])
    c.lab.wait_listening(c.srv, 8080)
    url = f"http://{p1.srv_ip4}:8080/blob.bin"
    curl = ["curl", "-sS", "--max-time", f"{secs:g}", *["-o", "/dev/null"] * 3, url, url, url]

    def start() -> list[subprocess.Popen[str]]:
        return [c.lab.spawn(p1.ns, curl)]

    def expects() -> list[Expect]:
        pids = frozenset(process_tree(master.pid) - {master.pid})  # nginx, not `timeout`
        return [Expect("nginx", "nginx → curl ×3 of 20 MiB (p1)", 1, pids)]

    return Setup(start, expects, secs + 1.0)


def short_tcp(c: CompareLab, tmp: Path, secs: float) -> Setup:
    p1, p2 = c.lab.peer(1), c.lab.peer(2)
    sink = ["--lifetime", 90, "--reply", 256]
    c.lab.spawn(
        p1.ns,
        traffic.argv("tcp-sink", "--bind", p1.peer_ip4, "--port", 7001, *sink),
        ready_line="READY",
    )
    server = c.lab.spawn(
        c.srv,
        traffic.argv("tcp-sink", "--bind", p2.srv_ip4, "--port", 7002, *sink),
        ready_line="READY",
    )
    procs: list[subprocess.Popen[str]] = []

    def start() -> list[subprocess.Popen[str]]:
        for ns, target in ((c.srv, f"{p1.peer_ip4}:7001"), (p2.ns, f"{p2.srv_ip4}:7002")):
            argv = traffic.argv(
                "tcp-short",
                "--to",
                target,
                "--rate",
                50,
                "--seconds",
                f"{secs:g}",
                "--size",
                4096,
                "--reply",
            )
            procs.append(c.lab.spawn(ns, argv))
        return procs

    def expects() -> list[Expect]:
        return [
            Expect("outbound", "50 conn/s out → p1 (client)", 1, frozenset({procs[0].pid})),
            Expect("inbound", "50 conn/s in ← p2 (server)", 2, frozenset({server.pid})),
        ]

    return Setup(start, expects, secs + 2.0)


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("bulk_tcp", "bulk TCP, iperf3 2 × 100 Mbit/s", 2, bulk_tcp),
        Scenario("bulk_udp", "connected UDP, iperf3 -u 2 × 20 Mbit/s", 2, bulk_udp),
        Scenario("udp_spray", "unconnected UDP, 1 socket sendto() ×4 targets", 2, udp_spray),
        Scenario("http_download", "HTTP download, nginx", 1, http_download),
        Scenario("short_tcp", "short TCP, 50 conn/s each way", 2, short_tcp),
    )
}


def _monitors(c: CompareLab, tmp: Path, hostmedic: str, duration_s: float) -> list[Monitor]:
    devs = c.devices()
    limit = int(duration_s) + 40  # a bound on refreshes; they are stopped long before
    mons = [
        start_monitor(
            c.lab, tmp, "hostmedic", "hostmedic", hostmedic_argv(hostmedic, duration_s), 1
        )
    ]
    for name, udp, view in (
        ("nethogs", False, 0),
        ("nethogs -C", True, 0),
        ("nethogs -C -v2", True, 2),
    ):
        argv = nethogs_argv(devs, udp, view, limit)
        mons.append(start_monitor(c.lab, tmp, name, "nethogs", argv, len(devs)))
    for dev in c.devices(with_clock=False):
        mon = start_monitor(
            c.lab, tmp, f"iftop {dev}", "iftop", iftop_argv(dev, int(duration_s) + 3), 1
        )
        mon.extra.update(device=dev, seconds=int(duration_s) + 3)
        mons.append(mon)
    return mons


def _counters(c: Counters) -> dict[str, int]:
    return {
        "tx_bytes": c.tx_bytes,
        "rx_bytes": c.rx_bytes,
        "tx_packets": c.tx_packets,
        "rx_packets": c.rx_packets,
    }


def _pair(sent: float, recv: float) -> dict[str, float]:
    return {"tx_bytes": round(sent), "rx_bytes": round(recv)}


def _judge(e: Expect, c: CompareLab, truth: Counters, doc: dict, mons: dict[str, Monitor]) -> dict:
    p = c.lab.peer(e.peer)
    remotes = {p.peer_ip4, p.peer_ip6}
    m = Measurement(doc, {e.peer: truth})
    flows = m.flows(e.pids, remotes)
    remote = m.remote(p.peer_ip4) + m.remote(p.peer_ip6)
    frames = truth.total_bytes + ETHERNET_HEADER_BYTES * (truth.tx_packets + truth.rx_packets)
    tools: dict[str, dict[str, float]] = {
        "hostmedic process": {
            **_pair(flows.tx_bytes, flows.rx_bytes),
            "tx_packets": flows.tx_packets,
            "rx_packets": flows.rx_packets,
        },
        "hostmedic remote": _pair(remote.tx_bytes, remote.rx_bytes),
    }
    for name in ("nethogs", "nethogs -C"):
        tools[f"{name} KB/s∫ process"] = _pair(
            *nethogs_integrated(parse_nethogs(mons[name].output()), e.pids)
        )
    tools["nethogs -C -v2 process"] = _pair(
        *nethogs_totals(parse_nethogs(mons["nethogs -C -v2"].output()), e.pids)
    )
    iftop = mons.get(f"iftop {p.srv_dev}")
    if iftop is not None:
        pairs, complete = parse_iftop(iftop.output())
        tools["iftop remote"] = _pair(*iftop_remote_bytes(pairs, remotes))
        tools["iftop remote"]["complete"] = complete
    whole = truth.total_bytes
    shares = {
        k: (v["tx_bytes"] + v["rx_bytes"]) / whole if whole else None for k, v in tools.items()
    }
    return {
        "key": e.key,
        "label": e.label,
        "peer": e.peer,
        "pids": sorted(e.pids),
        "truth": _counters(truth),
        "truth_frame_bytes": frames,
        "tools": tools,
        "share_of_ip_truth": shares,
        "nethogs_share_of_frame_truth": {
            k: (v["tx_bytes"] + v["rx_bytes"]) / frames for k, v in tools.items() if "nethogs" in k
        },
    }


def run(name: str, hostmedic: str, secs: float, keep: Path | None = None) -> dict[str, Any]:
    """One scenario in a fresh lab; everything it started is killed and the lab deleted.
    With ``keep``, the monitors' raw outputs are copied to ``keep/<scenario>/``."""
    sc = SCENARIOS[name]
    c = build(sc.peers, clock=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"hmF-{name}-"))
    mons: list[Monitor] = []
    try:
        setup = sc.fn(c, tmp, secs)
        c.lab.wait_quiet(quiet_s=1.0, timeout_s=10.0)
        duration = setup.max_s + SETTLE_S + 6.0
        c.start_clock(duration + NETHOGS_TAIL_S + 20)
        load_start = loadavg()
        mons = _monitors(c, tmp, hostmedic, duration)
        by_name = {m.name: m for m in mons}
        ready = wait_ready(mons)
        time.sleep(SETTLE_S)
        hm = by_name["hostmedic"]
        left = hm.started_s + ready["hostmedic"] + duration - time.monotonic()
        if left < setup.max_s + 1.0:
            raise LabError(f"hostmedic's window has {left:.1f} s left: machine too slow")
        before = c.truth()
        cpu0 = {m.name: cpu_sample(m.pid) for m in mons}
        gens = setup.start()
        t0 = time.monotonic()
        deadline = t0 + setup.max_s + 3.0
        while any(g.poll() is None for g in gens) and time.monotonic() < deadline:
            time.sleep(0.01)
        overran = [g.args for g in gens if g.poll() is None]
        kill_all(c.lab, gens)
        t_end = time.monotonic()
        cpu1 = {m.name: cpu_sample(m.pid) for m in mons}
        memory = {m.name: memory_kib(m.pid) for m in mons}
        time.sleep(0.5)  # FIN/ACK exchanges of just-closed sockets
        settled = c.truth()
        if hm.proc.wait(timeout=duration + 30) != 0:
            raise LabError(f"hostmedic exited {hm.proc.returncode}: {hm.errors()[-500:]}")
        doc = json.loads(hm.output())
        wait_until(t_end + NETHOGS_TAIL_S)
        kill_all(c.lab, [m.proc for m in mons if m.kind == "nethogs"])
        final = c.truth()
        c.stop_clock()
        for m in (m for m in mons if m.kind == "iftop"):
            stop_iftop(c, m, int(m.extra["device"][1:]))
        truth = {i: final[i] - before[i] for i in final}
        expects = [_judge(e, c, truth[e.peer], doc, by_name) for e in setup.expects()]
        return {
            "scenario": name,
            "label": sc.label,
            "seconds": secs,
            "expects": expects,
            "traffic_s": round(t_end - t0, 3),
            "generators_overran": [str(a) for a in overran],
            "quiet_after_generators": settled == final,
            "hostmedic": {
                "capture_drops": doc.get("capture_drops"),
                "not_counted": doc.get("not_counted"),
                "interfaces": doc.get("interfaces"),
            },
            "nethogs_seen": {
                n: nethogs_names(parse_nethogs(by_name[n].output()))
                for n in ("nethogs", "nethogs -C")
            },
            "iftop_exited": {m.name: m.extra.get("exited") for m in mons if m.kind == "iftop"},
            "monitor_start_s": {k: round(v, 3) for k, v in ready.items()},
            "cpu_during_traffic": {n: cpu_share(cpu0[n], cpu1[n]) for n in cpu0},
            "memory_kib": memory,
            "loadavg": {"start": load_start, "end": loadavg()},
            "notes": setup.notes,
        }
    finally:
        kill_all(c.lab, [m.proc for m in mons])
        c.destroy()
        if keep is not None:
            shutil.copytree(
                tmp, keep / name, ignore=shutil.ignore_patterns("www"), dirs_exist_ok=True
            )
        shutil.rmtree(tmp, ignore_errors=True)

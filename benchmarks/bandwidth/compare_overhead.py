"""Overhead: what each monitor costs in CPU and memory, and how much it slows a packet flood.

- ``load(kind)``: all monitors at once, one lab link, steady traffic; CPU seconds per wall
  second of each monitor over a window in the middle of the traffic, and peak RSS (VmHWM).
  Kinds: ``tcp200`` (iperf3 -b 200M), ``short50`` (50 short TCP connections/s: 25 out, 25
  in).
- ``flood(configs)``: the highest small-packet UDP rate the machine makes (several
  ``iperf3 -u -l 16 -b 0`` on one link), with no monitor and then with each monitor
  *alone*; packets/s from the sender's device counters, the monitor's CPU, and for
  hostmedic how much of the flood it counted (and its capture drops). The receiver is
  either *local* (the iperf3 servers' sockets in the peer namespace, on this machine) or
  *remote*: the peer drops the flood's datagrams in its prerouting hook, before any
  socket, as if the receiving host were elsewhere (an outbound flood from a compromised
  server). The difference matters for in-kernel counters, which run wherever a socket
  sends or receives on the machine, and not for packet taps, which only see one side.
- ``soak(seconds)``: hostmedic alone under a moderate UDP flood, RSS every 10 s.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from compare_lab import CompareLab, LabError, build, kill_all, loadavg, read_net_dev
from compare_monitors import (
    Monitor,
    cpu_sample,
    cpu_share,
    hostmedic_argv,
    iftop_argv,
    iftop_remote_bytes,
    memory_kib,
    nethogs_argv,
    parse_iftop,
    start_monitor,
    stop_iftop,
    wait_ready,
)
from tests.lab import traffic

FLOOD_CLIENTS = 3
FLOOD_PAYLOAD = 16
RAMP_S = 1.5  # traffic settles before the measuring window opens
RECEIVERS = ("local", "remote")
_DROP_TABLE = "hmF_remote"


def _remote_receiver(c: CompareLab, on: bool) -> None:
    """In the peer namespace only: drop the flood's datagrams (IP length 20 + 8 + payload)
    before they reach a socket. iperf3's 4-byte UDP handshake and its TCP control
    connection pass, so the servers still start and report."""
    ns = c.lab.peer(1).ns
    if not on:
        subprocess.run(["ip", "netns", "exec", ns, "nft", "delete", "table", "inet", _DROP_TABLE],
                       capture_output=True, check=False)  # fmt: skip
        return
    length = 20 + 8 + FLOOD_PAYLOAD
    for cmd in (
        f"add table inet {_DROP_TABLE}",
        f"add chain inet {_DROP_TABLE} pre {{ type filter hook prerouting priority -300; }}",
        f"add rule inet {_DROP_TABLE} pre ip length {length} udp dport 5201-5299 drop",
    ):
        c.lab.exec(ns, ["nft", cmd])


def _start(c: CompareLab, tmp: Path, name: str, hostmedic: str, duration_s: float) -> Monitor:
    devs = c.devices()
    if name == "hostmedic":
        return start_monitor(
            c.lab, tmp, name, "hostmedic", hostmedic_argv(hostmedic, duration_s), 1
        )
    if name.startswith("nethogs"):
        argv = nethogs_argv(devs, "-C" in name, 0, int(duration_s) + 30)
        return start_monitor(c.lab, tmp, name, "nethogs", argv, len(devs))
    if name == "iftop":
        mon = start_monitor(c.lab, tmp, name, "iftop", iftop_argv(devs[0], int(duration_s)), 1)
        mon.extra["seconds"] = int(duration_s)
        return mon
    raise ValueError(name)


def _rates(a: Any, b: Any, wall_s: float) -> dict[str, float]:
    return {
        "tx_pps": (b.tx_packets - a.tx_packets) / wall_s,
        "rx_pps": (b.rx_packets - a.rx_packets) / wall_s,
        "tx_mbit_s": (b.tx_bytes - a.tx_bytes) * 8 / wall_s / 1e6,
        "rx_mbit_s": (b.rx_bytes - a.rx_bytes) * 8 / wall_s / 1e6,
    }


def load(kind: str, hostmedic: str, window_s: float) -> dict[str, Any]:
    """All monitors together under one steady load on link p1; CPU over ``window_s``."""
    c = build(1, clock=False)
    tmp = Path(tempfile.mkdtemp(prefix=f"hmF-load-{kind}-"))
    mons: list[Monitor] = []
    p1 = c.lab.peer(1)
    secs = window_s + RAMP_S + 2.0
    try:
        if kind == "tcp200":
            c.lab.spawn(p1.ns, ["timeout", "90", "iperf3", "-s", "-1", "-B", p1.peer_ip4])
            c.lab.wait_listening(p1.ns, 5201)
            gens_argv = [(c.srv, ["iperf3", "-c", p1.peer_ip4, "-t", f"{secs:g}", "-b", "200M"])]
        elif kind == "short50":
            sink = ["--lifetime", 90, "--reply", 256]
            c.lab.spawn(
                p1.ns,
                traffic.argv("tcp-sink", "--bind", p1.peer_ip4, "--port", 7001, *sink),
                ready_line="READY",
            )
            c.lab.spawn(
                c.srv,
                traffic.argv("tcp-sink", "--bind", p1.srv_ip4, "--port", 7002, *sink),
                ready_line="READY",
            )
            short = ["--rate", 25, "--seconds", f"{secs:g}", "--size", 4096, "--reply"]
            gens_argv = [
                (c.srv, traffic.argv("tcp-short", "--to", f"{p1.peer_ip4}:7001", *short)),
                (p1.ns, traffic.argv("tcp-short", "--to", f"{p1.srv_ip4}:7002", *short)),
            ]
        else:
            raise ValueError(kind)
        c.lab.wait_quiet(quiet_s=1.0)
        names = ["hostmedic", "nethogs", "nethogs -C", "iftop"]
        mons = [_start(c, tmp, n, hostmedic, secs + 8) for n in names]
        wait_ready(mons)
        time.sleep(1.0)
        load_start = loadavg()
        gens = [c.lab.spawn(ns, argv) for ns, argv in gens_argv]
        time.sleep(RAMP_S)
        any_srv_pid = mons[0].pid
        dev0 = read_net_dev(any_srv_pid, p1.srv_dev)
        cpu0 = {m.name: cpu_sample(m.pid) for m in mons}
        time.sleep(window_s)
        cpu1 = {m.name: cpu_sample(m.pid) for m in mons}
        dev1 = read_net_dev(any_srv_pid, p1.srv_dev)
        memory = {m.name: memory_kib(m.pid) for m in mons}
        wall = (cpu1["hostmedic"].at_s - cpu0["hostmedic"].at_s) if cpu0["hostmedic"] else window_s
        alive = {m.name: m.proc.poll() is None for m in mons}
        for g in gens:
            g.wait(timeout=secs + 10)
        return {
            "load": kind,
            "window_s": window_s,
            "traffic": _rates(dev0, dev1, wall) if dev0 and dev1 else None,
            "cpu": {n: cpu_share(cpu0[n], cpu1[n]) for n in cpu0},
            "memory_kib": memory,
            "alive_through_window": alive,
            "loadavg": {"start": load_start, "end": loadavg()},
        }
    finally:
        kill_all(c.lab, [m.proc for m in mons])
        c.destroy()
        shutil.rmtree(tmp, ignore_errors=True)


def _flood_once(
    c: CompareLab,
    tmp: Path,
    monitor: str | None,
    receiver: str,
    hostmedic: str,
    window_s: float,
    clients: int,
) -> dict[str, Any]:
    p1 = c.lab.peer(1)
    _remote_receiver(c, receiver == "remote")
    secs = window_s + RAMP_S + 1.0
    servers = []
    for k in range(clients):
        servers.append(
            c.lab.spawn(
                p1.ns,
                ["timeout", "60", "iperf3", "-s", "-1", "-B", p1.peer_ip4, "-p", str(5201 + k)],
            )
        )
        c.lab.wait_listening(p1.ns, 5201 + k)
    c.lab.wait_quiet(quiet_s=0.5)
    mon = None
    if monitor is not None:
        mon = _start(c, tmp, monitor, hostmedic, secs + 3.5)
        wait_ready([mon])
        time.sleep(1.0)
    before = c.truth()[1]
    gens = [
        c.lab.spawn(
            c.srv,
            [
                "iperf3",
                "-c",
                p1.peer_ip4,
                "-p",
                str(5201 + k),
                "-u",
                "-l",
                str(FLOOD_PAYLOAD),
                "-b",
                "0",
                "-t",
                f"{secs:g}",
            ],
        )
        for k in range(clients)
    ]
    time.sleep(RAMP_S)
    dev0, cpu0 = read_net_dev(gens[0].pid, p1.srv_dev), cpu_sample(mon.pid) if mon else None
    time.sleep(window_s)
    dev1, cpu1 = read_net_dev(gens[0].pid, p1.srv_dev), cpu_sample(mon.pid) if mon else None
    wall = window_s if cpu0 is None or cpu1 is None else cpu1.at_s - cpu0.at_s
    memory = memory_kib(mon.pid) if mon else {}
    for g in gens:
        g.wait(timeout=secs + 10)
    time.sleep(0.3)
    result: dict[str, Any] = {
        "monitor": monitor or "none",
        "receiver": receiver,
        "clients": clients,
        "loadavg": loadavg(),
        "rates": _rates(dev0, dev1, wall) if dev0 and dev1 else None,
        "cpu": cpu_share(cpu0, cpu1),
        "memory_kib": memory,
    }
    if mon is not None and mon.kind == "hostmedic":
        if mon.proc.wait(timeout=secs + 30) != 0:
            raise LabError(f"hostmedic exited {mon.proc.returncode}: {mon.errors()[-300:]}")
        doc = json.loads(mon.output())
        truth = c.truth()[1] - before
        counted = next((i for i in doc["interfaces"] if i["name"] == p1.srv_dev), None)
        # the server namespace's own flows: the peer is one of its containers (attached by a
        # veth), whose receiving sockets are counted too, as its own rows
        flows = sum(
            f["tx_bytes"] + f["rx_bytes"] for f in doc["flows"] if f.get("container") is None
        )
        result["hostmedic"] = {
            "capture_drops": doc.get("capture_drops"),
            "flow_bytes": flows,
            "truth_bytes": truth.total_bytes,
            "flows_share_of_truth": flows / truth.total_bytes if truth.total_bytes else None,
            "interface": counted,
        }
    if mon is not None and mon.kind == "iftop":
        truth = c.truth()[1] - before
        stop_iftop(c, mon, 1)
        pairs, complete = parse_iftop(mon.output())
        got = sum(iftop_remote_bytes(pairs, {p1.peer_ip4, p1.peer_ip6}))
        result["iftop_share_of_truth"] = got / truth.total_bytes if complete else None
    if mon is not None:
        kill_all(c.lab, [mon.proc])
    kill_all(c.lab, servers)
    return result


def flood(
    configs: list[tuple[str | None, str]],
    hostmedic: str,
    window_s: float,
    clients: int = FLOOD_CLIENTS,
) -> list[dict[str, Any]]:
    """Each (monitor or None, receiver) in turn on one lab; a LabError spoils only one run."""
    c = build(1, clock=False)
    tmp = Path(tempfile.mkdtemp(prefix="hmF-flood-"))
    out = []
    try:
        for monitor, receiver in configs:
            try:
                out.append(_flood_once(c, tmp, monitor, receiver, hostmedic, window_s, clients))
            except (LabError, RuntimeError, subprocess.TimeoutExpired) as exc:
                out.append({"monitor": monitor or "none", "receiver": receiver, "error": str(exc)})
    finally:
        c.destroy()
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def soak(seconds: float, hostmedic: str, rate: str = "100M", size: int = 256) -> dict[str, Any]:
    """hostmedic alone under ``iperf3 -u -b rate -l size`` for ``seconds``; RSS every 10 s."""
    seconds = min(seconds, 3600.0)
    c = build(1, clock=False)
    tmp = Path(tempfile.mkdtemp(prefix="hmF-soak-"))
    p1 = c.lab.peer(1)
    try:
        c.lab.spawn(
            p1.ns, ["timeout", f"{seconds + 60:g}", "iperf3", "-s", "-1", "-B", p1.peer_ip4]
        )
        c.lab.wait_listening(p1.ns, 5201)
        mon = _start(c, tmp, "hostmedic", hostmedic, seconds + 10)
        wait_ready([mon])
        gen = c.lab.spawn(
            c.srv,
            ["iperf3", "-c", p1.peer_ip4, "-u", "-b", rate, "-l", str(size), "-t", f"{seconds:g}"],
        )
        t0 = time.monotonic()
        samples, cpu0 = [], cpu_sample(mon.pid)
        while time.monotonic() - t0 < seconds and gen.poll() is None:
            time.sleep(10.0 - (time.monotonic() - t0) % 10.0)
            samples.append({"t_s": round(time.monotonic() - t0, 1), **memory_kib(mon.pid)})
        cpu1 = cpu_sample(mon.pid)
        gen.wait(timeout=30)
        doc = json.loads(mon.output()) if mon.proc.wait(timeout=60) == 0 else None
        return {
            "seconds": seconds,
            "rate": rate,
            "size": size,
            "rss_kib": samples,
            "peak_hwm_kib": max((s.get("VmHWM", 0) for s in samples), default=None),
            "cpu": cpu_share(cpu0, cpu1),
            "loadavg": loadavg(),
            "capture_drops": doc.get("capture_drops") if doc else None,
        }
    finally:
        c.destroy()
        shutil.rmtree(tmp, ignore_errors=True)

"""Lab plumbing shared by the comparison runs, on top of tests/lab/netlab.py.

Two additions to the test lab, both because of how the other tools work:
- a *clock* peer (the last one) carrying a TCP trickle (a few bytes every 100 ms) to a
  sink in the server namespace: nethogs only advances its clock on captured TCP/UDP
  packets, so on sterile lab links its KB/s figures freeze once the measured traffic stops.
  The clock link is watched by nethogs (it is a device of the host like any other) but
  never by iftop, and no truth is taken from it.
- a *nudge*: iftop ``-t -s N`` only prints when a packet arrives after its deadline, so
  after the run a single datagram goes from the server to ``198.18.<i>.99`` (no host: a
  permanent neighbour entry makes the frame leave on the lab link, the peer drops it).

Run as a script, this module is the trickle sender (stdlib only, bounded in time):
``python compare_lab.py trickle --to 198.18.3.1:7100 --seconds 60``.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
REPO = HERE.parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.lab import traffic  # noqa: E402
from tests.lab.netlab import Lab, LabError, sweep_stale  # noqa: E402
from tests.lab.traffic import Counters  # noqa: E402

PREFIX = "hmF-"
CLOCK_PORT = 7100
NUDGE_HOST = 99
MAX_TRICKLE_S = 300.0


@dataclass
class CompareLab:
    """A :class:`Lab` with ``measured`` peers (truth is read there) and maybe a clock peer."""

    lab: Lab
    measured: int
    clock: bool

    @property
    def srv(self) -> str:
        return self.lab.srv

    def devices(self, with_clock: bool = True) -> list[str]:
        """Server-side devices: the measured links (and the clock link)."""
        n = self.measured + (1 if with_clock and self.clock else 0)
        return [self.lab.peer(i).srv_dev for i in range(1, n + 1)]

    def truth(self) -> dict[int, Counters]:
        """Counters of the measured links, seen from the server (from the peers' veths)."""
        return {
            i: self.lab.counters(p.ns)[p.peer_dev].reversed()
            for i, p in ((i, self.lab.peer(i)) for i in range(1, self.measured + 1))
        }

    def start_clock(self, seconds: float) -> None:
        """The TCP trickle on the clock link (sink in srv, sender in the clock peer)."""
        if not self.clock:
            return
        c = self.lab.peer(self.measured + 1)
        sink = traffic.argv(
            "tcp-sink",
            "--bind",
            c.srv_ip4,
            "--port",
            CLOCK_PORT,
            "--lifetime",
            min(seconds + 5, 115),
        )
        self.lab.spawn(self.srv, sink, ready_line="READY")
        sender = [
            sys.executable,
            str(HERE),
            "trickle",
            "--to",
            f"{c.srv_ip4}:{CLOCK_PORT}",
            "--seconds",
            f"{seconds:g}",
        ]
        self.clock_proc = self.lab.spawn(c.ns, sender)

    def stop_clock(self) -> None:
        proc = getattr(self, "clock_proc", None)
        if proc is not None:
            self.lab.kill(proc)

    def nudge(self, index: int) -> None:
        """One datagram from the server onto link ``index`` (wakes iftop -s up)."""
        p = self.lab.peer(index)
        target = f"{p.peer_ip4.rsplit('.', 1)[0]}.{NUDGE_HOST}:9"
        argv = traffic.argv(
            "udp-spray",
            "--to",
            target,
            "--count",
            1,
            "--size",
            8,
            "--interval",
            0,
            "--max-seconds",
            2,
        )
        subprocess.run(
            ["ip", "netns", "exec", self.srv, *argv], capture_output=True, timeout=10, check=False
        )

    def destroy(self) -> None:
        self.lab.destroy()


def build(measured: int, clock: bool = True) -> CompareLab:
    """A fresh ``hmF-`` lab with ``measured`` peers (+1 clock peer), quiet before returning.

    ``Lab.build`` waits 0.6 s of silence, but the peers' MLDv2 reports (2 × 76 B) were seen
    up to ~0.4 s after that: wait for 1.5 s of silence again so that no tool starts mid-way.
    """
    sweep_stale(PREFIX)
    lab = Lab(peers_wanted=measured + (1 if clock else 0), prefix=PREFIX)
    try:
        lab.build()
        for i in range(1, measured + 1):
            p = lab.peer(i)
            mac = lab.exec(p.ns, ["cat", f"/sys/class/net/{p.peer_dev}/address"]).strip()
            nudge_ip = f"{p.peer_ip4.rsplit('.', 1)[0]}.{NUDGE_HOST}"
            lab.exec(
                lab.srv,
                [
                    "ip",
                    "neigh",
                    "replace",
                    nudge_ip,
                    "lladdr",
                    mac,
                    "nud",
                    "permanent",
                    "dev",
                    p.srv_dev,
                ],
            )
        lab.wait_quiet(quiet_s=1.5, timeout_s=12.0)
    except BaseException:
        lab.destroy()
        raise
    return CompareLab(lab, measured, clock)


def wait_until(t: float) -> None:
    time.sleep(max(0.0, t - time.monotonic()))


def read_net_dev(pid: int, device: str) -> Counters | None:
    """IP-level counters of ``device`` in the network namespace of ``pid`` (via /proc)."""
    try:
        with open(f"/proc/{pid}/net/dev", encoding="ascii") as f:
            return traffic.parse_net_dev(f.read()).get(device)
    except OSError:
        return None


def loadavg() -> list[float]:
    with open("/proc/loadavg", encoding="ascii") as f:
        return [float(x) for x in f.read().split()[:3]]


def kill_all(lab: Lab, procs: list[Any]) -> None:
    for proc in procs:
        with contextlib.suppress(OSError):
            lab.kill(proc)


def trickle(target: tuple[str, int], seconds: float, interval_s: float = 0.1) -> None:
    """One TCP connection sending 16 bytes every ``interval_s`` for ``seconds`` (bounded)."""
    deadline = time.monotonic() + min(seconds, MAX_TRICKLE_S)
    with socket.create_connection(target, timeout=5) as c:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while time.monotonic() < deadline:
            c.sendall(b"t" * 16)
            time.sleep(interval_s)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("trickle")
    p.add_argument("--to", required=True)
    p.add_argument("--seconds", type=float, default=60.0)
    a = ap.parse_args()
    trickle(traffic.endpoint(a.to), a.seconds)


__all__ = ["CompareLab", "LabError", "build", "kill_all", "loadavg", "read_net_dev"]

if __name__ == "__main__":
    main()

"""A reusable network-namespace lab: one "server" namespace linked to N peers by veth pairs.

Built for end-to-end tests of hostmedic: the tool runs *inside* the server namespace and
every peer talks to exactly one known process there, so the peer's own veth counters are
the ground truth for that (process, remote). To make those counters equal IP-level truth
(+14 bytes of Ethernet header per packet), a lab link carries nothing but the test's
traffic: offloads are off (packets on the wire are real MTU-sized packets), neighbours are
permanent entries (no ARP / neighbour discovery), there is no IPv6 link-local address, DAD
or router solicitation, and :meth:`Lab.build` waits until the links are quiet.

Everything the lab creates is named ``<prefix><token>-…`` and is removed by
:meth:`Lab.destroy` (also on failure, when used as a context manager): processes it
spawned are killed by PID (and their process group), then whatever still runs inside a
lab namespace (``ip netns pids``) is killed, then the namespaces are deleted. Only
namespace-local sysctls are changed, never the root namespace's.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.lab.traffic import Counters, Measurement, parse_net_dev

MAX_TICK_GAP_S = 1.6  # ticks are 1 s apart; a longer gap means the machine starved the tool
HOSTMEDIC = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "hostmedic"
_NS_SYSCTLS = (
    # Neither DAD, router solicitations nor link-local addresses: no stray ICMPv6 on lab links.
    "net.ipv6.conf.all.accept_dad=0",
    "net.ipv6.conf.default.accept_dad=0",
    "net.ipv6.conf.all.router_solicitations=0",
    "net.ipv6.conf.default.router_solicitations=0",
    "net.ipv6.conf.default.addr_gen_mode=1",
    # MLD reports for the solicited-node groups cannot be turned off; make them finish fast.
    "net.ipv6.conf.default.mldv1_unsolicited_report_interval=10",
    "net.ipv6.conf.default.mldv2_unsolicited_report_interval=10",
    "net.ipv4.conf.all.igmpv2_unsolicited_report_interval=10",
    "net.ipv4.conf.all.igmpv3_unsolicited_report_interval=10",
)


def stop_group(proc: subprocess.Popen, grace_s: float) -> None:  # type: ignore[type-arg]
    """SIGTERM, then SIGKILL, the process group of a process a lab started (only while its
    leader is unreaped, so the group id cannot have been reused)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace_s)


def sweep_stale(prefix: str = "hmD-", older_than_s: float = 600.0) -> list[str]:
    """Delete leftovers of SIGKILLed runs: ``prefix`` namespaces made more than
    ``older_than_s`` ago (no lab lives that long), after killing what still runs inside
    them (only a lab of this prefix starts processes there). Returns their names."""
    swept = []
    for line in _run(["ip", "netns", "list"]).splitlines():
        name = line.split()[0] if line.strip() else ""
        if not name.startswith(prefix):
            continue
        try:
            age = time.time() - os.stat(f"/run/netns/{name}").st_mtime
        except OSError:
            continue
        if age > older_than_s:
            Lab._kill_inside(name)
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
            swept.append(name)
    return swept


def counting_handles(pid: int) -> int:
    """How many packet-counting handles ``pid`` holds: AF_PACKET sockets (a tap) and
    cgroup eBPF links (hostmedic's in-kernel counter). A monitor opens them just before
    its baseline read, so the moment they appear marks it."""
    try:
        with open(f"/proc/{pid}/net/packet", encoding="ascii") as f:
            inodes = {line.split()[-1] for line in f.read().splitlines()[1:] if line.strip()}
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return 0
    count = 0
    for fd in fds:
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:[") and target[8:-1] in inodes:
                count += 1
            elif target == "anon_inode:bpf_link":
                with open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii") as f:
                    count += "link_type:\tcgroup" in f.read()
    return count


class LabError(RuntimeError):
    """The lab could not be built or measured (a harness problem, not a tool verdict)."""


def _sleep_until(t: float) -> None:
    time.sleep(max(t - time.monotonic(), 0.0))


@dataclass(frozen=True, slots=True)
class Peer:
    """One peer namespace and its link to the server namespace."""

    index: int
    ns: str
    srv_dev: str  # the server-side veth end (what hostmedic reports in interfaces[])
    peer_dev: str
    srv_ip4: str
    peer_ip4: str
    srv_ip6: str
    peer_ip6: str


def _run(argv: Sequence[str], timeout: float = 20.0) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


@dataclass
class HostmedicRun:
    """One ``hostmedic bandwidth --json`` running inside the server namespace."""

    proc: subprocess.Popen[str]
    duration_s: float
    started_s: float
    baseline_s: float | None = None
    ticks: list[float] = field(default_factory=list)

    def _watch_ticks(self) -> None:
        # A tick reads /proc files in a burst, and between ticks the tool reads none (the
        # capture thread only polls its ring): a burst of read syscalls after >= 0.25 s of
        # silence is a tick. Lets a test place events at a known phase of the tool's ticks.
        last, quiet_since, tick_at = -1, time.monotonic(), time.monotonic()
        while self.proc.poll() is None:
            try:
                with open(f"/proc/{self.proc.pid}/io", encoding="ascii") as f:
                    reads = int(f.read().split("syscr:")[1].split()[0])
            except (OSError, IndexError, ValueError):
                return
            now = time.monotonic()
            if reads != last:
                # ...and at least 0.6 s after the previous one: a slow tick read in two bursts
                # is still one tick (ticks are >= 1 s apart)
                if last >= 0 and now - quiet_since >= 0.25 and now - tick_at >= 0.6:
                    self.ticks.append(now)
                    tick_at = now
                last, quiet_since = reads, now
            time.sleep(0.005)

    def wait_tick(self, n: int, timeout_s: float = 10.0) -> float:
        """Block until the tool's ``n``-th tick after the baseline (1-based); returns its time."""
        deadline = time.monotonic() + timeout_s
        while len(self.ticks) < n:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise LabError(f"saw {len(self.ticks)} ticks of hostmedic, waited for {n}")
            time.sleep(0.005)
        return self.ticks[n - 1]

    def wait_baseline(self, timeout_s: float = 15.0, settle_s: float = 0.0) -> float:
        """Block until ``settle_s`` after the tool's baseline read; returns the baseline time.

        The monitor opens its UDP/ICMP counter (cgroup eBPF links, or a packet ring) just
        before the baseline read, so the moment it shows up among the process's fds marks
        the baseline (within ~20 ms). Without a counter this times out with a LabError.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LabError(f"hostmedic exited early: {self.proc.stderr.read()}")  # type: ignore[union-attr]
            if counting_handles(self.proc.pid):
                self.baseline_s = time.monotonic()
                threading.Thread(target=self._watch_ticks, daemon=True).start()
                time.sleep(settle_s)
                return self.baseline_s
            time.sleep(0.02)
        raise LabError("hostmedic opened no UDP/ICMP counter: cannot tell when its baseline was")

    @property
    def window_end_s(self) -> float:
        """Earliest time of the tool's last tick (traffic must be over well before)."""
        return (self.baseline_s or self.started_s) + self.duration_s

    def result(self, timeout_s: float = 30.0) -> dict:
        """Wait for the tool to finish and return its JSON document."""
        out, err = self.proc.communicate(timeout=self.duration_s + timeout_s)
        if self.proc.returncode != 0:
            raise LabError(f"hostmedic exited {self.proc.returncode}: {err.strip()}")
        return json.loads(out)


def process_tree(pid: int) -> set[int]:
    """``pid`` and all its descendants (nginx master + workers), read from /proc."""
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        found.add(p)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children", encoding="ascii") as f:
                    todo += [int(c) for c in f.read().split() if int(c) not in found]
    return found


@dataclass
class Lab:
    """A server namespace ``<prefix><token>-srv`` with ``peers`` peer namespaces.

    Peer *i* (1-based) is ``<prefix><token>-p<i>``; its link is ``198.18.<i>.1/24`` (server,
    device ``p<i>``) ↔ ``198.18.<i>.2/24`` (peer, device ``eth0``) and
    ``2001:db8:<i>::1/64`` ↔ ``2001:db8:<i>::2/64``.
    """

    peers_wanted: int = 2
    prefix: str = "hmD-"
    token: str = field(default_factory=lambda: secrets.token_hex(2))
    peers: list[Peer] = field(default_factory=list)
    _procs: list[subprocess.Popen] = field(default_factory=list)  # type: ignore[type-arg]
    _namespaces: list[str] = field(default_factory=list)
    _interruptible: set[int] = field(default_factory=set)

    @property
    def srv(self) -> str:
        return f"{self.prefix}{self.token}-srv"

    def peer(self, index: int) -> Peer:
        return self.peers[index - 1]

    # --- building -------------------------------------------------------------------------

    def __enter__(self) -> Lab:
        try:
            self.build()
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def build(self) -> None:
        """Create the namespaces and links, then wait until the links carry nothing."""
        if not 1 <= self.peers_wanted <= 250:
            raise LabError("a lab has 1 to 250 peers")
        self._add_ns(self.srv)
        for i in range(1, self.peers_wanted + 1):
            self.peers.append(self._add_peer(i))
        self.wait_quiet()

    def _add_ns(self, name: str) -> None:
        _run(["ip", "netns", "add", name])
        self._namespaces.append(name)
        _run(["ip", "-n", name, "link", "set", "lo", "up"])
        for setting in _NS_SYSCTLS:
            _run(["ip", "netns", "exec", name, "sysctl", "-q", "-w", setting])

    def _add_peer(self, i: int) -> Peer:
        p = Peer(
            index=i,
            ns=f"{self.prefix}{self.token}-p{i}",
            srv_dev=f"p{i}",
            peer_dev="eth0",
            srv_ip4=f"198.18.{i}.1",
            peer_ip4=f"198.18.{i}.2",
            srv_ip6=f"2001:db8:{i:x}::1",
            peer_ip6=f"2001:db8:{i:x}::2",
        )
        self._add_ns(p.ns)
        srv_mac, peer_mac = f"02:00:00:00:{i:02x}:01", f"02:00:00:00:{i:02x}:02"
        # Created inside the namespaces directly: the root namespace never sees these devices.
        _run(["ip", "-n", self.srv, "link", "add", p.srv_dev, "address", srv_mac, "type", "veth",
              "peer", "name", p.peer_dev, "address", peer_mac, "netns", p.ns])  # fmt: skip
        ends = (
            (self.srv, p.srv_dev, p.srv_ip4, p.srv_ip6, p.peer_ip4, p.peer_ip6, peer_mac),
            (p.ns, p.peer_dev, p.peer_ip4, p.peer_ip6, p.srv_ip4, p.srv_ip6, srv_mac),
        )
        for ns, dev, ip4, ip6, other4, other6, other_mac in ends:
            _run(["ip", "-n", ns, "link", "set", dev, "addrgenmode", "none"])
            _run(["ip", "netns", "exec", ns, "ethtool", "-K", dev,
                  "tso", "off", "gso", "off", "gro", "off"])  # fmt: skip
            _run(["ip", "-n", ns, "addr", "add", f"{ip4}/24", "dev", dev])
            _run(["ip", "-n", ns, "addr", "add", f"{ip6}/64", "dev", dev, "nodad"])
            for other in (other4, other6):
                _run(["ip", "-n", ns, "neigh", "replace", other, "lladdr", other_mac,
                      "nud", "permanent", "dev", dev])  # fmt: skip
        for ns, dev, *_ in ends:
            _run(["ip", "-n", ns, "link", "set", dev, "up"])
        return p

    def wait_quiet(self, quiet_s: float = 0.6, timeout_s: float = 8.0) -> None:
        """Wait until no lab link counts a packet for ``quiet_s`` (MLD reports after link-up)."""
        deadline = time.monotonic() + timeout_s
        last, since = self.snapshot(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.snapshot()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return
        raise LabError(f"lab links never went quiet within {timeout_s} s")

    # --- processes ------------------------------------------------------------------------

    def spawn(
        self,
        ns: str,
        argv: Sequence[str],
        *,
        ready_line: str | None = None,
        interruptible: bool = False,
        **popen: object,
    ) -> subprocess.Popen[str]:
        """Start ``argv`` inside namespace ``ns`` (tracked: killed by PID on destroy).

        ``ip netns exec`` execs the command, so the returned PID is the process itself.
        Output is discarded unless ``stdout``/``stderr`` are given; with ``ready_line``,
        stdout is a pipe and this waits (≤ 10 s) for that line first. ``interruptible``: the
        process stops sending and exits on SIGINT, which ``measure(stop_at=…)`` sends.
        """
        popen.setdefault("stdout", subprocess.PIPE if ready_line else subprocess.DEVNULL)
        popen.setdefault("stderr", subprocess.DEVNULL)
        popen.setdefault("stdin", subprocess.DEVNULL)
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv], text=True, start_new_session=True, **popen
        )  # type: ignore[call-overload]
        self._procs.append(proc)
        if interruptible:
            self._interruptible.add(proc.pid)
        if ready_line is not None:
            self._wait_line(proc, ready_line)
        return proc

    @staticmethod
    def _wait_line(proc: subprocess.Popen[str], line: str, timeout_s: float = 10.0) -> None:
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if sel.select(deadline - time.monotonic()):
                got = proc.stdout.readline()  # type: ignore[union-attr]
                if got.strip() == line:
                    return
                if not got:
                    break
        raise LabError(f"{proc.args} never printed {line!r} (exit {proc.poll()})")

    def exec(self, ns: str, argv: Sequence[str], timeout: float = 20.0) -> str:
        """Run a short command inside ``ns`` and return its stdout (LabError on failure)."""
        return _run(["ip", "netns", "exec", ns, *argv], timeout=timeout)

    def wait_listening(
        self, ns: str, port: int, udp: bool = False, timeout_s: float = 10.0
    ) -> None:
        """Wait until something in ``ns`` listens on ``port`` (TCP) or is bound to it (UDP)."""
        deadline = time.monotonic() + timeout_s
        flags = "-Hlun" if udp else "-Hltn"
        while time.monotonic() < deadline:
            if self.exec(ns, ["ss", flags, f"sport = :{port}"]).strip():
                return
            time.sleep(0.05)
        raise LabError(f"nothing listens on port {port} in {ns}")

    def hostmedic(
        self, duration_s: float, *extra: str, command: Sequence[str] = (str(HOSTMEDIC),)
    ) -> HostmedicRun:
        """Start ``hostmedic bandwidth --json`` inside the server namespace.

        ``command`` replaces the installed entry point (e.g. a patched build to try a fix).
        """
        argv = [*command, "bandwidth", "--duration", str(duration_s), "--json", *extra]
        proc = self.spawn(self.srv, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return HostmedicRun(proc, duration_s, time.monotonic())

    def measure(
        self,
        duration_s: float,
        start_traffic: Callable[[], Sequence[subprocess.Popen[str]]],
        *hostmedic_args: str,
        start_at: tuple[int, float] = (1, 0.4),
        stop_at: tuple[int, float] | None = None,
        margin_s: float = 1.0,
        command: Sequence[str] = (str(HOSTMEDIC),),
    ) -> Measurement:
        """Run the tool for ``duration_s`` with traffic strictly inside its window.

        Servers must already run (and be idle). The tool starts; ``start_traffic()`` starts
        bounded generators ``start_at`` = (tick k, s seconds) after the tool's k-th tick (0:
        its baseline). With ``stop_at``, generators spawned ``interruptible`` get SIGINT then:
        a socket closed at a known phase of the tool's tick. All generators must exit
        ``margin_s`` before the tool's last tick. Truth = peer counter deltas over the whole
        run; a LabError says the window was not clean (traffic before the baseline or after
        the generators) or a generator outlasted it.
        """
        self.wait_quiet()
        before = self.snapshot()
        run = self.hostmedic(duration_s, *hostmedic_args, command=command)
        baseline = run.wait_baseline(settle_s=0.0)
        if self.snapshot() != before:
            raise LabError("lab links carried traffic before the tool's baseline")
        tick, phase = start_at
        _sleep_until((run.wait_tick(tick) if tick else baseline) + phase)
        ended: dict[int, float] = {}
        running = list(start_traffic())
        stop_s = None
        while running:
            for proc in [p for p in running if p.poll() is not None]:
                ended[proc.pid] = time.monotonic()
                running.remove(proc)
            if stop_at is not None and stop_s is None and len(run.ticks) >= stop_at[0]:
                stop_s = run.ticks[stop_at[0] - 1] + stop_at[1]
            if stop_s is not None and time.monotonic() >= stop_s:
                for proc in (p for p in running if p.pid in self._interruptible):
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGINT)
                stop_s = float("inf")
            if running and time.monotonic() > run.window_end_s - margin_s:
                raise LabError(f"{running[0].args} outlasted the tool's window")
            time.sleep(0.002)
        time.sleep(0.3)  # FIN/ACK exchanges of just-closed sockets
        settled = self.snapshot()
        doc = run.result()
        after = self.snapshot()
        if after != settled:
            raise LabError("lab links carried traffic after the generators ended")
        ticks = [baseline, *run.ticks[: int(duration_s)]]
        stall = max(b - a for a, b in itertools.pairwise(ticks))
        if stall > MAX_TICK_GAP_S:
            # Not a verdict on the tool: on a machine this loaded, which tick a packet lands
            # in is luck, and the accuracy figures would measure the load, not the tool.
            raise LabError(f"hostmedic's ticks stalled ({stall:.1f} s apart): machine overloaded")
        truth = {i: after[i] - before[i] for i in after}
        return Measurement(doc, truth, tuple(run.ticks), baseline, ended)

    # --- counters -------------------------------------------------------------------------

    def counters(self, ns: str) -> dict[str, Counters]:
        """IP-level counters of every device in namespace ``ns``."""
        return parse_net_dev(self.exec(ns, ["cat", "/proc/net/dev"]))

    def snapshot(self) -> dict[int, Counters]:
        """Per peer index: its veth counters seen from the *server* (tx = sent by srv)."""
        return {p.index: self.counters(p.ns)[p.peer_dev].reversed() for p in self.peers}

    # --- teardown -------------------------------------------------------------------------

    def kill(self, proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
        """Stop one spawned process and its process group (SIGTERM, then SIGKILL).

        The group is signalled only while its leader is unreaped, so the id cannot have been
        reused; children left by a leader that already exited are killed by :meth:`destroy`
        (they are inside a lab namespace).
        """
        stop_group(proc, 2.0)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    def destroy(self) -> None:
        """Kill every process of the lab, then delete its namespaces (idempotent)."""
        for proc in reversed(self._procs):
            self.kill(proc)
        self._procs.clear()
        for ns in reversed(self._namespaces):
            self._kill_inside(ns)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        self._namespaces.clear()

    @staticmethod
    def _kill_inside(ns: str) -> None:
        # Only processes inside a namespace this lab created: all of them are ours.
        for _ in range(3):
            done = subprocess.run(
                ["ip", "netns", "pids", ns], capture_output=True, text=True, check=False
            )
            pids = [int(p) for p in done.stdout.split()]
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)

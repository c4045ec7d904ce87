"""Bounded traffic generators for the lab, runnable as ``python traffic.py COMMAND …``, and
the ground-truth types the lab measures them with.

Each generator is a separate process so that the PID hostmedic must find is known: the
test starts it with :meth:`netlab.Lab.spawn` inside the right namespace. Every loop is
bounded in count *and* time, servers exit by themselves after ``--lifetime`` seconds, and
senders print one JSON line of what they sent (payload bytes, datagrams/connections) so a
test can cross-check the wire counters. Servers print ``READY`` once listening; senders
stop early on SIGINT (``Lab.measure(stop_at=…)``). Stdlib only: the file runs as a script.

Ground truth: :class:`Counters` (IP-level device counters, link header removed) and
:class:`Measurement` (a hostmedic JSON document next to the truth of the same window).

Only lab addresses are ever targets: the namespaces' own 198.18.0.0/15 and 2001:db8::/32.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import selectors
import signal
import socket
import sys
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_LAB_NETS = (ipaddress.ip_network("198.18.0.0/15"), ipaddress.ip_network("2001:db8::/32"))
HERE = Path(__file__).resolve()


def lab_address(text: str) -> str:
    """The address itself if it lies in the lab ranges; refuses anything else."""
    ip = ipaddress.ip_address(text.strip("[]"))
    if not any(ip in net for net in _LAB_NETS):
        raise ValueError(f"{text} is not a lab address (198.18.0.0/15, 2001:db8::/32)")
    return str(ip)


def endpoint(text: str) -> tuple[str, int]:
    """``ip:port`` or ``[v6]:port`` → (ip, port), lab addresses only."""
    host, _, port = text.rpartition(":")
    return lab_address(host), int(port)


def family_of(ip: str) -> int:
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def argv(command: str, *args: object) -> list[str]:
    """The argv that runs one generator of this module with the current interpreter."""
    return [sys.executable, str(HERE), command, *(str(a) for a in args)]


def _report(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def _stop_on_sigint() -> threading.Event:
    """An event set by SIGINT: the harness's way to end a sender at a chosen moment."""
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


# --- ground truth -------------------------------------------------------------------------

ETHERNET_HEADER_BYTES = 14


@dataclass(frozen=True, slots=True)
class Counters:
    """IP-level counters of one device (link header removed), or a difference of two."""

    tx_bytes: int = 0
    rx_bytes: int = 0
    tx_packets: int = 0
    rx_packets: int = 0

    def __sub__(self, other: Counters) -> Counters:
        return Counters(
            self.tx_bytes - other.tx_bytes,
            self.rx_bytes - other.rx_bytes,
            self.tx_packets - other.tx_packets,
            self.rx_packets - other.rx_packets,
        )

    def __add__(self, other: Counters) -> Counters:
        return Counters(
            self.tx_bytes + other.tx_bytes,
            self.rx_bytes + other.rx_bytes,
            self.tx_packets + other.tx_packets,
            self.rx_packets + other.rx_packets,
        )

    def reversed(self) -> Counters:
        """The same traffic seen from the other end of the link (tx ↔ rx)."""
        return Counters(self.rx_bytes, self.tx_bytes, self.rx_packets, self.tx_packets)

    @property
    def total_bytes(self) -> int:
        return self.tx_bytes + self.rx_bytes


def parse_net_dev(text: str) -> dict[str, Counters]:
    """IP-level counters of every device in a /proc/net/dev text."""
    rows: dict[str, Counters] = {}
    for line in text.splitlines()[2:]:
        name, sep, data = line.partition(":")
        if not sep:
            continue
        v = [int(f) for f in data.split()[:16]]
        rows[name.strip()] = Counters(
            tx_bytes=v[8] - ETHERNET_HEADER_BYTES * v[9],
            rx_bytes=v[0] - ETHERNET_HEADER_BYTES * v[1],
            tx_packets=v[9],
            rx_packets=v[1],
        )
    return rows


def endpoint_ip(text: str) -> str:
    """The address of a hostmedic ``ip:port`` / ``[v6]:port`` endpoint."""
    host = text.rpartition(":")[0] if text.count(":") == 1 or text.startswith("[") else text
    return host.strip("[]")


@dataclass(frozen=True, slots=True)
class Measurement:
    """One hostmedic run over a lab window and the ground truth for that window.

    ``truth`` maps a peer index to its link's counter deltas over the whole tool run, seen
    from the server (tx = sent by the server). Tool-side sums come from the JSON document.
    """

    doc: dict
    truth: dict[int, Counters]
    ticks: tuple[float, ...] = ()  # monotonic times of the tool's ticks (baseline excluded)
    baseline_s: float = 0.0
    ended: dict[int, float] = field(default_factory=dict)  # generator pid → exit time

    def phase(self, t: float) -> tuple[int, float]:
        """(k, s): time ``t`` fell ``s`` seconds after the tool's k-th tick (0: before tick 1)."""
        k = sum(1 for tick in self.ticks if tick <= t)
        return k, t - (self.ticks[k - 1] if k else t)

    def flows(self, pids: Collection[int | None] | None = None, remote_ips: Collection[str] = (),
              proto: str | None = None) -> Counters:  # fmt: skip
        """Sum of ``flows[]`` rows matching the pids (None: any), remote addresses, protocol."""
        total = Counters()
        for f in self.doc["flows"]:
            if pids is not None and f["pid"] not in pids:
                continue
            if remote_ips and endpoint_ip(f["remote"]) not in remote_ips:
                continue
            if proto is not None and f["proto"] != proto:
                continue
            total += Counters(f["tx_bytes"], f["rx_bytes"], f["tx_packets"], f["rx_packets"])
        return total

    def remote(self, ip: str) -> Counters:
        """The ``remotes[]`` row of ``ip`` (zero when absent; remotes carry no packet counts)."""
        for r in self.doc["remotes"]:
            if r["ip"] == ip:
                return Counters(r["tx_bytes"], r["rx_bytes"])
        return Counters()

    def interface(self, name: str) -> tuple[Counters, Counters]:
        """(counted, unattributed) of one interface (zeros when the tool did not list it)."""
        for i in self.doc["interfaces"]:
            if i["name"] == name:
                u = i["unattributed"]
                counted = Counters(i["tx_bytes"], i["rx_bytes"], i["tx_packets"], i["rx_packets"])
                return counted, Counters(u["tx_bytes"], u["rx_bytes"])
        return Counters(), Counters()


def ratio(part: int, whole: int) -> float | None:
    """part / whole, or None when there is nothing to compare (whole == 0 and part == 0)."""
    if whole == 0:
        return None if part == 0 else float("inf")
    return part / whole


# --- servers ------------------------------------------------------------------------------


def tcp_sink(bind: str, port: int, lifetime_s: float, reply: int) -> None:
    """Accept connections, read each to EOF, answer ``reply`` bytes, close. Exits by itself."""
    ip = lab_address(bind)
    srv = socket.socket(family_of(ip), socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((ip, port))
    srv.listen(512)
    srv.settimeout(0.2)
    print("READY", flush=True)
    deadline = time.monotonic() + lifetime_s

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            while conn.recv(65536):
                pass
            if reply:
                conn.sendall(b"r" * reply)

    while time.monotonic() < deadline:
        try:
            conn, _ = srv.accept()
        except TimeoutError:
            continue
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def udp_sink(bind: str, ports: Sequence[int], lifetime_s: float) -> None:
    """Bind ``ports`` and swallow datagrams (no ICMP port-unreachable noise). Exits by itself."""
    ip = lab_address(bind)
    sel = selectors.DefaultSelector()
    for port in ports:
        s = socket.socket(family_of(ip), socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.bind((ip, port))
        sel.register(s, selectors.EVENT_READ)
    print("READY", flush=True)
    deadline = time.monotonic() + lifetime_s
    while (left := deadline - time.monotonic()) > 0:
        for key, _ in sel.select(min(left, 0.2)):
            key.fileobj.recv(65536)  # type: ignore[union-attr]


# --- clients ------------------------------------------------------------------------------


def udp_spray(
    targets: Sequence[tuple[str, int]],
    count: int,
    size: int,
    interval_s: float,
    bind: tuple[str, int] | None,
    max_s: float,
    linger_s: float = 0.0,
) -> None:
    """ONE unconnected UDP socket, sendto() round-robin over ``targets`` (bounded).

    ``linger_s`` keeps the socket open that long after the last datagram (a long-lived
    sender, as opposed to one that closes right after sending).
    """
    fam = family_of(targets[0][0])
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if bind is not None:
        s.bind(bind)
    payload = b"u" * size
    deadline = time.monotonic() + max_s
    sent = 0
    next_at = time.monotonic()
    stop = _stop_on_sigint()
    for i in range(count):
        if time.monotonic() >= deadline or stop.is_set():
            break
        s.sendto(payload, targets[i % len(targets)])
        sent += 1
        next_at += interval_s
        if (pause := next_at - time.monotonic()) > 0:
            time.sleep(pause)
    time.sleep(min(linger_s, 10.0))
    _report(datagrams=sent, payload_bytes=sent * size, local=list(s.getsockname()[:2]))
    s.close()


def tcp_short(target: tuple[str, int], rate: float, seconds: float, size: int, reply: bool) -> None:
    """``rate`` connections per second for ``seconds``: connect, send, close (bounded)."""
    payload = b"s" * size
    count = int(rate * seconds)
    done = 0
    start = time.monotonic()
    for i in range(count):
        if time.monotonic() - start > seconds + 1.0:
            break
        with socket.create_connection(target, timeout=5) as c:
            c.sendall(payload)
            c.shutdown(socket.SHUT_WR)
            while reply and c.recv(65536):
                pass
        done += 1
        if (pause := start + (i + 1) / rate - time.monotonic()) > 0:
            time.sleep(pause)
    _report(connections=done, payload_bytes=done * size)


def main(args: Sequence[str] | None = None) -> None:
    """Command-line entry: one generator per sub-command (see ``--help``)."""
    ap = argparse.ArgumentParser(description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("tcp-sink")
    p.add_argument("--bind", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--lifetime", type=float, default=30.0)
    p.add_argument("--reply", type=int, default=0)
    p = sub.add_parser("udp-sink")
    p.add_argument("--bind", required=True)
    p.add_argument("--ports", required=True, help="comma-separated")
    p.add_argument("--lifetime", type=float, default=30.0)
    p = sub.add_parser("udp-spray")
    p.add_argument("--to", required=True, help="comma-separated ip:port list")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--size", type=int, default=1000)
    p.add_argument("--interval", type=float, default=0.001)
    p.add_argument("--bind", default=None, help="ip:port to bind before sending")
    p.add_argument("--max-seconds", type=float, default=10.0)
    p.add_argument("--linger", type=float, default=0.0, help="keep the socket open after")
    p = sub.add_parser("tcp-short")
    p.add_argument("--to", required=True)
    p.add_argument("--rate", type=float, default=50.0)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--size", type=int, default=4096)
    p.add_argument("--reply", action="store_true", help="read the server's answer to EOF")
    a = ap.parse_args(args)
    if a.cmd == "tcp-sink":
        tcp_sink(a.bind, a.port, min(a.lifetime, 120.0), a.reply)
    elif a.cmd == "udp-sink":
        udp_sink(a.bind, [int(x) for x in a.ports.split(",")], min(a.lifetime, 120.0))
    elif a.cmd == "udp-spray":
        udp_spray(
            [endpoint(t) for t in a.to.split(",")],
            min(a.count, 1_000_000),
            a.size,
            a.interval,
            endpoint(a.bind) if a.bind else None,
            min(a.max_seconds, 60.0),
            a.linger,
        )
    elif a.cmd == "tcp-short":
        tcp_short(endpoint(a.to), a.rate, min(a.seconds, 60.0), a.size, a.reply)


# --- nginx --------------------------------------------------------------------------------


def write_blob(path: Path, size: int) -> Path:
    """A file of ``size`` pseudo-random-looking (incompressible enough) bytes."""
    chunk = bytes(range(256)) * 4096
    with open(path, "wb") as f:
        left = size
        while left > 0:
            f.write(chunk[: min(left, len(chunk))])
            left -= len(chunk)
    return path


def nginx_config(workdir: Path, listen: Sequence[str], root: Path, workers: int = 1) -> Path:
    """A self-contained nginx.conf (own pid file, logs and temp dirs under ``workdir``)."""
    listens = "\n".join(f"        listen {addr};" for addr in listen)
    conf = workdir / "nginx.conf"
    # Workers run as root: the files live in test temp dirs that only root may read.
    conf.write_text(
        f"""user root;
worker_processes {workers};
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    sendfile on;
    keepalive_timeout 5;
    server {{
{listens}
        root {root};
    }}
}}
"""
    )
    return conf


if __name__ == "__main__":
    main()

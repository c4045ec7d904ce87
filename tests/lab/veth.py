"""A pair of network namespaces joined by one quiet veth link, for exact-count live tests.

``a`` (198.18.0.1, 2001:db8:b::1) ↔ ``b`` (198.18.0.2, 2001:db8:b::2), offloads off (one wire
packet per sent segment), neighbours resolved before the test. Named ``hmB-<tag>-a/b``;
both are always deleted.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import struct
import subprocess
import uuid
from collections.abc import Iterator

from hostmedic.collectors.netlink import run_in_netns

A4, B4, A6, B6 = "198.18.0.1", "198.18.0.2", "2001:db8:b::1", "2001:db8:b::2"


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=30)


class Lab:
    """Names of the pair; ``sock`` opens a socket inside one namespace."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.a, self.b = f"hmB-{tag}-a", f"hmB-{tag}-b"
        self.dev_a, self.dev_b = f"hmB{tag}a", f"hmB{tag}b"

    def path(self, ns: str) -> str:
        return f"/run/netns/{ns}"

    def sock(self, ns: str, family: int, kind: int) -> socket.socket:
        return run_in_netns(self.path(ns), lambda: socket.socket(family, kind))


@contextlib.contextmanager
def veth_lab() -> Iterator[Lab]:
    """Build the pair, yield it, delete it (also on failure)."""
    lab = Lab()
    try:
        sh("ip", "netns", "add", lab.a)
        sh("ip", "netns", "add", lab.b)
        sh("ip", "link", "add", lab.dev_a, "netns", lab.a, "type", "veth",
           "peer", "name", lab.dev_b, "netns", lab.b)  # fmt: skip
        for ns, dev, v4, v6 in ((lab.a, lab.dev_a, A4, A6), (lab.b, lab.dev_b, B4, B6)):
            sh("ip", "-n", ns, "addr", "add", f"{v4}/24", "dev", dev)
            sh("ip", "-n", ns, "addr", "add", f"{v6}/64", "dev", dev, "nodad")
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            if shutil.which("ethtool"):  # one wire packet per sent segment
                sh("ip", "netns", "exec", ns, "ethtool", "-K", dev, "gro", "off", "gso", "off",
                   "tso", "off")  # fmt: skip
        # Resolve neighbours first so ARP/ND stay out of the measured window.
        # (-w: keep probing up to 5 s, the veth carrier may come up a moment later)
        sh("ip", "netns", "exec", lab.a, "ping", "-c", "1", "-w", "5", B4)
        sh("ip", "netns", "exec", lab.a, "ping", "-c", "1", "-w", "5", B6)
        yield lab
    finally:
        subprocess.run(["ip", "netns", "del", lab.a], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", lab.b], check=False, capture_output=True)


def bulk_tcp(lab: Lab, family: int, host: str) -> None:
    """Move 500 kB over one TCP connection from namespace a to b (must never be counted)."""
    listener = lab.sock(lab.b, family, socket.SOCK_STREAM)
    client = lab.sock(lab.a, family, socket.SOCK_STREAM)
    with listener, client:
        listener.bind((host, 0))
        listener.listen()
        client.settimeout(5)
        client.connect(listener.getsockname()[:2])
        peer, _ = listener.accept()
        with peer:
            client.sendall(b"t" * 500_000)
            client.shutdown(socket.SHUT_WR)
            peer.settimeout(5)
            while peer.recv(65536):
                pass


def udp_sockets(lab: Lab) -> tuple[socket.socket, socket.socket, socket.socket, socket.socket]:
    """``(rx4, rx6, tx4, tx6)``: receivers bound in ``b``, unbound senders in ``a``."""
    rx4 = lab.sock(lab.b, socket.AF_INET, socket.SOCK_DGRAM)
    rx6 = lab.sock(lab.b, socket.AF_INET6, socket.SOCK_DGRAM)
    tx4 = lab.sock(lab.a, socket.AF_INET, socket.SOCK_DGRAM)
    tx6 = lab.sock(lab.a, socket.AF_INET6, socket.SOCK_DGRAM)
    rx4.bind((B4, 0))
    rx6.bind((B6, 0))
    return rx4, rx6, tx4, tx6


def send_mix(
    lab: Lab, socks: tuple[socket.socket, ...], n4: int, n6: int, size4: int, size6: int
) -> None:
    """Known traffic from a to b: ``n4``/``n6`` UDP datagrams, 5 pings, 500 kB of TCP per
    family."""
    rx4, rx6, tx4, tx6 = socks
    for _ in range(n4):
        tx4.sendto(b"4" * size4, rx4.getsockname())
    for _ in range(n6):
        tx6.sendto(b"6" * size6, rx6.getsockname()[:2])
    sh("ip", "netns", "exec", lab.a, "ping", "-c", "5", "-i", "0.05", "-W", "2", B4)
    for family, host in ((socket.AF_INET, B4), (socket.AF_INET6, B6)):
        bulk_tcp(lab, family, host)


SO_COOKIE = getattr(socket, "SO_COOKIE", 57)


def socket_cookie(sock: socket.socket) -> int:
    """The kernel's cookie of ``sock`` (SO_COOKIE): what sock_diag and eBPF name it by."""
    return int(struct.unpack("=Q", sock.getsockopt(socket.SOL_SOCKET, SO_COOKIE, 8))[0])

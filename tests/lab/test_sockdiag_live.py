"""Live sock_diag tests against the real kernel: loopback traffic and private namespaces.

Needs root (namespaces, setns). Traffic goes only to 127.0.0.1/::1 on the host or inside the
``hmA-*`` namespaces these tests create and always delete. Loops are bounded in count and
time; waits are bounded polls, never timing assertions.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hostmedic.collectors import netlink as nl
from hostmedic.collectors.sockdiag import (
    DestroyListener,
    SockDiag,
    SocketRecord,
    open_destroy_listener_in_netns,
    open_sockdiag_in_netns,
)
from hostmedic.errors import FactUnavailable
from tests.lab.veth import socket_cookie

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="lab tests need root (netns, setns)"),
]

TCP, UDP = socket.IPPROTO_TCP, socket.IPPROTO_UDP
SRC = Path(__file__).resolve().parents[2] / "src"


def find(records: list[SocketRecord], sock: socket.socket) -> SocketRecord | None:
    want = socket_cookie(sock)
    return next((r for r in records if r.cookie == want), None)


def wait_for(check: Callable[[], bool], seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def connected_pair(family: int) -> tuple[socket.socket, socket.socket, socket.socket]:
    host = "127.0.0.1" if family == socket.AF_INET else "::1"
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.bind((host, 0))
    listener.listen()
    client = socket.create_connection(listener.getsockname()[:2], timeout=5)
    server, _ = listener.accept()
    server.settimeout(5)
    return listener, client, server


def transfer(sender: socket.socket, receiver: socket.socket, n: int) -> None:
    sender.sendall(b"z" * n)
    got = 0
    while got < n:
        chunk = receiver.recv(min(65536, n - got))
        assert chunk, "peer closed early"
        got += len(chunk)


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"hmA-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield f"/run/netns/{name}"
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6])
def test_byte_counters_match_transferred_bytes(family: int) -> None:
    n_up, n_down = 123_457, 54_321
    listener, client, server = connected_pair(family)
    try:
        transfer(client, server, n_up)
        transfer(server, client, n_down)
        with SockDiag() as diag:

            def settled() -> bool:
                recs = diag.dump(TCP, family)
                c, s = find(recs, client), find(recs, server)
                return bool(c and s and c.bytes_acked == n_up + 1 and s.bytes_acked == n_down)

            assert wait_for(settled), "ACKs never settled"
            records = diag.dump(TCP, family)
        c, s = find(records, client), find(records, server)
        assert c is not None and s is not None
        # the connecting side's bytes_acked also counts its SYN (see module docstring)
        assert (c.bytes_sent, c.bytes_acked, c.bytes_received) == (n_up, n_up + 1, n_down)
        assert (s.bytes_sent, s.bytes_acked, s.bytes_received) == (n_down, n_down, n_up)
        assert c.inode == os.fstat(client.fileno()).st_ino and c.uid == os.geteuid()
        assert (c.local_port, c.remote_port) == (client.getsockname()[1], server.getsockname()[1])
        assert c.family == family and c.state == 1 and c.has_timestamps is True
        # our tcp_info offsets agree with the kernel's own getsockopt(TCP_INFO)
        raw = client.getsockopt(TCP, socket.TCP_INFO, 512)
        assert struct.unpack_from("=QQ", raw, 120) == (c.bytes_acked, c.bytes_received)
        assert struct.unpack_from("=Q", raw, 200)[0] == c.bytes_sent
        lst = find(records, listener)
        assert lst is not None and lst.state == 10
    finally:
        for s in (client, server, listener):
            s.close()


def test_udp_connected_and_unconnected() -> None:
    unconnected = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    connected = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        unconnected.bind(("127.0.0.1", 0))
        connected.connect(unconnected.getsockname())
        with SockDiag() as diag:
            records = diag.dump(UDP, socket.AF_INET)
        u, c = find(records, unconnected), find(records, connected)
        assert u is not None and c is not None
        assert (u.state, u.remote_ip, u.protocol, u.bytes_sent) == (7, "0.0.0.0", UDP, None)
        assert (c.state, c.remote_port) == (1, unconnected.getsockname()[1])
    finally:
        unconnected.close()
        connected.close()


def test_destroy_listener_reports_short_lived_connection() -> None:
    n_up, n_down = 4_000, 1_500
    with DestroyListener() as events:
        listener, client, server = connected_pair(socket.AF_INET)
        cookies = {socket_cookie(client): "client", socket_cookie(server): "server"}
        with SockDiag() as diag:
            live_inode = find(diag.dump(TCP, socket.AF_INET), client)
        transfer(client, server, n_up)
        transfer(server, client, n_down)
        client.close()  # active close: client ends in TIME_WAIT, its socket is destroyed then
        assert server.recv(1) == b""
        server.close()
        listener.close()
        seen: dict[str, SocketRecord] = {}

        def collected() -> bool:
            select.select([events], [], [], 0.1)
            for r in events.drain():
                if r.cookie in cookies:
                    seen[cookies[r.cookie]] = r
            return len(seen) == 2

        assert wait_for(collected), f"destroy events missing, got {sorted(seen)}"
    c, s = seen["client"], seen["server"]
    assert live_inode is not None and live_inode.inode > 0
    assert (c.inode, c.uid, c.cgroup_id, c.state, c.protocol) == (0, 0, None, 7, TCP)
    # final counters: acked includes SYN (client) and FIN; received includes the peer's FIN
    assert (c.bytes_sent, c.bytes_acked, c.bytes_received) == (n_up, n_up + 2, n_down + 1)
    assert (s.bytes_sent, s.bytes_acked, s.bytes_received) == (n_down, n_down + 1, n_up + 1)
    assert events.overflows == 0


def test_destroy_listener_counts_overflows_and_keeps_going() -> None:
    with DestroyListener(rcvbuf=4096) as events:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        try:
            for _ in range(200):  # bounded burst, never drained meanwhile
                c = socket.create_connection(listener.getsockname(), timeout=5)
                s, _ = listener.accept()
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.close()  # RST: both sockets die at once, no TIME_WAIT
                s.close()
        finally:
            listener.close()
        assert wait_for(lambda: bool(events.drain()) or events.overflows > 0)
        assert events.overflows >= 1
        # The kernel broadcasts destroy events from a work queue: the burst's last events
        # may still be coming (and overflowing again). Let them settle before the probe.
        quiet_since = time.monotonic()
        deadline = quiet_since + 10
        while time.monotonic() - quiet_since < 0.3 and time.monotonic() < deadline:
            if events.drain():
                quiet_since = time.monotonic()
            time.sleep(0.02)
        probe_listener, probe, peer = connected_pair(socket.AF_INET)
        want = socket_cookie(probe)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        for s in (probe, peer, probe_listener):
            s.close()
        assert wait_for(lambda: any(r.cookie == want for r in events.drain()))


def test_netns_dump_sees_only_its_namespace(netns: str) -> None:
    before = os.readlink("/proc/thread-self/ns/net")

    def make_listener() -> socket.socket:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen()
        return s

    inside = nl.run_in_netns(netns, make_listener)
    try:
        with open_sockdiag_in_netns(netns) as diag:
            assert os.readlink("/proc/thread-self/ns/net") == before
            records = diag.dump(TCP, socket.AF_INET)
        assert [r.cookie for r in records] == [socket_cookie(inside)]
        assert records[0].state == 10
        with SockDiag() as host:
            assert find(host.dump(TCP, socket.AF_INET), inside) is None
        with DestroyListener() as host_events:
            ns_events = open_destroy_listener_in_netns(netns)
            try:
                want = socket_cookie(inside)
                inside.close()
                assert wait_for(lambda: any(r.cookie == want for r in ns_events.drain()))
                time.sleep(0.2)  # give a (wrong) host-side event the same chance to arrive
                assert all(r.cookie != want for r in host_events.drain())
            finally:
                ns_events.close()
    finally:
        inside.close()
    assert os.readlink("/proc/thread-self/ns/net") == before


def test_netns_errors_are_fact_unavailable(tmp_path: Path) -> None:
    with pytest.raises(FactUnavailable, match="does not exist"):
        open_sockdiag_in_netns(str(tmp_path / "missing"))
    with pytest.raises(FactUnavailable, match="not a network namespace"):
        open_sockdiag_in_netns("/proc/self/ns/uts")


def test_dump_survives_signal_storm() -> None:
    # PEP 475 retries EINTR; a 1 ms interval timer interrupts recv() many times here.
    old = signal.signal(signal.SIGALRM, lambda *_: None)
    signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
    try:
        with SockDiag() as diag:
            for _ in range(50):
                diag.dump(TCP, socket.AF_INET)
                diag.dump(TCP, socket.AF_INET6)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        signal.signal(signal.SIGALRM, old)


UNPRIVILEGED_PROBE = """
import socket, struct, sys, time
from hostmedic.collectors.sockdiag import SockDiag, DestroyListener
root_cookie = int(sys.argv[1])
with SockDiag() as d:
    recs = d.dump(socket.IPPROTO_TCP, socket.AF_INET)
seen_root = any(r.cookie == root_cookie and r.uid == 0 and r.inode > 0 for r in recs)
events = DestroyListener()
print("ready", seen_root, flush=True)
sys.stdin.readline()
deadline = time.monotonic() + 3
got = False
while time.monotonic() < deadline and not got:
    got = any(r.cookie == root_cookie for r in events.drain())
    time.sleep(0.02)
print("event", got, flush=True)
"""


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_unprivileged_user_can_dump_and_listen(tmp_path: Path) -> None:
    """Documents the kernel behaviour the module docstring states (no capability needed)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    want = socket_cookie(listener)
    drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    probe = subprocess.Popen(
        [*drop, sys.executable, "-c", UNPRIVILEGED_PROBE, str(want)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        cwd=tmp_path,
    )
    try:
        assert probe.stdout is not None and probe.stdin is not None
        assert probe.stdout.readline().split() == ["ready", "True"]
        listener.close()
        probe.stdin.write("go\n")
        probe.stdin.flush()
        assert probe.stdout.readline().split() == ["event", "True"]
    finally:
        listener.close()
        probe.kill()
        probe.wait(timeout=5)

"""The changed-only ``iter/tcp`` program against the real kernel, and the namespace reader
that falls back to full sock_diag dumps.

Sockets live in a veth pair of namespaces (``hmB-*``, see ``veth.py``); traffic stays
inside them. Waits are bounded polls, never timing assertions.
"""

from __future__ import annotations

import dataclasses
import socket
import struct
import time
from collections.abc import Iterator

import pytest

from hostmedic.collectors.netlink import run_in_netns
from hostmedic.collectors.ns_sockets import DUMPED_STATES, FAMILIES, NamespaceSockets
from hostmedic.collectors.sockdiag import SocketRecord, open_sockdiag_in_netns
from hostmedic.collectors.tcp_iter_program import RECORD_SIZE, parse_output
from hostmedic.collectors.tcp_iterator import TcpIterator
from hostmedic.errors import FactUnavailable, ParseError
from tests.lab.veth import A4, B4, B6, Lab, bulk_tcp, veth_lab

pytestmark = pytest.mark.lab

FIELDS = (
    "family", "state", "local_ip", "local_port", "remote_ip", "remote_port", "inode", "uid",
    "cookie", "bytes_sent", "bytes_received", "segs_out", "segs_in", "has_timestamps",
)  # fmt: skip


def view(r: SocketRecord) -> tuple[object, ...]:
    return tuple(getattr(r, f) for f in FIELDS)


@pytest.fixture(scope="module")
def iterator() -> Iterator[TcpIterator]:
    try:
        it = TcpIterator()
    except FactUnavailable as exc:
        pytest.skip(str(exc))
    yield it
    it.close()


@pytest.fixture
def lab() -> Iterator[Lab]:
    with veth_lab() as built:
        yield built


def connect(lab: Lab, family: int, server_addr: str, client_addr: str) -> list[socket.socket]:
    """A connection from namespace a to a listener in b: [client, accepted, listener]."""
    listener = lab.sock(lab.b, family, socket.SOCK_STREAM)
    listener.bind((server_addr, 0))
    listener.listen()
    client = lab.sock(lab.a, socket.AF_INET6 if ":" in client_addr else socket.AF_INET, 1)
    client.settimeout(5)
    client.connect((client_addr, listener.getsockname()[1]))
    accepted, _ = listener.accept()
    return [client, accepted, listener]


def dump(lab: Lab, ns: str) -> dict[int, SocketRecord]:
    with open_sockdiag_in_netns(lab.path(ns)) as diag:
        return {
            r.cookie: r for f in FAMILIES for r in diag.dump(socket.IPPROTO_TCP, f, DUMPED_STATES)
        }


def settled(it: TcpIterator, lab: Lab, ns: str, known: dict[int, SocketRecord]) -> int:
    """Run the iterator until everything it reported so far (``known``, updated) equals a
    full dump (a delayed ACK may land between the two); the dump's length."""
    for _ in range(20):  # bounded: ~5 s
        records, count = it.read(lab.path(ns))
        known.update((r.cookie, r) for r in records)
        full = dump(lab, ns)
        if {c: view(r) for c, r in known.items() if c in full} == {
            c: view(r) for c, r in full.items()
        }:
            assert count == len(full)
            return count
        time.sleep(0.25)
    raise AssertionError("the iterator's view never matched sock_diag's")


def test_reports_what_sock_diag_reports_then_only_what_moved(iterator, lab):
    v4 = connect(lab, socket.AF_INET, B4, B4)
    v6 = connect(lab, socket.AF_INET6, B6, B6)
    mapped = connect(lab, socket.AF_INET6, "::", B4)  # a dual-stack listener, IPv4 client
    sockets = v4 + v6 + mapped
    try:
        for conn in (v4, v6, mapped):
            conn[0].sendall(b"x" * 20_000)
            assert conn[1].recv(1 << 16)
            conn[1].sendall(b"y" * 3_000)
        known: dict[int, SocketRecord] = {}
        assert settled(iterator, lab, lab.b, known) == 6  # 3 listeners + 3 accepted
        families = {(r.family, r.local_ip) for r in known.values() if r.state == 1}
        assert families == {(2, B4), (10, B6), (10, B4)}  # the mapped one shown as IPv4
        assert all(r.has_timestamps for r in known.values() if r.state == 1)
        time.sleep(0.3)  # delayed ACKs
        assert iterator.read(lab.path(lab.b)) == ([], 6)
        v6[0].sendall(b"z" * 100)
        assert v6[1].recv(1000)
        now = dict(known)
        settled(iterator, lab, lab.b, now)
        moved = {(r.local_ip, r.bytes_received - known[c].bytes_received)
                 for c, r in now.items() if view(r) != view(known[c])}  # fmt: skip
        assert moved == {(B6, 100)}
    finally:
        for s in sockets:
            s.close()


def test_each_run_walks_the_namespace_it_was_created_in(iterator, lab):
    conn = connect(lab, socket.AF_INET, B4, B4)
    try:
        mine = {c for c in dump(lab, lab.a)} | {c for c in dump(lab, lab.b)}
        client, _ = iterator.read(lab.path(lab.a))
        server, _ = iterator.read(lab.path(lab.b))
        host, _ = iterator.read()
        assert {(r.local_ip, r.state) for r in client} == {(A4, 1)}
        assert {(r.local_ip, r.state) for r in server} == {(B4, 1), (B4, 10)}
        assert not {r.cookie for r in host} & mine
    finally:
        for s in conn:
            s.close()


def test_counts_after_a_run_cut_short_and_of_one_and_no_socket(iterator, lab):
    """Each run counts for itself (by the iterator's session id): a run cut short leaves
    nothing behind, and a namespace with one socket, or none, is counted right."""

    def cut_short(ns: str) -> None:
        with pytest.raises(ParseError):  # the output ends in the middle of the walk
            parse_output(iterator.output(lab.path(ns), RECORD_SIZE + 1))

    conns = [connect(lab, socket.AF_INET, B4, B4) for _ in range(3)]
    try:
        cut_short(lab.a)
        assert iterator.read(lab.path(lab.b))[1] == 6
        cut_short(lab.a)
        for conn in conns:
            for s in conn:
                s.close()
        for _ in range(40):  # bounded: the closing sockets leave the tables
            if not dump(lab, lab.a) and not dump(lab, lab.b):
                break
            time.sleep(0.05)
        assert iterator.read(lab.path(lab.a)) == ([], 0)
        conns = [connect(lab, socket.AF_INET, B4, B4)]
        records, count = iterator.read(lab.path(lab.a))
        assert (len(records), count) == (1, 1)
    finally:
        for conn in conns:
            for s in conn:
                s.close()


def tick(space: NamespaceSockets) -> int:
    """One tick of the namespace reader; the bytes its deltas add (both directions)."""
    read = space.read_tcp()
    space.drain_destroyed(read)
    deltas, _ = space.tcp_deltas(read)
    return sum(d.tx_bytes + d.rx_bytes for _, d in deltas)


@pytest.mark.parametrize("with_iterator", [True, False], ids=["iterator", "dump"])
def test_a_reset_socket_still_held_by_its_process_counts_once(iterator, lab, with_iterator):
    """A reset takes the socket out of the kernel's tables while its process holds it: the
    reader forgets it, and its destroy event (at close) must not count it again."""
    chosen = iterator if with_iterator else None
    space = NamespaceSockets.open(0, lab.path(lab.a), chosen, iterate_from=0)
    assert space.iterating == with_iterator
    try:
        tick(space)  # the baseline
        client, accepted, listener = connect(lab, socket.AF_INET, B4, B4)
        client.sendall(b"x" * 5_000)
        assert accepted.recv(1 << 16)
        total = tick(space)
        accepted.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        accepted.close()  # RST: the client's socket goes to CLOSE, unhashed, still open
        for _ in range(20):
            if not dump(lab, lab.a):
                break
            time.sleep(0.05)
        total += tick(space)
        total += tick(space)  # the iterator asked for a full dump, which forgets it
        assert space.tcp.remembered == 0
        client.close()  # now its destroy event comes
        final = None
        for _ in range(20):
            read = space.read_tcp()
            space.drain_destroyed(read)
            deltas, closed = space.tcp_deltas(read)
            total += sum(d.tx_bytes + d.rx_bytes for _, d in deltas)
            if closed:
                final = closed[0].traffic
                break
            time.sleep(0.05)
        assert final is not None
        assert total == final.tx_bytes + final.rx_bytes
        listener.close()
    finally:
        space.close()


def test_lost_destroy_events_and_vanished_sockets_bring_a_full_dump(iterator, lab):
    space = NamespaceSockets.open(0, lab.path(lab.b), iterator, iterate_from=0)
    conns = [connect(lab, socket.AF_INET, B4, B4) for _ in range(3)]
    try:
        assert tick(space) == 0 and space.tcp.remembered == 3
        assert space.read_tcp().alive is None  # the iterator
        assert space.destroy is not None
        space.destroy.overflows += 1  # as when the kernel dropped events
        assert space.read_tcp().alive is not None
        # a socket that goes while its destroy event is lost: its count no longer adds up
        for s in conns[0]:
            s.close()
        for _ in range(20):
            if len(dump(lab, lab.b)) == 4:
                break
            time.sleep(0.05)
        space.destroy.drain()  # the event is lost
        tick(space)
        assert space.tcp.remembered == 3
        read = space.read_tcp()
        assert read.alive is not None and len(read.alive) == 4
        space.drain_destroyed(read)
        space.tcp_deltas(read)
        assert space.tcp.remembered == 2
        assert space.read_tcp().alive is None  # back on the iterator
    finally:
        for conn in conns:
            for s in conn:
                s.close()
        space.close()


def test_few_sockets_are_dumped_and_many_iterated(iterator, lab):
    """A run of the iterator costs more than a dump of a few sockets: a namespace uses it
    from ``iterate_from`` open sockets on, and goes back to dumps below half that."""
    space = NamespaceSockets.open(0, lab.path(lab.b), iterator, iterate_from=6)
    conns = [connect(lab, socket.AF_INET, B4, B4) for _ in range(2)]
    try:
        assert space.iterating  # the first run counts the sockets
        tick(space)
        assert not space.iterating  # 2 listeners, 2 accepted
        conns += [connect(lab, socket.AF_INET, B4, B4) for _ in range(2)]
        tick(space)
        assert space.iterating  # 8

        def close_until(left: int, n: int) -> None:
            for conn in conns[:n]:
                for s in conn:
                    s.close()
            for _ in range(20):  # the closed ones leave the tables
                if len(dump(lab, lab.b)) == left:
                    break
                time.sleep(0.05)
            tick(space)

        close_until(4, 2)
        assert space.iterating  # 4: under 6, but not under half of it
        close_until(2, 3)
        assert not space.iterating
    finally:
        for conn in conns:
            for s in conn:
                s.close()
        space.close()


def test_the_monitor_counts_the_same_tcp_with_the_iterator_as_with_dumps(lab):
    """End to end: two monitors in namespace a, one reading TCP with the iterator (even for
    a few sockets), one with dumps only, see the same connections, long-lived and
    short-lived: their TCP flows agree to the byte and the packet (the dump path's
    accuracy against the wire is what tests/lab/test_bandwidth_lab.py measures)."""
    from hostmedic.collectors.bandwidth import BandwidthMonitor, MonitorOptions

    def build(**chosen: object) -> BandwidthMonitor:
        options = MonitorOptions(capture=False, connect_tracer=False, containers=False)
        monitor = BandwidthMonitor(dataclasses.replace(options, **chosen))
        monitor.start()
        return monitor

    monitors = [
        run_in_netns(lab.path(lab.a), lambda: build(tcp_iterator_from=0)),
        run_in_netns(lab.path(lab.a), lambda: build(tcp_iterator=False)),
    ]
    client, accepted, listener = connect(lab, socket.AF_INET, B4, B4)

    def tick() -> None:
        time.sleep(0.3)  # delayed ACKs land before either monitor reads
        for monitor in monitors:
            run_in_netns(lab.path(lab.a), monitor.sample)

    try:
        assert [m.own.iterating for m in monitors] == [True, False]
        for _ in range(3):  # a long-lived connection, bytes in both directions every tick
            client.sendall(b"x" * 200_000)
            got = 0
            while got < 200_000:
                got += len(accepted.recv(1 << 16))
            accepted.sendall(b"y" * 5_000)
            assert client.recv(1 << 16)
            tick()
        bulk_tcp(lab, socket.AF_INET6, B6)  # born and closed between two ticks
        tick()
        flows = [
            {k: s.cumulative for k, s in m.ledger.flows.items() if k.protocol == "tcp"}
            for m in monitors
            if m.ledger is not None
        ]
    finally:
        for monitor in monitors:
            monitor.close()
        for s in (client, accepted, listener):
            s.close()
    assert flows[0] == flows[1]
    assert {k.remote_ip for k in flows[0]} == {B4, B6}
    assert sum(t.tx_bytes for t in flows[0].values()) > 600_000 + 500_000


def test_owners_of_sockets_gone_unseen_are_forgotten_and_open_ones_kept(lab, monkeypatch):
    """The owner cache is pruned when it holds more entries than there are open sockets
    by the slack (destroy events were lost): the open sockets' owners stay."""
    from hostmedic.collectors import bandwidth

    monkeypatch.setattr(bandwidth, "CACHE_SLACK", 2)
    options = bandwidth.MonitorOptions(capture=False, connect_tracer=False, containers=False)

    def build() -> bandwidth.BandwidthMonitor:
        monitor = bandwidth.BandwidthMonitor(options)
        monitor.start()
        return monitor

    monitor = run_in_netns(lab.path(lab.a), build)
    conn = connect(lab, socket.AF_INET, B4, B4)
    try:
        conn[0].sendall(b"x" * 1000)
        run_in_netns(lab.path(lab.a), monitor.sample)
        owned = dict(monitor._cookie_owner)
        assert len(owned) == 1  # the client socket, this process
        monitor._cookie_owner.update({c: 1 for c in range(1, 6)})  # gone, events lost
        run_in_netns(lab.path(lab.a), monitor.sample)
        assert monitor._cookie_owner == owned
    finally:
        monitor.close()
        for s in conn:
            s.close()

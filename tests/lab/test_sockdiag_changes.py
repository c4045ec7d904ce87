"""The changed-only dump: idle sockets build no record, moved ones do, and the fingerprint
map always lists every live socket (real loopback sockets)."""

import socket

import pytest

from hostmedic.collectors.sockdiag import SockDiag

pytestmark = pytest.mark.lab


def test_only_new_or_moved_sockets_are_returned():
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    mine = {client.getsockname()[1], port}
    try:
        with SockDiag() as diag:

            def dump(previous):
                current: dict = {}
                records = diag.dump(
                    socket.IPPROTO_TCP, socket.AF_INET, 1 << 1, changes=(previous, current)
                )
                return [r for r in records if r.local_port in mine], current

            first, fp1 = dump({})
            assert len(first) == 2  # both ends are new
            idle, fp2 = dump(fp1)
            assert idle == []
            assert {r.cookie for r in first} <= set(fp2)
            client.sendall(b"x" * 1000)
            assert accepted.recv(2000)
            moved, _ = dump(fp2)
            assert sorted(r.local_port for r in moved) == sorted(mine)
            assert max(r.bytes_sent or 0 for r in moved) == 1000
    finally:
        for s in (client, accepted, server):
            s.close()


def test_the_validating_slow_path_also_skips_unchanged_sockets(monkeypatch):
    from hostmedic.collectors import sockdiag

    # a length whose layout could not be learned is always parsed by the slow path
    monkeypatch.setattr(sockdiag, "_LAYOUTS", _AlwaysSlow())
    test_only_new_or_moved_sockets_are_returned()


class _AlwaysSlow(dict):
    def get(self, key, default=None):
        return None

    def __contains__(self, key):
        return True

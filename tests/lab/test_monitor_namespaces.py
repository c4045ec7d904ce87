"""The connect tracer sees the whole host; the monitor keeps only connections of its own
network namespace and of the containers attached to it (others never send it a destroy
event, so they would pile up). An unattached namespace is not a container of this host."""

import socket
import subprocess
import sys
import uuid

import pytest

from hostmedic.collectors.bandwidth import BandwidthMonitor, MonitorOptions

pytestmark = pytest.mark.lab

CONNECT_ONCE = (
    "import socket; s = socket.create_server(('127.0.0.1', 0)); "
    "c = socket.create_connection(s.getsockname()); a, _ = s.accept(); "
    "print(c.getsockname()[1], s.getsockname()[1])"
)


def test_connections_of_other_namespaces_are_ignored():
    ns = f"hmG-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    monitor = BandwidthMonitor(MonitorOptions(capture=False))
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        monitor.start()
        if monitor._tracer is None:
            pytest.skip("connect tracer unavailable here")
        theirs = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c", CONNECT_ONCE],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        their_port = int(theirs.stdout.split()[0])
        server = socket.create_server(("127.0.0.1", 0))
        mine = socket.create_connection(server.getsockname())
        my_port = mine.getsockname()[1]
        monitor.sample()
        ports = {local_port for _, _, local_port, _, _ in monitor._connect_owner}
        assert my_port in ports
        assert their_port not in ports
        mine.close()
        server.close()
    finally:
        monitor.close()
        subprocess.run(["ip", "netns", "del", ns], check=False)

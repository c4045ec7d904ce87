"""The gateway ping (``--ping-gateway``), inside a namespace pair made for the test: the
server namespace's default gateway is a lab address (198.18.77.1) in a second namespace,
where an nftables ``numgen random`` rule drops half of the echo requests (there is no tc
netem on the test machine). The host's own gateway is never pinged. Without the drop
rule the same run must raise nothing.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess

import pytest

from tests.lab.health_world import diagnose, failed, sh

pytestmark = pytest.mark.lab
GATEWAY = "198.18.77.1"
DROP_HALF = """
table inet hmh_ping {
  chain input {
    type filter hook input priority 0; policy accept;
    icmp type echo-request numgen random mod 100 < 50 drop
  }
}
"""


@pytest.fixture
def namespaces():
    token = secrets.token_hex(2)
    srv, gw = f"hmH-{token}-srv", f"hmH-{token}-gw"
    made = []
    try:
        for ns in (srv, gw):
            sh(["ip", "netns", "add", ns])
            made.append(ns)
        sh(
            [
                "ip",
                "link",
                "add",
                f"hmH{token}s",
                "netns",
                srv,
                "type",
                "veth",
                "peer",
                "name",
                f"hmH{token}g",
                "netns",
                gw,
            ]
        )
        for ns, dev, addr in (
            (srv, f"hmH{token}s", "198.18.77.2/24"),
            (gw, f"hmH{token}g", f"{GATEWAY}/24"),
        ):
            sh(["ip", "-n", ns, "addr", "add", addr, "dev", dev])
            sh(["ip", "-n", ns, "link", "set", dev, "up"])
            sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        sh(["ip", "-n", srv, "route", "add", "default", "via", GATEWAY])
        yield srv, gw
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


@pytest.mark.skipif(
    shutil.which("nft") is None or shutil.which("ping") is None,
    reason="needs nftables and iputils-ping",
)
def test_gateway_loss_is_found_and_a_clean_link_is_quiet(namespaces):
    srv, gw = namespaces
    route = sh(["ip", "-n", srv, "route", "show", "default"])
    assert f"via {GATEWAY} " in route  # the only gateway this test can reach
    clean = diagnose("--duration", "1", "--ping-gateway", netns=srv)
    ping = next(f for f in clean["findings"] if f["rule_id"] == "health.gateway_ping")
    assert ping["status"] == "passed"

    sh(["ip", "netns", "exec", gw, "nft", "-f", "-"], input=DROP_HALF)
    lossy = diagnose("--duration", "1", "--ping-gateway", netns=srv)
    rows = failed(lossy, "health.gateway_ping")
    assert len(rows) == 1
    p = rows[0]["params"]
    assert (p["gateway"], p["sent"]) == (GATEWAY, 25) and p["loss_percent"] >= 20
    assert rows[0]["severity"] == "critical"
    assert rows[0]["evidence"][0]["source"].endswith(f" {GATEWAY}")
    assert "packet loss" in rows[0]["evidence"][0]["excerpt"]


def test_the_gateway_is_never_pinged_unless_asked(namespaces):
    srv, _ = namespaces
    doc = diagnose("--duration", "0.5", netns=srv)
    ping = next(f for f in doc["findings"] if f["rule_id"] == "health.gateway_ping")
    assert ping["status"] == "skipped" and ping["skip_reason"] == "reason.health.ping_opt_in"

"""Diagnosis is read-only: files, firewall rules and processes are the same after
``hostmedic diagnose`` (every registered category) as before.

The world is a lab namespace (``hmV-<token>-srv``) with an nftables table ``inet hmVro``
and iptables rules, a private copy of /etc bind-mounted over /etc in a fresh mount
namespace, a planted tree for ``--root`` (used when the CLI has that option), and a fresh
PID namespace whose processes are exactly the ones the probe started. The probe
(readonly_probe.py) snapshots everything, runs diagnose, snapshots again.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab.netlab import HOSTMEDIC, Lab, sweep_stale

pytestmark = pytest.mark.lab
PROBE = Path(__file__).with_name("readonly_probe.py")
RULES = """\
table inet hmVro {
  set admins { type ipv4_addr; elements = { 198.51.100.7 } }
  chain input {
    type filter hook input priority 0; policy drop;
    ct state established,related accept
    iif "lo" accept
    tcp dport { 21, 22 } accept
    ip saddr @admins tcp dport 8080 accept
  }
}
"""


@pytest.fixture
def lab() -> Iterator[Lab]:
    sweep_stale("hmV-")  # namespaces a SIGKILLed run left behind
    with Lab(peers_wanted=1, prefix="hmV-") as built:  # destroyed even on failure
        yield built


def plant_tree(root: Path) -> None:
    """Another machine's disk, as --root would see it: an FTP server and startup items."""
    (root / "etc" / "cron.d").mkdir(parents=True)
    (root / "usr" / "sbin").mkdir(parents=True)
    (root / "var" / "log").mkdir(parents=True)
    (root / "usr" / "sbin" / "vsftpd").write_bytes(b"\x7fELF")
    (root / "etc" / "vsftpd.conf").write_text(
        "listen=YES\npasv_min_port=30000\npasv_max_port=30010\n"
    )
    (root / "etc" / "crontab").write_text("*/5 * * * * root /tmp/.x/miner\n")
    (root / "etc" / "ld.so.preload").write_text("/usr/lib/libhide.so\n")
    (root / "var" / "log" / "vsftpd.log").write_text(
        'Fri Jan 19 12:20:33 2007 [pid 27202] [bob] FAIL LOGIN: Client "203.0.113.50"\n'
    )


def snapshots(lab: Lab, tmp_path: Path, hostmedic: Path = HOSTMEDIC) -> dict:
    """Build the world in the lab, run the probe with ``hostmedic``, return its snapshots."""
    subprocess.run(
        ["ip", "netns", "exec", lab.srv, "nft", "-f", "-"], input=RULES, text=True, check=True
    )
    lab.exec(lab.srv, ["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "3306", "-j", "DROP"])
    etc = tmp_path / "etc"
    subprocess.run(["cp", "-a", "/etc", str(etc)], check=True)
    tree = tmp_path / "tree"
    plant_tree(tree)
    out = tmp_path / "snapshots.json"
    try:
        subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                lab.srv,
                "unshare",
                "--mount",
                "--pid",
                "--fork",
                "--mount-proc",
                sys.executable,
                str(PROBE),
                str(etc),
                str(tree),
                str(hostmedic),
                str(out),
            ],
            check=True,
            timeout=300,
        )
        return json.loads(out.read_text())
    finally:
        shutil.rmtree(etc, ignore_errors=True)  # a copy of /etc/shadow must not linger


def test_diagnose_changes_no_file_rule_or_process(lab: Lab, tmp_path: Path) -> None:
    doc = snapshots(lab, tmp_path)
    usage = subprocess.run([str(HOSTMEDIC), "diagnose", "--help"], capture_output=True, text=True)
    assert ("root" in doc["runs"]) == ("--root" in usage.stdout)  # the offline path ran too
    assert all(code in (0, 1, 2) for code, _ in doc["runs"].values()), doc["runs"]
    before, after = doc["before"], doc["after"]
    assert len(before["processes"]) >= 2 and "hmVro" in before["nft"]
    assert "3306" in before["iptables"] and before["etc"] and before["tree"]
    for part in before:
        assert after[part] == before[part], f"diagnose changed {part}"


_MEDDLER = """#!/usr/bin/env python3
# Not hostmedic: a stand-in that changes one thing of each kind, to prove the probe sees it.
import os, signal, subprocess, sys
if "--help" in sys.argv:
    sys.exit(0)
with open("/etc/hostname", "a") as f:
    f.write("changed\\n")
subprocess.run(["nft", "add", "table", "inet", "hmVro2"], check=True)
for pid in os.listdir("/proc"):
    if pid.isdigit() and open(f"/proc/{pid}/cmdline", "rb").read() == b"sleep\\x00600\\x00":
        os.kill(int(pid), signal.SIGKILL)
        break
"""


def test_the_probe_sees_a_change_of_each_kind(lab: Lab, tmp_path: Path) -> None:
    meddler = tmp_path / "meddler"
    meddler.write_text(_MEDDLER)
    meddler.chmod(0o755)
    doc = snapshots(lab, tmp_path, hostmedic=meddler)
    before, after = doc["before"], doc["after"]
    assert doc["runs"]["live"][0] == 0, doc["runs"]
    assert [p for p in before if after[p] != before[p]] == ["etc", "nft", "processes"]

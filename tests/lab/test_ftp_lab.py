"""The FTP checks against a real vsftpd and a real nftables firewall, in a namespace lab.

vsftpd runs inside the lab's server namespace (``hmV-<token>-srv``) on 198.18.1.1:21 with
this test's own configuration (temporary directories, ``background=NO``, killed by PID);
the firewall is an nftables table ``inet hmVftp`` in that namespace; clients connect from
the peer namespace. ``hostmedic diagnose --only ftp --json`` runs inside the server
namespace, as an operator would on the server. Each planted problem is first shown to be
real (a passive transfer that times out, a third client that gets 421), then asserted as a
finding with its evidence and severity; the healthy world must raise nothing.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab.netlab import HOSTMEDIC, Lab, sweep_stale

pytestmark = pytest.mark.lab

SERVER_IP = "198.18.1.1"
PASSIVE = (30000, 30100)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    sweep_stale("hmV-")  # namespaces a SIGKILLed run left behind
    with Lab(peers_wanted=1, prefix="hmV-") as built:  # destroyed even on failure
        yield built


@pytest.fixture(scope="module")
def vsftpd(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A vsftpd with anonymous access, a passive range and a limit of two clients."""
    if not Path("/usr/sbin/vsftpd").exists():
        pytest.skip("vsftpd is not installed (scripts/test.sh installs it)")
    here = tmp_path_factory.mktemp("vsftpd")
    (here / "empty").mkdir()
    (here / "anon").mkdir()
    (here / "anon" / "file.txt").write_text("hello\n")
    config = here / "vsftpd.conf"
    config.write_text(
        textwrap.dedent(
            f"""\
            listen=YES
            listen_address={SERVER_IP}
            background=NO
            anonymous_enable=YES
            no_anon_password=YES
            anon_root={here / "anon"}
            local_enable=NO
            secure_chroot_dir={here / "empty"}
            seccomp_sandbox=NO
            pasv_enable=YES
            pasv_min_port={PASSIVE[0]}
            pasv_max_port={PASSIVE[1]}
            pasv_address={SERVER_IP}
            connect_from_port_20=YES
            max_clients=2
            xferlog_enable=YES
            vsftpd_log_file={here / "vsftpd.log"}
            """
        )
    )
    proc = lab.spawn(lab.srv, ["/usr/sbin/vsftpd", str(config)])
    try:
        lab.wait_listening(lab.srv, 21)
        yield config
    finally:
        lab.kill(proc)


def firewall(lab: Lab, passive: str) -> None:
    """Replace the lab's table (in one transaction): drop by default, allow FTP control
    and ``passive``."""
    rules = textwrap.dedent(
        f"""\
        table inet hmVftp
        delete table inet hmVftp
        table inet hmVftp {{
          chain input {{
            type filter hook input priority 0; policy drop;
            ct state established,related accept
            iif "lo" accept
            tcp dport 21 accept
            {passive}
          }}
        }}
        """
    )
    subprocess.run(
        ["ip", "netns", "exec", lab.srv, "nft", "-f", "-"], input=rules, text=True, check=True
    )


def diagnose(lab: Lab) -> list[dict]:
    done = subprocess.run(
        ["ip", "netns", "exec", lab.srv, str(HOSTMEDIC), "diagnose", "--only", "ftp", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    doc = json.loads(done.stdout)
    assert doc["exit_code"] == done.returncode, done.stderr
    return [f for f in doc["findings"] if f["status"] == "failed"]


def mine(findings: list[dict], config: Path) -> list[dict]:
    """Findings about the lab's vsftpd (the machine's own, stopped vsftpd is not ours)."""
    return [f for f in findings if f["params"].get("config") == str(config)]


def peer_listing(lab: Lab, timeout_s: float = 3.0) -> str:
    """A real passive-mode listing from the peer namespace: 'ok' or the error."""
    script = (
        "import ftplib,sys\n"
        f"f = ftplib.FTP(timeout={timeout_s}); f.connect('{SERVER_IP}', 21); f.login()\n"
        "try:\n    print('ok' if f.nlst() == ['file.txt'] else 'wrong listing')\n"
        "except Exception as e:\n    print(type(e).__name__)\n"
    )
    return lab.exec(lab.peer(1).ns, ["python3", "-c", script], timeout=30).strip()


def test_closed_passive_range_is_found(lab: Lab, vsftpd: Path) -> None:
    firewall(lab, passive="")
    assert peer_listing(lab) == "TimeoutError"  # the world is really broken
    findings = mine(diagnose(lab), vsftpd)
    (finding,) = [f for f in findings if f["rule_id"] == "ftp.passive_ports"]
    assert finding["severity"] == "critical"
    assert finding["params"]["ports"] == "30000-30100"
    assert (finding["params"]["closed"], finding["params"]["total"]) == (101, 101)
    server, rule = finding["evidence"][:2]
    assert server["source"] == str(vsftpd)
    assert f"pasv_min_port=30000 ({vsftpd}:" in server["excerpt"]
    assert "vsftpd pids=" in server["excerpt"] and "198.18.1.1:21" in server["excerpt"]
    assert "inet hmVftp input: policy drop" in rule["excerpt"]
    assert [f["rule_id"] for f in findings] == ["ftp.passive_ports"]


def test_half_open_passive_range_names_the_closed_half(lab: Lab, vsftpd: Path) -> None:
    firewall(lab, passive="tcp dport 30000-30049 accept")
    (finding,) = [f for f in mine(diagnose(lab), vsftpd) if f["rule_id"] == "ftp.passive_ports"]
    assert (finding["params"]["ports"], finding["params"]["closed"]) == ("30050-30100", 51)


def test_healthy_server_raises_nothing(lab: Lab, vsftpd: Path) -> None:
    firewall(lab, passive=f"tcp dport {PASSIVE[0]}-{PASSIVE[1]} accept")
    assert peer_listing(lab) == "ok"
    findings = diagnose(lab)
    assert mine(findings, vsftpd) == []
    assert all(f["severity"] == "info" for f in findings), findings  # the stopped /etc/vsftpd.conf


# Runs after the healthy test: the 421 it provokes stays in vsftpd's log.
def test_max_clients_reached_with_real_sessions_is_the_421_finding(lab: Lab, vsftpd: Path) -> None:
    firewall(lab, passive=f"tcp dport {PASSIVE[0]}-{PASSIVE[1]} accept")
    holder = subprocess.Popen(
        ["ip", "netns", "exec", lab.peer(1).ns, "python3", "-c", _HOLD_TWO_SESSIONS],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        banners = [holder.stdout.readline().strip() for _ in range(3)]  # type: ignore[union-attr]
        assert banners[:2] == ["220 (vsFTPd 3.0.3)"] * 2
        assert banners[2].startswith("421 There are too many connected users")
        findings = mine(diagnose(lab), vsftpd)
    finally:
        holder.communicate("\n", timeout=10)
    full = [f for f in findings if f["title_key"] == "finding.ftp.max_clients.full.title"]
    assert len(full) == 1 and full[0]["severity"] == "critical"
    assert (full[0]["params"]["sessions"], full[0]["params"]["limit"]) == (2, 2)
    assert full[0]["evidence"][1]["excerpt"] == "sessions=2 by client: 198.18.1.2×2"
    assert "max_clients=2" in full[0]["evidence"][0]["excerpt"]
    refused = [f for f in findings if f["title_key"] == "finding.ftp.max_clients.refused.title"]
    assert refused and refused[0]["params"]["refused"] >= 1  # vsftpd logged the 421
    assert "retry" in full[0]["remedy"]  # the seed's client-side advice


_HOLD_TWO_SESSIONS = f"""
import socket, sys
held = []
for _ in range(3):
    s = socket.create_connection(("{SERVER_IP}", 21), timeout=5)
    held.append(s)
    print(s.recv(200).decode().strip(), flush=True)
sys.stdin.readline()
"""

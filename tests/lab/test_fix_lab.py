"""Every ``hostmedic fix`` action for real, in a throwaway world, and undone.

Processes are the test's own; block-ip runs inside the lab's server namespace
(``hmV-<token>-srv``) and a real TCP connection from the peer namespace proves the block
and its undo; lock-account works on a throwaway ``hmtest…`` user removed in ``finally``;
startup items are a crontab and a unit in a temporary ``--root`` tree (systemd is not PID
1 on the test machine: ``systemctl --root`` edits the files, the live systemctl path is
unverified here); quarantine checks bytes, mode, owner, times, extended attributes and
the immutable flag, on one filesystem and across two (/dev/shm). The journal is proven to
survive a SIGKILL between "started" and "done" with a ``usermod`` that hangs.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab.netlab import HOSTMEDIC, Lab, sweep_stale

pytestmark = pytest.mark.lab


def fix(*args: str, ns: str | None = None, env: dict[str, str] | None = None) -> dict:
    """Run ``hostmedic fix … --yes --json`` and return its document."""
    prefix = ["ip", "netns", "exec", ns] if ns else []
    done = subprocess.run(
        [*prefix, str(HOSTMEDIC), "fix", *args, "--yes", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def undo(entry_id: str, state: Path, ns: str | None = None, **kw: object) -> dict:
    return fix("--undo", entry_id, "--state-dir", str(state), ns=ns, **kw)  # type: ignore[arg-type]


def shadow_field(user: str) -> str:
    for line in Path("/etc/shadow").read_text().splitlines():
        if line.split(":")[0] == user:
            return line.split(":")[1]
    raise AssertionError(f"{user} not in /etc/shadow")


# --- kill ---------------------------------------------------------------------------------


def test_kill_a_process_we_started(tmp_path: Path) -> None:
    proc = subprocess.Popen(["sleep", "600"])
    try:
        doc = fix("kill", str(proc.pid), "--state-dir", str(tmp_path))
        assert proc.wait(5) == -signal.SIGTERM
        entry = doc["entry"]
        assert (entry["state"], entry["reversible"]) == ("done", False)
        assert entry["result"] == {"exited": True, "signal": "TERM"}
        assert entry["before"]["cmdline"] == ["sleep", "600"]
        refused = subprocess.run(
            [str(HOSTMEDIC), "fix", "--undo", entry["id"], "--state-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert refused.returncode == 64 and "sleep 600" in refused.stderr
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_process_that_ignores_sigterm_needs_kill(tmp_path: Path) -> None:
    stubborn = "import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(600)"
    proc = subprocess.Popen([sys.executable, "-c", stubborn], stdout=subprocess.PIPE)
    try:
        proc.stdout.readline()  # type: ignore[union-attr]
        soft = fix("kill", str(proc.pid), "--wait", "0.5", "--state-dir", str(tmp_path))
        assert soft["entry"]["result"]["exited"] is False and proc.poll() is None
        hard = fix("kill", str(proc.pid), "--signal", "KILL", "--state-dir", str(tmp_path))
        assert hard["entry"]["result"]["exited"] is True
        assert proc.wait(5) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()


def test_stop_unit_is_refused_without_systemd(tmp_path: Path) -> None:
    if os.path.isdir("/run/systemd/system"):
        pytest.skip("systemd runs here: stop-unit would act on a real unit")
    done = subprocess.run(
        [str(HOSTMEDIC), "fix", "stop-unit", "cron", "--yes", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 64 and "systemd is not running" in done.stderr


# --- block-ip -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    sweep_stale("hmV-")  # namespaces a SIGKILLed run left behind
    with Lab(peers_wanted=1, prefix="hmV-") as built:  # destroyed even on failure
        yield built


def _connects(lab: Lab, address: str, port: int) -> bool:
    script = (
        "import socket\n"
        f"try:\n    socket.create_connection(('{address}', {port}), timeout=1.5).close(); print('ok')\n"
        "except OSError as e:\n    print(type(e).__name__)\n"
    )
    return lab.exec(lab.peer(1).ns, [sys.executable, "-c", script]).strip() == "ok"


def test_block_ip_drops_a_real_connection_and_undo_lets_it_through(
    lab: Lab, tmp_path: Path
) -> None:
    peer = lab.peer(1)
    lab.spawn(lab.srv, [sys.executable, "-m", "http.server", "-b", peer.srv_ip4, "8099"])
    lab.wait_listening(lab.srv, 8099)
    assert _connects(lab, peer.srv_ip4, 8099)
    doc = fix("block-ip", peer.peer_ip4, "--state-dir", str(tmp_path), ns=lab.srv)
    assert doc["entry"]["before"]["table_existed"] is False
    assert not _connects(lab, peer.srv_ip4, 8099)
    ruleset = lab.exec(lab.srv, ["nft", "list", "set", "inet", "hostmedic", "blocked4"])
    assert peer.peer_ip4 in ruleset
    undone = undo(doc["entry"]["id"], tmp_path, ns=lab.srv)
    assert undone["entry"]["result"] == {"element_deleted": True, "table_deleted": True}
    assert _connects(lab, peer.srv_ip4, 8099)
    assert "hostmedic" not in lab.exec(lab.srv, ["nft", "list", "tables"])


def test_block_ip_refuses_this_machines_address(lab: Lab, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            lab.srv,
            str(HOSTMEDIC),
            "fix",
            "block-ip",
            lab.peer(1).srv_ip4,
            "--yes",
            "--state-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 64 and "address of this machine" in done.stderr


# --- lock-account -------------------------------------------------------------------------


@pytest.fixture
def throwaway_user() -> Iterator[str]:
    name = f"hmtest{secrets.token_hex(3)}"
    subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", name], check=True)
    try:
        subprocess.run(
            ["chpasswd"], input=f"{name}:Lab-Only-{secrets.token_hex(8)}", text=True, check=True
        )
        yield name
    finally:
        subprocess.run(["userdel", name], check=False)


def test_lock_and_unlock_an_account(throwaway_user: str, tmp_path: Path) -> None:
    hashed = shadow_field(throwaway_user)
    doc = fix("lock-account", throwaway_user, "--state-dir", str(tmp_path))
    assert shadow_field(throwaway_user) == "!" + hashed
    undo(doc["entry"]["id"], tmp_path)
    assert shadow_field(throwaway_user) == hashed


_HANGING_USERMOD = """#!/bin/sh
# Acts (or not), then tells the test and hangs: hostmedic is SIGKILLed meanwhile.
{act}
touch "{ready}"
exec sleep 600
"""


@pytest.mark.parametrize(
    "acted", [True, False], ids=["killed-after-acting", "killed-before-acting"]
)
def test_the_journal_survives_a_crash_mid_action(
    throwaway_user: str, tmp_path: Path, acted: bool
) -> None:
    hashed = shadow_field(throwaway_user)
    fake = tmp_path / "bin"
    fake.mkdir()
    ready = tmp_path / "ready"
    act = '/usr/sbin/usermod "$@"' if acted else ": not acting"
    (fake / "usermod").write_text(_HANGING_USERMOD.format(act=act, ready=ready))
    (fake / "usermod").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    state = tmp_path / "state"
    run = subprocess.Popen(
        [str(HOSTMEDIC), "fix", "lock-account", throwaway_user, "--yes", "--state-dir", str(state)],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert time.monotonic() < deadline and run.poll() is None, "usermod never ran"
            time.sleep(0.05)
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # hostmedic and the hanging usermod: the crash
        run.wait(5)
    listing = json.loads(
        subprocess.run(
            [str(HOSTMEDIC), "fix", "--list", "--json", "--state-dir", str(state)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    (entry,) = listing["entries"]
    assert entry["state"] == "interrupted" and [e["event"] for e in entry["events"]] == ["started"]
    assert shadow_field(throwaway_user) == ("!" + hashed if acted else hashed)
    doc = undo(entry["id"], state)
    assert doc["entry"]["state"] == "undone"
    assert doc["entry"]["result"] == {"unlocked": acted}
    assert shadow_field(throwaway_user) == hashed


# --- disable-startup ----------------------------------------------------------------------

UNIT = "[Unit]\nDescription=miner\n[Service]\nExecStart=/tmp/.x/miner\n[Install]\nWantedBy=multi-user.target\nAlias=hmvalias.service\n"


def _links(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): os.readlink(p)
        for p in (root / "etc" / "systemd" / "system").rglob("*")
        if p.is_symlink()
    }


def test_disable_and_restore_a_unit_and_a_cron_line(tmp_path: Path) -> None:
    root, state = tmp_path / "root", tmp_path / "state"
    units = root / "etc" / "systemd" / "system"
    units.mkdir(parents=True)
    (units / "hmvminer.service").write_text(UNIT)
    subprocess.run(
        ["systemctl", f"--root={root}", "enable", "hmvminer.service"],
        capture_output=True,
        check=True,
    )
    enabled = _links(root)
    assert len(enabled) == 2  # the .wants link and the alias
    crontab = root / "etc" / "crontab"
    original = b"SHELL=/bin/sh\n*/5 * * * * root /tmp/.x/miner\n@reboot root /usr/bin/true\n"
    crontab.write_bytes(original)
    os.chown(crontab, 0, 0)
    crontab.chmod(0o600)
    base = ("--root", str(root), "--state-dir", str(state))
    unit_doc = fix("disable-startup", "hmvminer.service", *base)
    assert _links(root) == {}
    line_doc = fix("disable-startup", "/etc/crontab:2", *base)
    assert crontab.read_bytes().split(b"\n")[1].startswith(b"#hostmedic-disabled ")
    undo(unit_doc["entry"]["id"], state)
    undo(line_doc["entry"]["id"], state)
    assert _links(root) == enabled
    assert crontab.read_bytes() == original
    assert stat.S_IMODE(crontab.stat().st_mode) == 0o600


# --- quarantine ---------------------------------------------------------------------------


def _snapshot(path: Path) -> tuple:
    fd = os.open(path, os.O_RDONLY | os.O_NOATIME)  # reading must not move the atime we compare
    with os.fdopen(fd, "rb") as f:
        data = f.read()
    st = path.stat()
    return (
        data,
        stat.S_IMODE(st.st_mode),
        st.st_uid,
        st.st_gid,
        st.st_mtime_ns,
        st.st_atime_ns,
        os.getxattr(path, "user.planted"),
    )


@pytest.mark.parametrize("where", ["same-filesystem", "dev-shm"])
def test_quarantine_and_restore_keep_bytes_and_metadata(tmp_path: Path, where: str) -> None:
    folder = tmp_path if where == "same-filesystem" else Path("/dev/shm")
    trojan = folder / f"hmV-.sshd-{secrets.token_hex(3)}"
    try:
        trojan.write_bytes(b"\x7fELF fake trojan\n")
        os.chown(trojan, 1234, 2345)
        trojan.chmod(0o4755)
        os.setxattr(trojan, "user.planted", b"by the test")
        os.utime(trojan, ns=(1_500_000_000_000_000_000, 1_400_000_000_000_000_000))
        immutable = where == "same-filesystem"  # tmpfs has no inode flags
        if immutable:
            subprocess.run(["chattr", "+i", str(trojan)], check=True)
        before = _snapshot(trojan)
        doc = fix("quarantine", str(trojan), "--state-dir", str(tmp_path / "state"))
        held = Path(doc["entry"]["result"]["quarantined_to"])
        assert not trojan.exists() and stat.S_IMODE(held.stat().st_mode) == 0
        assert doc["entry"]["before"]["sha256"] and doc["entry"]["before"]["path"] == str(trojan)
        undo(doc["entry"]["id"], tmp_path / "state")
        assert _snapshot(trojan) == before
        if immutable:
            assert (
                "i"
                in subprocess.run(
                    ["lsattr", str(trojan)], capture_output=True, text=True
                ).stdout.split()[0]
            )
        assert not held.exists()
    finally:
        with contextlib.suppress(FileNotFoundError, subprocess.CalledProcessError):
            subprocess.run(["chattr", "-i", str(trojan)], capture_output=True, check=False)
            trojan.unlink()

"""Compromise checks against artifacts planted for real on this machine (root only):
a throwaway login account, a process running from /tmp whose binary was deleted, Redis
without a password (and one pointed at authorized_keys), MariaDB root without a
password, a Jenkins-like console, and processes hidden by a readdir hook or a mount over
/proc/<pid>. Each has a healthy counterpart that must raise nothing. Every server runs
on 127.0.0.1 on a free port, and everything planted is removed in ``finally``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

PREFIX = "hmtest"


def diagnose(env: dict[str, str] | None = None) -> dict:
    """``hostmedic diagnose --only security --json`` as an operator runs it."""
    result = subprocess.run(
        [sys.executable, "-m", "hostmedic", "diagnose", "--only", "security", "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "LANG": "C.UTF-8", **(env or {})},
        timeout=120,
        check=False,
    )
    assert "Traceback" not in result.stderr
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == result.returncode and not doc.get("internal_errors")
    return doc


def failed(doc: dict, rule_id: str) -> list[dict]:
    return [f for f in doc["findings"] if f["rule_id"] == rule_id and f["status"] == "failed"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"server exited with {proc.returncode}"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(port)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def servers() -> Iterator[list[subprocess.Popen]]:
    """Servers the test starts; every one is stopped by its own PID afterwards."""
    started: list[subprocess.Popen] = []
    try:
        yield started
    finally:
        for proc in started:
            stop(proc)


def start(
    servers: list[subprocess.Popen], command: list[str], port: int, **kwargs
) -> subprocess.Popen:
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
    servers.append(proc)
    wait_port(port, proc)
    return proc


# --- accounts ---------------------------------------------------------------------------


def test_new_login_account_found_and_a_new_system_account_not():
    login, system = f"{PREFIX}login", f"{PREFIX}sys"
    try:
        subprocess.run(
            ["useradd", "-m", "-s", "/bin/bash", "-p", "$6$hmtest$notarealhash", login], check=True
        )
        subprocess.run(["useradd", "-r", "-s", "/usr/sbin/nologin", system], check=True)
        doc = diagnose()
    finally:
        for user in (login, system):
            subprocess.run(["userdel", "-r", user], capture_output=True, check=False)
    found = {f["params"]["user"]: f for f in failed(doc, "security.new_account")}
    assert system not in found
    finding = found[login]
    assert finding["severity"] == "warning"
    source, excerpt = finding["evidence"][0]["source"], finding["evidence"][0]["excerpt"]
    assert source.startswith("/etc/passwd:") and excerpt.startswith(f"{login}:x:")
    assert "password usable" in finding["evidence"][1]["excerpt"]


# --- processes --------------------------------------------------------------------------


def test_deleted_binary_running_from_tmp(tmp_path, servers):
    payload = tmp_path / "kworkerds"
    shutil.copy("/bin/sleep", payload)
    planted = subprocess.Popen([str(payload), "300"])
    servers.append(planted)
    normal = subprocess.Popen(["/bin/sleep", "300"])
    servers.append(normal)
    time.sleep(0.1)
    payload.unlink()
    doc = diagnose()
    by_pid = {f["params"].get("pid"): f for f in failed(doc, "security.suspicious_process")}
    named = {
        int(p)
        for f in doc["findings"]
        for p in re.findall(r"\d+", str(f["params"].get("pids", "")))
    }
    assert normal.pid not in by_pid and normal.pid not in named
    finding = by_pid[planted.pid]
    assert finding["severity"] == "critical"
    assert {c["key"] for c in finding["clues"]} == {
        "clue.exe_deleted",
        "clue.exe_in_temp",
        "clue.imitates_kernel_thread",
    }
    assert f"exe={payload} (deleted)" in finding["evidence"][0]["excerpt"]
    assert finding["evidence"][0]["source"] == f"/proc/{planted.pid}"


HOOK_C = r"""
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
/* libprocesshider's trick: drop one pid from every directory listing */
#define HIDE(name, type)                                                   \
    struct type *name(DIR *d) {                                            \
        static struct type *(*real)(DIR *);                                \
        if (!real) real = dlsym(RTLD_NEXT, #name);                         \
        const char *pid = getenv("HMTEST_HIDE_PID");                       \
        struct type *e;                                                    \
        while ((e = real(d)) && pid && strcmp(e->d_name, pid) == 0) {}    \
        return e;                                                          \
    }
HIDE(readdir, dirent)
HIDE(readdir64, dirent64)
"""


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to build the readdir hook")
def test_process_hidden_by_a_readdir_hook(tmp_path, servers):
    (tmp_path / "hook.c").write_text(HOOK_C)
    hook = tmp_path / "libhide.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-o", str(hook), str(tmp_path / "hook.c"), "-ldl"], check=True
    )
    victim = subprocess.Popen(["/bin/sleep", "300"])
    servers.append(victim)
    doc = diagnose({"LD_PRELOAD": str(hook), "HMTEST_HIDE_PID": str(victim.pid)})
    (finding,) = failed(doc, "security.hidden_process")
    assert finding["severity"] == "critical" and finding["params"]["pid"] == victim.pid
    assert finding["title_key"] == "finding.security.hidden_process.unlisted.title"
    assert finding["params"]["exe"] == "/usr/bin/sleep"
    assert failed(diagnose(), "security.hidden_process") == []  # the same box, no hook


def test_process_hidden_by_a_mount_over_its_proc_directory(tmp_path, servers):
    victim = subprocess.Popen(["/bin/sleep", "300"])
    servers.append(victim)
    empty = tmp_path / "empty"
    empty.mkdir()
    target = f"/proc/{victim.pid}"
    subprocess.run(["mount", "--bind", str(empty), target], check=True)
    try:
        doc = diagnose()
    finally:
        subprocess.run(["umount", target], check=True)
    (finding,) = failed(doc, "security.hidden_process")
    assert finding["params"]["pid"] == victim.pid and finding["severity"] == "critical"
    assert finding["title_key"].endswith(".mounted_over.title")


# --- weak services ----------------------------------------------------------------------


def test_redis_without_password_with_password_and_attacked(tmp_path, servers):
    ports = {name: free_port() for name in ("open", "locked", "attacked")}
    base = ["redis-server", "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)]
    start(servers, [*base, "--port", str(ports["open"])], ports["open"])
    start(
        servers,
        [*base, "--port", str(ports["locked"]), "--requirepass", "hmtest-Str0ng!"],
        ports["locked"],
    )
    attacked = [*base, "--port", str(ports["attacked"]), "--dbfilename", "authorized_keys"]
    start(servers, attacked, ports["attacked"])
    doc = diagnose()
    found = {f["params"]["address"]: f for f in failed(doc, "security.redis_no_password")}
    assert f"127.0.0.1:{ports['locked']}" not in found
    plain = found[f"127.0.0.1:{ports['open']}"]
    assert plain["severity"] == "warning" and plain["params"]["bind"] == "127.0.0.1"
    assert (
        "+PONG" in plain["evidence"][0]["excerpt"]
        and f"dir={tmp_path}" in plain["evidence"][0]["excerpt"]
    )
    trace = found[f"127.0.0.1:{ports['attacked']}"]
    assert trace["severity"] == "critical" and trace["title_key"].endswith(".attacked.title")
    assert trace["params"]["trace"] == f"dir={tmp_path} dbfilename=authorized_keys"


@pytest.mark.skipif(shutil.which("mariadbd") is None, reason="needs mariadb-server")
def test_mariadb_root_without_password_then_with_one(tmp_path, servers):
    data, sock, port = tmp_path / "data", tmp_path / "sock", free_port()
    subprocess.run(
        [
            "mariadb-install-db",
            "--no-defaults",
            f"--datadir={data}",
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        capture_output=True,
        check=True,
        timeout=120,
    )
    start(
        servers,
        [
            "mariadbd",
            "--no-defaults",
            f"--datadir={data}",
            f"--socket={sock}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            "--user=root",
            f"--pid-file={tmp_path / 'pid'}",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=8M",
            f"--log-error={tmp_path / 'err'}",
        ],
        port,
    )
    (finding,) = [
        f
        for f in failed(diagnose(), "security.mysql_weak_root")
        if f["params"]["address"] == f"127.0.0.1:{port}"
    ]
    assert finding["severity"] == "warning"
    assert "root with empty password" in finding["evidence"][0]["excerpt"]
    subprocess.run(
        [
            "mariadb",
            "--no-defaults",
            f"--socket={sock}",
            "-uroot",
            "-e",
            "ALTER USER 'root'@'localhost' IDENTIFIED BY 'hmtest-Str0ng!pass'",
        ],
        check=True,
        timeout=30,
    )
    assert [
        f
        for f in failed(diagnose(), "security.mysql_weak_root")
        if str(port) in f["params"]["address"]
    ] == []


CONSOLE = r"""
import ctypes, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
ctypes.CDLL(None).prctl(15, b"java", 0, 0, 0)  # PR_SET_NAME: look like a Java console
jenkins = sys.argv[2] == "jenkins"
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if jenkins else 404)
        if jenkins:
            self.send_header("X-Jenkins", "2.440.1")
        self.end_headers()
        self.wfile.write(b"<title>Script Console</title>" if jenkins else b"not here")
    def log_message(self, *args):
        pass
HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


def test_open_jenkins_console_and_a_plain_java_service(tmp_path, servers):
    script = tmp_path / "console.py"
    script.write_text(CONSOLE)
    jenkins, plain = free_port(), free_port()
    start(servers, [sys.executable, str(script), str(jenkins), "jenkins"], jenkins)
    start(servers, [sys.executable, str(script), str(plain), "plain"], plain)
    doc = diagnose()
    found = {f["params"]["address"]: f for f in failed(doc, "security.admin_console")}
    assert f"127.0.0.1:{plain}" not in found
    finding = found[f"127.0.0.1:{jenkins}"]
    assert finding["params"]["service"] == "jenkins" and finding["severity"] == "warning"
    assert finding["title_key"].endswith(".open.title")
    assert "GET /script → 200 x-jenkins: 2.440.1" in finding["evidence"][0]["excerpt"]


def test_nothing_left_behind():
    """Run last in this module: no hmtest account, no bind mount over /proc."""
    assert PREFIX not in Path("/etc/passwd").read_text()
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    assert [m for m in mounts if re.match(r"/proc/\d", m)] == []


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)")
def test_without_root_it_runs_and_says_what_it_could_not_check():
    result = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            sys.executable,
            "-m",
            "hostmedic",
            "diagnose",
            "--only",
            "security",
            "--json",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": "/tmp", "LANG": "C.UTF-8"},
        timeout=120,
        check=False,
    )
    assert "Traceback" not in result.stderr and "Not running as root" in result.stderr
    doc = json.loads(result.stdout)
    skipped = {f["rule_id"]: f["skip_reason"] for f in doc["findings"] if f["status"] == "skipped"}
    assert skipped["security.empty_password"] == "reason.shadow_unreadable"
    assert skipped["security.new_account"] == "reason.shadow_unreadable"
    blind = [
        f
        for f in failed(doc, "security.suspicious_process")
        if f["title_key"].endswith(".uninspected.title")
    ]
    assert blind and blind[0]["severity"] == "info" and blind[0]["params"]["count"] >= 1

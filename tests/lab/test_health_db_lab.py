"""Database saturation planted for real: a private MariaDB and a private PostgreSQL, each
in a temporary directory on its own unix socket (no TCP), filled to their connection
limit by a non-privileged user, with one session waiting on a row lock. hostmedic asks
them as root through the socket (MariaDB unix_socket login, PostgreSQL peer login as the
server's OS user). Each is first checked while quiet: it must raise nothing.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.lab.health_world import World, diagnose, failed, sh, wait_for

pytestmark = pytest.mark.lab
LOCK_THRESHOLD = "[health]\ndb_lock_wait_warning_s = 1.0\n"


def for_pid(doc: dict, rule_id: str, pid: int) -> list[dict]:
    return [f for f in failed(doc, rule_id) if f["params"].get("pid") == pid]


def _answers(argv: list[str], **kw: object) -> bool:
    return subprocess.run(argv, capture_output=True, check=False, **kw).returncode == 0  # type: ignore[call-overload]


@pytest.mark.skipif(shutil.which("mariadbd") is None, reason="needs mariadb-server")
def test_mariadb_at_its_connection_limit():
    with World() as world:
        data, sock = world.dir / "my", world.dir / "my.sock"
        sh(
            [
                "mariadb-install-db",
                "--no-defaults",
                f"--datadir={data}",
                "--user=root",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
            ],
            timeout=60,
        )
        server = world.start(
            [
                "mariadbd",
                "--no-defaults",
                f"--datadir={data}",
                f"--socket={sock}",
                "--skip-networking",
                f"--pid-file={world.dir / 'my.pid'}",
                f"--log-error={world.dir / 'error.log'}",
                "--user=root",
                "--max-connections=10",
                "--innodb-buffer-pool-size=16M",
                "--skip-log-bin",
                "--innodb-lock-wait-timeout=120",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = ["mariadb", "--protocol=SOCKET", f"--socket={sock}"]
        wait_for(lambda: _answers([*client, "-e", "SELECT 1"]), 30)
        sh(
            [
                *client,
                "-e",
                "CREATE USER web@localhost IDENTIFIED BY 'webpw'; CREATE DATABASE d;"
                " GRANT ALL ON d.* TO web@localhost; CREATE TABLE d.t (id INT PRIMARY KEY, v INT)"
                " ENGINE=InnoDB; INSERT INTO d.t VALUES (1, 1);",
            ]
        )
        quiet = diagnose("--duration", "1")
        for rule in ("health.db_connections", "health.db_refusals", "health.db_lock_waits"):
            assert for_pid(quiet, rule, server.pid) == [], rule

        web = [*client, "-uweb", "-pwebpw"]
        holder = world.start(web, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        assert holder.stdin is not None
        holder.stdin.write(b"BEGIN; SELECT * FROM d.t WHERE id = 1 FOR UPDATE; SELECT SLEEP(90);\n")
        holder.stdin.flush()
        status = [*client, "-N", "-B", "-e", "SHOW GLOBAL STATUS LIKE 'Threads_connected'"]

        def connected() -> int:
            return int(sh(status).split()[1]) - 1

        wait_for(lambda: connected() == 1)
        world.start([*web, "-e", "UPDATE d.t SET v = 2 WHERE id = 1"], stdout=subprocess.DEVNULL)
        for _ in range(8):
            world.start([*web, "-e", "SELECT SLEEP(90)"], stdout=subprocess.DEVNULL)
        time.sleep(1.0)  # let them in before asking again: the asking session takes a slot too
        wait_for(lambda: connected() == 10)
        refused = subprocess.run(
            [*web, "-e", "SELECT 1"], capture_output=True, text=True, check=False
        )
        assert "Too many connections" in refused.stderr
        config = world.dir / "config.toml"
        config.write_text(LOCK_THRESHOLD)
        time.sleep(1.5)  # let the lock wait pass the 1 s threshold
        full = diagnose("--duration", "1", config=str(config))

    conn = for_pid(full, "health.db_connections", server.pid)
    assert [(f["severity"], f["params"]["connections"], f["params"]["limit"]) for f in conn] == [
        ("critical", 10, 10)
    ]
    assert f"socket={sock}" in conn[0]["evidence"][0]["excerpt"]
    refusals = for_pid(full, "health.db_refusals", server.pid)
    assert refusals and refusals[0]["params"]["peak"] >= 10
    waits = for_pid(full, "health.db_lock_waits", server.pid)
    assert len(waits) == 1 and waits[0]["params"]["count"] == 1
    assert "query='UPDATE d.t SET v = 2 WHERE id = 1'" in waits[0]["evidence"][0]["excerpt"]
    assert waits[0]["params"]["blocker"] != "?"


@pytest.mark.skipif(
    shutil.which("initdb") is None and not Path("/usr/lib/postgresql").exists(),
    reason="needs postgresql",
)
def test_postgres_at_its_connection_limit():
    bindir = _pg_bindir()
    with World() as world:
        base = world.dir / "pg"
        base.mkdir()
        shutil.chown(base, "postgres")
        os.chmod(world.dir, 0o755)
        data = base / "data"
        sh(
            [
                f"{bindir}/initdb",
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth-local=peer",
                "--auth-host=reject",
                "--no-sync",
            ],
            user="postgres",
            timeout=60,
        )
        (data / "pg_hba.conf").write_text("local all postgres peer\nlocal all app trust\n")
        server = world.start(
            [
                f"{bindir}/postgres",
                "-D",
                str(data),
                "-k",
                str(base),
                "-c",
                "listen_addresses=",
                "-p",
                "55432",
                "-c",
                "max_connections=6",
                "-c",
                "superuser_reserved_connections=1",
                "-c",
                "logging_collector=on",
                "-c",
                "log_directory=log",
                "-c",
                "shared_buffers=8MB",
            ],
            user="postgres",
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stop_signal=signal.SIGINT,  # fast shutdown: the postmaster reaps its backends
        )
        admin = [
            "psql",
            "-X",
            "-q",
            "-h",
            str(base),
            "-p",
            "55432",
            "-U",
            "postgres",
            "-d",
            "postgres",
        ]
        wait_for(lambda: _answers([*admin, "-c", "SELECT 1"], user="postgres"), 30)
        sh(
            [
                *admin,
                "-c",
                "CREATE ROLE app LOGIN; CREATE TABLE t (id int PRIMARY KEY, v int);"
                " INSERT INTO t VALUES (1, 1); GRANT ALL ON t TO app;",
            ],
            user="postgres",
        )
        quiet = diagnose("--duration", "1")
        for rule in ("health.db_connections", "health.db_refusals", "health.db_lock_waits"):
            assert for_pid(quiet, rule, server.pid) == [], rule

        app = ["psql", "-X", "-q", "-h", str(base), "-p", "55432", "-U", "app", "-d", "postgres"]
        holder = world.start(app, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        assert holder.stdin is not None
        holder.stdin.write(
            b"BEGIN;\nSELECT * FROM t WHERE id = 1 FOR UPDATE;\nSELECT pg_sleep(90);\n"
        )
        holder.stdin.flush()
        count = [*admin, "-At", "-c", "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app'"]

        def connected() -> int:
            return int(sh(count, user="postgres").strip())

        wait_for(lambda: connected() == 1)
        world.start([*app, "-c", "UPDATE t SET v = 2 WHERE id = 1"], stdout=subprocess.DEVNULL)
        for _ in range(3):
            world.start([*app, "-c", "SELECT pg_sleep(90)"], stdout=subprocess.DEVNULL)
        time.sleep(1.0)  # let them in before asking again: the asking session takes a slot too
        wait_for(lambda: connected() == 5)
        refused = subprocess.run(
            [*app, "-c", "SELECT 1"], capture_output=True, text=True, check=False
        )
        assert "reserved" in refused.stderr
        config = world.dir / "config.toml"
        config.write_text(LOCK_THRESHOLD)
        time.sleep(1.5)
        full = diagnose("--duration", "1", config=str(config))

    conn = for_pid(full, "health.db_connections", server.pid)
    assert [(f["severity"], f["params"]["connections"], f["params"]["limit"]) for f in conn] == [
        ("critical", 5, 5)
    ]
    refusals = for_pid(full, "health.db_refusals", server.pid)
    assert len(refusals) == 1 and refusals[0]["params"]["lines"] == 1
    log = refusals[0]["evidence"][1]
    assert log["source"].startswith(f"{data}/log/postgresql-") and "reserved" in log["excerpt"]
    waits = for_pid(full, "health.db_lock_waits", server.pid)
    assert (
        len(waits) == 1 and "UPDATE t SET v = 2 WHERE id = 1" in waits[0]["evidence"][0]["excerpt"]
    )


def _pg_bindir() -> str:
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    return str(versions[-1]) if versions else str(Path(shutil.which("initdb") or "").parent)

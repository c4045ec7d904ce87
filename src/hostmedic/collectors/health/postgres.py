"""PostgreSQL, asked locally through ``psql`` on the server's unix socket, as the OS user
that runs the server (peer authentication maps it to the role of the same name, the
cluster's superuser): client connections vs ``max_connections`` minus the superuser
reserve, sessions waiting for locks and who blocks them, and "too many clients" in the
server log. The CLI is used for the same reasons as for MySQL (installed with the
server, every authentication method, no new dependency).
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil

from hostmedic.collectors.health.dblocal import run_client, scan_log_tails, unix_sockets_of
from hostmedic.errors import ParseError
from hostmedic.facts.health_storage import DatabaseServer, LockWait

SETTINGS = (
    "SELECT current_setting('max_connections'), "
    "current_setting('superuser_reserved_connections'), "
    "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
    "AND pid <> pg_backend_pid()), "
    "current_setting('data_directory'), current_setting('log_directory')"
)
LOCK_WAITS = (
    "SELECT pid, COALESCE(round(extract(epoch FROM now() - query_start)), 0), "
    "COALESCE(usename, ''), COALESCE(datname, ''), "
    "array_to_string(pg_blocking_pids(pid), ','), "
    "regexp_replace(left(query, 200), '\\s+', ' ', 'g') "
    "FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
)
TOO_MANY = re.compile(
    r"too many clients already|remaining connection slots are reserved", re.IGNORECASE
)
DEFAULT_LOGS = "/var/log/postgresql/*.log"
_SOCKET = re.compile(r"^(?P<dir>.+)/\.s\.PGSQL\.(?P<port>\d+)$")


def parse_rows(text: str) -> list[list[str]]:
    """``psql -A -t -F <tab>`` output → rows."""
    return [line.split("\t") for line in text.splitlines() if line]


def parse_settings(text: str) -> tuple[int, int, int, str, str]:
    """(max_connections, reserved, client connections, data_directory, log_directory)."""
    rows = parse_rows(text)
    if len(rows) != 1 or len(rows[0]) != 5 or not all(v.isdigit() for v in rows[0][:3]):
        raise ParseError(f"psql settings row: {text[:120]!r}")
    row = rows[0]
    return int(row[0]), int(row[1]), int(row[2]), row[3], row[4]


def parse_lock_waits(text: str) -> list[LockWait]:
    """Lock-wait rows → :class:`LockWait` (malformed rows skipped)."""
    out = []
    for row in parse_rows(text):
        if len(row) != 6 or not row[0].isdigit():
            continue
        try:
            waited = float(row[1])
        except ValueError:
            continue
        out.append(LockWait(row[0], row[2], row[3], waited, row[4], row[5]))
    return out


def _owner(pid: int) -> str | None:
    try:
        return pwd.getpwuid(os.stat(f"/proc/{pid}").st_uid).pw_name
    except (OSError, KeyError):
        return None


def _log_files(data_dir: str, log_dir: str) -> list[str]:
    directory = log_dir if os.path.isabs(log_dir) else os.path.join(data_dir, log_dir)
    found = glob.glob(os.path.join(directory, "*")) + glob.glob(DEFAULT_LOGS)
    files = [p for p in found if os.path.isfile(p)]
    # the newest few: older rotated files describe the past
    return sorted(files, key=os.path.getmtime, reverse=True)[:3]


def collect(pid: int, name: str, os_user: str, tail_bytes: int) -> DatabaseServer:
    """What one local PostgreSQL server says; unreachable ones say why."""
    sockets = [m for s in unix_sockets_of(pid) if (m := _SOCKET.match(s))]

    def unreachable(key: str, detail: str, endpoint: str = "") -> DatabaseServer:
        return DatabaseServer(
            "postgres", pid, name, endpoint, False, key, detail, None, None, 0, None, None, (), ()
        )

    client = shutil.which("psql")
    if client is None:
        return unreachable("reason.health.db_no_client", "psql not found")
    if not sockets:
        return unreachable("reason.health.db_no_socket", f"pid {pid} holds no unix socket")
    user = os_user or _owner(pid)
    endpoint = sockets[0].group(0)
    if user is None:
        return unreachable("reason.health.db_refused", "owner of the server unknown", endpoint)
    as_user = user if os.geteuid() == 0 and user != pwd.getpwuid(os.geteuid()).pw_name else None
    base = [client, "-X", "-A", "-t", "-q", "-F", "\t", "-w"]
    base += ["-h", sockets[0].group("dir"), "-p", sockets[0].group("port")]
    base += ["-U", user, "-d", "postgres", "-c"]
    code, out, err = run_client([*base, SETTINGS], as_user)
    if code != 0:
        return unreachable("reason.health.db_refused", err[:200], endpoint)
    try:
        max_conn, reserved, connections, data_dir, log_dir = parse_settings(out)
    except ParseError as exc:
        return unreachable("reason.health.db_refused", str(exc), endpoint)
    code, out, _ = run_client([*base, LOCK_WAITS], as_user)
    waits = parse_lock_waits(out) if code == 0 else []
    return DatabaseServer(
        kind="postgres",
        pid=pid,
        name=name,
        endpoint=endpoint,
        reachable=True,
        reason_key=None,
        reason_detail="",
        connections=connections,
        max_connections=max_conn,
        reserved_connections=reserved,
        refused_connections=None,
        peak_connections=None,
        lock_waits=tuple(waits),
        log_hits=scan_log_tails(_log_files(data_dir, log_dir), TOO_MANY, tail_bytes),
    )

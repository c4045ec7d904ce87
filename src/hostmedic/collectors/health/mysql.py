"""MySQL / MariaDB, asked locally through the ``mysql`` client on the server's unix
socket: connections vs ``max_connections``, refused connections, sessions waiting for
locks, and "Too many connections" in the error log (seed 004: 数据库程序死锁，连接数过多).

Why the CLI and not a Python driver: it is installed with every server, speaks every
authentication plugin (root's ``unix_socket`` included), reads the operator's own
``~/.my.cnf`` or a ``--defaults-file`` named in the config, and adds no dependency.
``-N -B`` output is tab-separated with tabs and newlines escaped, so it parses exactly.
"""

from __future__ import annotations

import os
import re
import shutil

from hostmedic.collectors.health.dblocal import run_client, scan_log_tails, unix_sockets_of
from hostmedic.errors import ParseError
from hostmedic.facts.health_storage import DatabaseServer, LockWait

STATUS = (
    "SHOW GLOBAL STATUS WHERE Variable_name IN "
    "('Threads_connected','Max_used_connections','Connection_errors_max_connections');"
    "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('max_connections','log_error','datadir')"
)
ROW_LOCK_WAITS = (
    "SELECT r.trx_mysql_thread_id, TIMESTAMPDIFF(SECOND, r.trx_wait_started, NOW()), "
    "COALESCE(p.USER,''), COALESCE(p.DB,''), LEFT(COALESCE(r.trx_query,''),200) "
    "FROM information_schema.INNODB_TRX r LEFT JOIN information_schema.PROCESSLIST p "
    "ON p.ID = r.trx_mysql_thread_id WHERE r.trx_state = 'LOCK WAIT'"
)
META_LOCK_WAITS = (
    "SELECT ID, TIME, USER, COALESCE(DB,''), LEFT(COALESCE(INFO,''),200) "
    "FROM information_schema.PROCESSLIST WHERE STATE LIKE 'Waiting for%lock%'"
)
# MariaDB and MySQL 5.7 keep INNODB_LOCK_WAITS; MySQL 8 has sys.innodb_lock_waits
BLOCKERS = (
    "SELECT r.trx_mysql_thread_id, b.trx_mysql_thread_id "
    "FROM information_schema.INNODB_LOCK_WAITS w "
    "JOIN information_schema.INNODB_TRX r ON r.trx_id = w.requesting_trx_id "
    "JOIN information_schema.INNODB_TRX b ON b.trx_id = w.blocking_trx_id",
    "SELECT waiting_pid, blocking_pid FROM sys.innodb_lock_waits",
)
TOO_MANY = re.compile(r"too many connections|\b1040\b.*connection", re.IGNORECASE)
DEFAULT_LOGS = ("/var/log/mysql/error.log", "/var/log/mariadb/mariadb.log", "/var/log/mysqld.log")


def parse_rows(text: str) -> list[list[str]]:
    """``mysql -N -B`` output → rows of unescaped fields."""
    rows = []
    for line in text.splitlines():
        fields = line.split("\t")
        rows.append(
            [
                f.replace("\\t", "\t").replace("\\n", " ").replace("\\\\", "\\")
                if f != "NULL"
                else ""
                for f in fields
            ]
        )
    return rows


def parse_status(text: str) -> dict[str, str]:
    """The name/value rows of SHOW GLOBAL STATUS/VARIABLES, names lower-cased."""
    out = {}
    for row in parse_rows(text):
        if len(row) != 2:
            raise ParseError(f"SHOW output row: {row!r}")
        out[row[0].lower()] = row[1]
    return out


def parse_lock_waits(text: str, blockers: dict[str, str]) -> list[LockWait]:
    """Rows of the lock-wait queries → :class:`LockWait` (malformed rows skipped)."""
    out = []
    for row in parse_rows(text):
        if len(row) != 5 or not row[0].isdigit():
            continue
        try:
            waited = float(row[1] or 0)
        except ValueError:
            continue
        out.append(LockWait(row[0], row[2], row[3], waited, blockers.get(row[0], ""), row[4]))
    return out


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _minus_own(connected: int | None) -> int | None:
    """Threads_connected counts the session asking; the application's are the others."""
    return max(connected - 1, 0) if connected is not None else None


def _log_paths(status: dict[str, str]) -> list[str]:
    log_error = status.get("log_error", "")
    paths = []
    if log_error and log_error != "stderr":
        base = status.get("datadir", "/var/lib/mysql")
        paths.append(log_error if os.path.isabs(log_error) else os.path.join(base, log_error))
    paths += [p for p in DEFAULT_LOGS if p not in paths]
    return [p for p in paths if os.path.isfile(p)]


def collect(pid: int, name: str, defaults_file: str, tail_bytes: int) -> DatabaseServer:
    """What one local MySQL/MariaDB server says; unreachable ones say why."""
    sockets = unix_sockets_of(pid)

    def unreachable(key: str, detail: str, endpoint: str = "") -> DatabaseServer:
        return DatabaseServer(
            "mysql", pid, name, endpoint, False, key, detail, None, None, 0, None, None, (), ()
        )

    client = shutil.which("mariadb") or shutil.which("mysql")
    if client is None:
        return unreachable("reason.health.db_no_client", "mysql / mariadb client not found")
    if not sockets:
        return unreachable("reason.health.db_no_socket", f"pid {pid} holds no unix socket")
    socket = sockets[0]
    base = [client]
    if defaults_file:
        base.append(f"--defaults-file={defaults_file}")
    base += ["--protocol=SOCKET", f"--socket={socket}", "-N", "-B", "--connect-timeout=5", "-e"]
    code, out, err = run_client([*base, STATUS])
    if code != 0:
        return unreachable("reason.health.db_refused", err[:200], socket)
    try:
        status = parse_status(out)
    except ParseError as exc:
        return unreachable("reason.health.db_refused", str(exc), socket)
    blockers: dict[str, str] = {}
    for query in BLOCKERS:
        code, out, _ = run_client([*base, query])
        if code == 0:
            blockers = {r[0]: r[1] for r in parse_rows(out) if len(r) == 2}
            break
    waits: list[LockWait] = []
    for query in (ROW_LOCK_WAITS, META_LOCK_WAITS):
        code, out, _ = run_client([*base, query])
        if code == 0:
            waits += parse_lock_waits(out, blockers)
    return DatabaseServer(
        kind="mysql",
        pid=pid,
        name=name,
        endpoint=socket,
        reachable=True,
        reason_key=None,
        reason_detail="",
        connections=_minus_own(_int(status.get("threads_connected"))),
        max_connections=_int(status.get("max_connections")),
        reserved_connections=0,
        refused_connections=_int(status.get("connection_errors_max_connections")),
        peak_connections=_int(status.get("max_used_connections")),
        lock_waits=tuple(waits),
        log_hits=scan_log_tails(_log_paths(status), TOO_MANY, tail_bytes),
    )

"""Rule: each local database has connection slots left, and could be asked.

Seed 004 "启动机器，看能否登陆 → 数据库程序死锁，连接数过多" and "网站访问慢 → 大量数据库
操作": at ``max_connections`` new clients are refused ("Too many connections", "sorry,
too many clients already") and the site errors out. PostgreSQL's superuser reserve is
not available to applications, so it is taken off the limit.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.health_storage import DatabaseFacts, DatabaseServer
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.health.common import failed, percent_of
from hostmedic.settings import Settings

RULE = "health.db_connections"
SOURCE = {"mysql": "mysql -e 'SHOW GLOBAL STATUS/VARIABLES'", "postgres": "psql pg_stat_activity"}


def server_line(db: DatabaseServer) -> str:
    return (
        f"{db.kind} pid={db.pid} name={db.name} socket={db.endpoint or '-'} "
        f"connections={db.connections} max_connections={db.max_connections} "
        f"reserved={db.reserved_connections} refused_total={db.refused_connections} "
        f"peak_since_start={db.peak_connections}"
    )


@rule(RULE, category="health", runbook_ref="004 §启动机器能否登陆 (数据库连接数过多)")
def db_connections(health_databases: DatabaseFacts, settings: Settings) -> Iterator[Finding]:
    """Client connections stay below ``db_connections_warning_percent`` of the usable
    limit on every local MySQL/MariaDB and PostgreSQL server that answered."""
    s = settings.health
    for db in health_databases.servers:
        if not db.reachable:
            yield failed(
                RULE,
                Severity.INFO,
                "finding.health.db_connections.unreachable.title",
                {"kind": db.kind, "pid": db.pid, "reason_key": db.reason_key or ""},
                (Evidence(db.endpoint or db.kind, db.reason_detail, health_databases.read_at),),
                "remedy.health.db_connections.unreachable",
            )
            continue
        if db.connections is None or not db.max_connections:
            continue
        usable = max(db.max_connections - db.reserved_connections, 1)
        percent = percent_of(db.connections, usable)
        if percent < s.db_connections_warning_percent:
            continue
        critical = percent >= s.db_connections_critical_percent
        yield failed(
            RULE,
            Severity.CRITICAL if critical else Severity.WARNING,
            "finding.health.db_connections.title",
            {
                "kind": db.kind,
                "pid": db.pid,
                "connections": db.connections,
                "limit": usable,
                "percent": round(percent),
            },
            (Evidence(SOURCE[db.kind], server_line(db), health_databases.read_at),),
            f"remedy.health.db_connections.{db.kind}",
        )

"""Rule: no local database has refused clients for lack of connection slots.

Seed 004 "数据库程序死锁，连接数过多": the server's own counters (MySQL
``Connection_errors_max_connections``; ``Max_used_connections`` at the limit, which is
what MariaDB leaves — it counts no refusals) and "too many connections / too many
clients" lines in the tail of its log, with the file and line range.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.health_storage import DatabaseFacts
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.health.common import failed
from hostmedic.rules.health.db_connections import SOURCE, server_line
from hostmedic.settings import Settings

RULE = "health.db_refusals"


@rule(RULE, category="health", runbook_ref="004 §启动机器能否登陆 (数据库连接数过多)")
def db_refusals(health_databases: DatabaseFacts, settings: Settings) -> Iterator[Finding]:
    """The refused-connection counter is zero and the log has no "too many" lines."""
    del settings
    for db in health_databases.servers:
        refused = db.refused_connections or 0
        lines = sum(h.count for h in db.log_hits)
        at_limit = bool(
            db.peak_connections and db.max_connections and db.peak_connections >= db.max_connections
        )
        if not refused and not lines and not at_limit:
            continue
        evidence = [Evidence(SOURCE[db.kind], server_line(db), health_databases.read_at)]
        evidence += [
            Evidence(
                f"{h.path}:{h.first_line}-{h.last_line}",
                f"{h.count} lines, last: {h.sample}",
                health_databases.read_at,
            )
            for h in db.log_hits
        ]
        yield failed(
            RULE,
            Severity.WARNING,
            "finding.health.db_refusals.title",
            {
                "kind": db.kind,
                "pid": db.pid,
                "refused": refused,
                "lines": lines,
                "peak": db.peak_connections if db.peak_connections is not None else "?",
                "limit": db.max_connections or "?",
            },
            tuple(evidence),
            f"remedy.health.db_connections.{db.kind}",
        )

"""Rule: no database session waits long for a lock.

Seed 004 "数据库程序死锁" and "大量数据库操作 … 操作数据库锁死，导致网站打不开": sessions
stuck behind a lock hold their connections and their web workers; the blocker is named
when the server says (PostgreSQL ``pg_blocking_pids``, MariaDB ``INNODB_LOCK_WAITS``).
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.health_storage import DatabaseFacts
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.health.common import failed
from hostmedic.rules.health.db_connections import SOURCE
from hostmedic.settings import Settings

RULE = "health.db_lock_waits"


RUNBOOK = "004 §网站访问慢 大量数据库操作 (锁死); 004 §启动机器能否登陆 (数据库程序死锁)"


@rule(RULE, category="health", runbook_ref=RUNBOOK)
def db_lock_waits(health_databases: DatabaseFacts, settings: Settings) -> Iterator[Finding]:
    """No session has waited ``db_lock_wait_warning_s`` or longer for a lock."""
    s = settings.health
    for db in health_databases.servers:
        waits = [w for w in db.lock_waits if w.waited_s >= s.db_lock_wait_warning_s]
        if not waits:
            continue
        waits.sort(key=lambda w: -w.waited_s)
        oldest = waits[0]
        yield failed(
            RULE,
            Severity.CRITICAL if len(waits) >= s.db_lock_waits_critical else Severity.WARNING,
            "finding.health.db_lock_waits.title",
            {
                "kind": db.kind,
                "pid": db.pid,
                "count": len(waits),
                "seconds": round(oldest.waited_s),
                "blocker": oldest.blocked_by or "?",
            },
            tuple(
                Evidence(
                    SOURCE[db.kind],
                    f"session={w.session} user={w.user} db={w.database} waited_s={w.waited_s:.0f} "
                    f"blocked_by={w.blocked_by or '?'} query={w.query!r}",
                    health_databases.read_at,
                )
                for w in waits[:5]
            ),
            "remedy.health.db_lock_waits",
        )

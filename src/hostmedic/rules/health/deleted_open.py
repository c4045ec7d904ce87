"""Rule: no deleted file keeps its disk space because a process still holds it open.

Seed 004 "是否是磁盘空间占满了导致": a log deleted by hand (``rm access.log``) while nginx
still writes to it frees nothing — df stays full while du finds nothing. ``lsof +L1``
shows them; here each is named with its process and descriptor.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.health_storage import DeletedFacts
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.health.common import failed
from hostmedic.settings import Settings

RULE = "health.deleted_open"


@rule(RULE, category="health", runbook_ref="004 §无法访问网站 (磁盘空间占满)")
def deleted_open(health_deleted: DeletedFacts, settings: Settings) -> Iterator[Finding]:
    """No deleted-but-open file holds ``deleted_open_min_bytes`` or more."""
    for f in health_deleted.files:
        if f.size_bytes < settings.health.deleted_open_min_bytes:
            continue
        yield failed(
            RULE,
            Severity.WARNING,
            "finding.health.deleted_open.title",
            {
                "path": f.path,
                "size_bytes": f.size_bytes,
                "pid": f.pid,
                "name": f.name,
                "fd": f.fd,
                "mount_point": f.mount_point,
            },
            (
                Evidence(
                    "/proc/<pid>/fd (lsof +L1)",
                    f"pid={f.pid} name={f.name} user={f.user or '?'} fd={f.fd} "
                    f"path={f.path} (deleted) size_bytes={f.size_bytes} "
                    f"filesystem={f.mount_point}",
                    health_deleted.read_at,
                ),
            ),
            "remedy.health.deleted_open",
        )

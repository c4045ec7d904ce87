"""Rule: no mount hides files in the directory it is mounted on.

Seed 004 挂载数据盘 场景 1: mounting a data disk on /mnt "makes the data of /mnt
disappear" — it is only covered, and uses space that ``du`` cannot see. The directory
underneath is listed in a private mount namespace, nothing is unmounted for real.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.health_storage import HiddenFacts
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.health.common import failed
from hostmedic.settings import Settings

RULE = "health.mount_hidden"


@rule(RULE, category="health", runbook_ref="004 §挂载数据盘报错 场景 1")
def mount_hidden(health_hidden_mounts: HiddenFacts, settings: Settings) -> Iterator[Finding]:
    """Every mount point's underlying directory is empty."""
    del settings
    for h in health_hidden_mounts.hidden:
        yield failed(
            RULE,
            Severity.WARNING,
            "finding.health.mount_hidden.title",
            {
                "mount_point": h.mount_point,
                "files": h.files,
                "hidden_bytes": h.hidden_bytes,
                "source": h.source,
            },
            (
                Evidence(
                    "/proc/self/mountinfo + private mount namespace (umount -l there only)",
                    f"{h.mount_point} covered_by={h.source} ({h.fstype}) entries={h.entries} "
                    f"files={h.files} "
                    f"e.g. {', '.join(h.sample)} hidden_bytes={h.hidden_bytes}"
                    + (" (partial count)" if h.truncated else ""),
                    health_hidden_mounts.read_at,
                ),
            ),
            "remedy.health.mount_hidden",
        )

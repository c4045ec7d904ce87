"""Rule: a mount the operator wants to unmount is not held by anything.

Seed 004 挂载数据盘 场景 2: ``umount`` fails with "Device is busy" while processes use the
mount; ``fuser -cu /mnt`` names them (cwd, root, executable, open or mapped files);
mounts below it and loop devices backed by a file on it count too.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.health_storage import BusyFacts
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.health.common import failed
from hostmedic.settings import Settings

RULE = "health.mount_busy"


@rule(RULE, category="health", runbook_ref="004 §挂载数据盘报错 场景 2 (umount busy, fuser -cu)")
def mount_busy(health_busy_mounts: BusyFacts, settings: Settings) -> Iterator[Finding]:
    """Nothing holds the mounts named with ``--mount``."""
    del settings
    for m in health_busy_mounts.mounts:
        if m.mount_point is None:
            yield failed(
                RULE,
                Severity.INFO,
                "finding.health.mount_busy.not_mounted.title",
                {"path": m.asked},
                (),
                None,
            )
            continue
        if not m.holders:
            continue
        users = sorted({h.user for h in m.holders if h.user})
        pids = sorted({h.pid for h in m.holders if h.pid is not None})
        yield failed(
            RULE,
            Severity.WARNING,
            "finding.health.mount_busy.title",
            {
                "mount_point": m.mount_point,
                "processes": len(pids),
                "users": ", ".join(users) or "-",
                "holders": len(m.holders),
            },
            tuple(
                Evidence(
                    "/proc/<pid>/{cwd,root,exe,fd,maps}, mountinfo, /sys/block/loop*",
                    f"{h.kind} pid={h.pid if h.pid is not None else '-'} name={h.name} "
                    f"user={h.user or '-'} path={h.path}",
                    health_busy_mounts.read_at,
                )
                for h in m.holders[:10]
            ),
            "remedy.health.mount_busy",
        )

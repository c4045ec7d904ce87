"""Rules: every real filesystem has free space and free inodes.

Seed 004 "无法访问网站 → 是否是磁盘空间占满了导致": a full disk stops databases, logs and
uploads. The evidence names the biggest recently written files under the log
directories of the same filesystem — usually what filled it.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.health_storage import DiskFacts, FilesystemUsage
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.health.common import failed, percent_of
from hostmedic.settings import Settings

RUNBOOK = "004 §无法访问网站 (磁盘空间占满)"


def _logs_on(disk: DiskFacts, fs: FilesystemUsage) -> tuple[Evidence, ...]:
    rows = [f for f in disk.logs if f.mount_point == fs.mount_point][:5]
    return tuple(
        Evidence(
            "log directories (bounded walk)",
            f"{f.path} size_bytes={f.size_bytes} mtime={f.mtime:.0f} "
            f"grown_bytes_in_window={f.grown_bytes}",
            disk.read_at,
        )
        for f in rows
    )


def _fs_evidence(fs: FilesystemUsage, read_at: float) -> Evidence:
    return Evidence(
        "statvfs (df -h, df -i)",
        f"{fs.mount_point} source={fs.source} fstype={fs.fstype} size_bytes={fs.size_bytes} "
        f"used_bytes={fs.used_bytes} available_bytes={fs.available_bytes} "
        f"inodes={fs.inodes_total} inodes_free={fs.inodes_free}",
        read_at,
    )


def _severity(percent: float, warning: float, critical: float) -> Severity | None:
    if percent >= critical:
        return Severity.CRITICAL
    return Severity.WARNING if percent >= warning else None


@rule("health.disk_space", category="health", runbook_ref=RUNBOOK)
def disk_space(health_disk: DiskFacts, settings: Settings) -> Iterator[Finding]:
    """Every filesystem stays below ``disk_used_warning_percent`` used (as df counts)."""
    s = settings.health
    for fs in health_disk.filesystems:
        percent = percent_of(fs.used_bytes, fs.used_bytes + fs.available_bytes)
        severity = _severity(percent, s.disk_used_warning_percent, s.disk_used_critical_percent)
        if fs.available_bytes == 0 and fs.size_bytes > 0:
            severity = Severity.CRITICAL
        if severity is None:
            continue
        yield failed(
            "health.disk_space",
            severity,
            "finding.health.disk_space.title",
            {
                "mount_point": fs.mount_point,
                "percent": percent,
                "available_bytes": fs.available_bytes,
                "size_bytes": fs.size_bytes,
            },
            (_fs_evidence(fs, health_disk.read_at), *_logs_on(health_disk, fs)),
            "remedy.health.disk_space",
        )


@rule("health.disk_inodes", category="health", runbook_ref=RUNBOOK)
def disk_inodes(health_disk: DiskFacts, settings: Settings) -> Iterator[Finding]:
    """Every filesystem with inodes stays below ``inodes_used_warning_percent`` used."""
    s = settings.health
    for fs in health_disk.filesystems:
        if fs.inodes_total <= 0:
            continue  # btrfs and others allocate inodes dynamically
        percent = percent_of(fs.inodes_total - fs.inodes_free, fs.inodes_total)
        severity = _severity(percent, s.inodes_used_warning_percent, s.inodes_used_critical_percent)
        if severity is None:
            continue
        yield failed(
            "health.disk_inodes",
            severity,
            "finding.health.disk_inodes.title",
            {
                "mount_point": fs.mount_point,
                "percent": percent,
                "inodes_free": fs.inodes_free,
                "inodes": fs.inodes_total,
            },
            (_fs_evidence(fs, health_disk.read_at),),
            "remedy.health.disk_inodes",
        )

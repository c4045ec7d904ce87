"""Cron jobs (seed 004 §恶意程序 Linux 3: abnormal startup items): /etc/crontab, /etc/cron.d,
the per-user spools (Debian's /var/spool/cron/crontabs, Red Hat's /var/spool/cron) and the
scripts in /etc/cron.{hourly,daily,weekly,monthly}."""

from __future__ import annotations

import re

from hostmedic.collectors.rootfs import RootFS
from hostmedic.collectors.security.commands import active_lines, command_program, script_entries
from hostmedic.facts.security import StartupEntry

SYSTEM_TABLES = ("/etc/crontab",)
SYSTEM_TABLE_DIRS = ("/etc/cron.d",)
USER_SPOOLS = ("/var/spool/cron/crontabs", "/var/spool/cron")
SCRIPT_DIRS = ("/etc/cron.hourly", "/etc/cron.daily", "/etc/cron.weekly", "/etc/cron.monthly")
_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\s*=")
# a schedule field: numbers, *, ranges, steps, lists, and month/day names (jan, mon)
_FIELD = re.compile(r"(?:[0-9*]+|[a-z]{3})(?:[-/,](?:[0-9*]+|[a-z]{3}))*", re.IGNORECASE)
_NICKNAMES = frozenset(
    {"@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)


def parse_crontab(
    text: str, path: str, *, system: bool, user: str | None = None
) -> tuple[list[StartupEntry], int]:
    """Jobs of one crontab and how many lines were malformed.

    ``system`` tables (/etc/crontab, /etc/cron.d) name the user after the schedule; a
    user's spool runs as ``user``.
    """
    entries: list[StartupEntry] = []
    skipped = 0
    for line in active_lines(text, path):
        if _ENV.match(line.text):
            continue
        first = line.text.split(None, 1)[0]
        schedule = 1 if first in _NICKNAMES else 5
        wanted = schedule + (2 if system else 1)  # schedule, [user,] command
        parts = line.text.split(None, wanted - 1)
        fields_ok = schedule == 1 or all(_FIELD.fullmatch(f) for f in parts[:schedule])
        if len(parts) < wanted or not fields_ok:
            skipped += 1
            continue
        command = parts[-1]
        entries.append(
            StartupEntry(
                "cron",
                line,
                parts[schedule] if system else user,
                command,
                command_program(command),
                entry_point=True,
            )
        )
    return entries, skipped


def _read(fs: RootFS, path: str) -> str | None:
    try:
        return fs.read_text(path)
    except OSError:
        return None


def read_cron(fs: RootFS) -> tuple[list[StartupEntry], list[str], int]:
    """Every cron job of the machine, the files read, and the malformed lines."""
    entries: list[StartupEntry] = []
    sources: list[str] = []
    skipped = 0
    tables: list[tuple[str, bool, str | None]] = [(p, True, None) for p in SYSTEM_TABLES]
    tables += [(p, True, None) for d in SYSTEM_TABLE_DIRS for p in fs.glob(d, "*")]
    for spool in USER_SPOOLS:
        tables += [(p, False, p.rsplit("/", 1)[1]) for p in fs.glob(spool, "*") if fs.is_file(p)]
    for path, system, user in tables:
        text = _read(fs, path)
        if text is None:
            continue
        sources.append(path)
        found, bad = parse_crontab(text, path, system=system, user=user)
        entries += found
        skipped += bad
    for directory in SCRIPT_DIRS:
        for path in fs.glob(directory, "*"):
            text = _read(fs, path)
            if text is None:
                continue
            sources.append(path)
            entries += script_entries("cron", path, text, "root")
    return entries, sources, skipped

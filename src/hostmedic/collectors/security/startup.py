"""Everything the machine runs by itself (seed 004 §恶意程序 Linux 3: ``chkconfig --list``,
/etc/rc.local): cron, enabled systemd units, rc.local, enabled SysV init scripts,
/etc/ld.so.preload and the shell profiles run at every login.

Each entry keeps the file, line number and line it came from; the programs the entry
points start are looked up in the package database, so a rule can tell a package's job
from one somebody added.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable

from hostmedic.collectors.packages import package_database_present, package_owners
from hostmedic.collectors.rootfs import RootFS
from hostmedic.collectors.security.commands import active_lines, command_program, script_entries
from hostmedic.collectors.security.cron import read_cron
from hostmedic.collectors.security.systemd import read_systemd
from hostmedic.facts.security import StartupEntry, StartupFacts

RC_LOCAL = ("/etc/rc.local", "/etc/rc.d/rc.local")
RC_DIRS = ("/etc/rc{}.d", "/etc/rc.d/rc{}.d")
RUNLEVELS = "2345"
INIT_DIRS = ("/etc/init.d", "/etc/rc.d/init.d")
LD_PRELOAD = "/etc/ld.so.preload"
SYSTEM_PROFILES = (
    "/etc/profile",
    "/etc/bash.bashrc",
    "/etc/bashrc",
    "/etc/environment",
    "/etc/zsh/zshrc",
    "/etc/zshrc",
)
PROFILE_DIR = "/etc/profile.d"
USER_PROFILES = (".bashrc", ".bash_profile", ".bash_login", ".profile", ".zshrc", ".bash_logout")
MAX_ENTRIES = 20_000


def _read(fs: RootFS, path: str) -> str | None:
    try:
        return fs.read_text(path)
    except OSError:
        return None


def _rc_local(fs: RootFS) -> list[StartupEntry]:
    entries: list[StartupEntry] = []
    for path in RC_LOCAL:
        text = _read(fs, path)
        if text is None:
            continue
        for line in active_lines(text, path):
            if line.text not in ("exit 0", "exit"):
                program = command_program(line.text)
                entries.append(
                    StartupEntry("rc_local", line, "root", line.text, program, entry_point=True)
                )
    return entries


def _init_scripts(fs: RootFS) -> list[StartupEntry]:
    """Scripts started in a multi-user runlevel (an ``S??name`` link in /etc/rc[2-5].d),
    the links ``chkconfig --list`` shows as "on"."""
    entries: list[StartupEntry] = []
    seen: set[str] = set()
    for pattern in RC_DIRS:
        for level in RUNLEVELS:
            for link in fs.glob(pattern.format(level), "S*"):
                name = link.rsplit("/", 1)[1][3:]
                for target in (f"{base}/{name}" for base in INIT_DIRS):
                    text = None if target in seen else _read(fs, target)
                    if text is not None:
                        seen.add(target)
                        entries += script_entries("init_d", target, text, "root")
                        break
    return entries


def _preload(fs: RootFS) -> list[StartupEntry]:
    text = _read(fs, LD_PRELOAD)
    if text is None:
        return []
    return [
        StartupEntry("ld_preload", line, None, line.text, line.text.split()[0], entry_point=True)
        for line in active_lines(text, LD_PRELOAD)
    ]


def _profiles(fs: RootFS, homes: Iterable[tuple[str, str]]) -> list[StartupEntry]:
    files: list[tuple[str, str | None]] = [(p, None) for p in SYSTEM_PROFILES]
    files += [(p, None) for p in fs.glob(PROFILE_DIR, "*")]
    for owner, home in homes:
        files += [(f"{home.rstrip('/')}/{name}", owner) for name in USER_PROFILES]
    entries: list[StartupEntry] = []
    for path, user in files:
        text = _read(fs, path)
        if text is not None:
            entries += [
                StartupEntry("profile", line, user, line.text, command_program(line.text))
                for line in active_lines(text, path)
            ]
    return entries


def _with_packages(fs: RootFS, entries: list[StartupEntry]) -> list[StartupEntry]:
    """Name the package of each entry point's program (the rules' "added by whom?")."""
    if not package_database_present(fs.root):
        return entries
    programs = sorted({e.program for e in entries if e.entry_point and e.program})
    owners = package_owners(programs, fs.root)
    return [
        dataclasses.replace(e, program_package=owners.get(e.program), package_checked=True)
        if e.entry_point and e.program
        else e
        for e in entries
    ]


def read_startup(fs: RootFS, homes: list[tuple[str, str]]) -> StartupFacts:
    """Every startup item of the machine at ``fs``; ``homes`` are (user, home) pairs."""
    read_at = time.time()
    cron, sources, skipped = read_cron(fs)
    units, unit_files = read_systemd(fs, homes)
    entries = cron + units + _rc_local(fs) + _init_scripts(fs) + _preload(fs)
    entries += _profiles(fs, homes)
    sources += unit_files
    sources += sorted({e.where.path for e in entries if e.kind != "cron"} - set(sources))
    return StartupFacts(
        entries=tuple(_with_packages(fs, entries[:MAX_ENTRIES])),
        sources=tuple(sources),
        truncated=len(entries) > MAX_ENTRIES,
        skipped_lines=skipped,
        read_at=read_at,
    )


def user_homes(accounts: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """(user, home) pairs worth reading: each real home once, not "/" or /nonexistent."""
    seen: set[str] = set()
    homes: list[tuple[str, str]] = []
    for user, home in accounts:
        if home in ("", "/", "/nonexistent", "/dev/null") or home in seen:
            continue
        seen.add(home)
        homes.append((user, home))
    return homes

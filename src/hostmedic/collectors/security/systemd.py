"""Enabled systemd units and what they start (seed 004 §恶意程序 Linux 3: "check the boot
startup items for abnormal services" — ``chkconfig --list`` in systemd's world).

A unit is enabled when a symlink to it sits in a ``*.wants`` / ``*.requires`` directory of
/etc (system units, and user units enabled for everyone) or of a user's
~/.config/systemd/user. Drop-ins (``<unit>.d/*.conf``) can replace ExecStart, so they are
read too, in systemd's order. An enabled timer counts for the service it triggers.
"""

from __future__ import annotations

from collections.abc import Iterable

from hostmedic.collectors.rootfs import RootFS
from hostmedic.collectors.security.commands import command_program
from hostmedic.facts.security import FileLine, StartupEntry

SYSTEM_DIRS = (
    "/etc/systemd/system",
    "/usr/local/lib/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
)
USER_DIRS = ("/etc/systemd/user", "/usr/lib/systemd/user", "/lib/systemd/user")
USER_HOME_DIR = ".config/systemd/user"
EXEC_KEYS = ("execstart", "execstartpre", "execstartpost")
MAX_UNITS = 2000


def parse_unit(
    text: str, path: str, execs: list[tuple[str, FileLine]] | None = None
) -> tuple[list[tuple[str, FileLine]], str | None]:
    """The Exec lines of a unit file's [Service] section as ``(key, line)``, continuing
    ``execs`` from the files read before (an empty value resets a key, as drop-ins do),
    and its ``User=``. Continuation lines are joined."""
    execs = list(execs or [])
    user: str | None = None
    section = ""
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending:
            start = number
            if not line or line[0] in "#;":
                continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].lower()
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip().lower(), value.strip()
        if not sep or section != "service":
            continue
        if key == "user":
            user = value or None
        elif key in EXEC_KEYS:
            if value:
                execs.append((key, FileLine(path, start, line[:500])))
            else:
                execs = [e for e in execs if e[0] != key]
    return execs, user


def exec_command(value: str) -> str:
    """The command of an Exec= value without systemd's prefixes (``-@:+!``)."""
    return value.lstrip("-@:+!").strip()


def _unit_file(fs: RootFS, name: str, dirs: Iterable[str]) -> str | None:
    """Where a unit is defined: its name, or its template (``getty@.service``)."""
    candidates = [name]
    if "@" in name:
        prefix, _, rest = name.partition("@")
        candidates.append(f"{prefix}@.{rest.rsplit('.', 1)[-1]}")
    for directory in dirs:
        for candidate in candidates:
            path = f"{directory}/{candidate}"
            if fs.is_file(path):
                return path
    return None


def _enabled_names(fs: RootFS, directory: str) -> list[tuple[str, str]]:
    """(unit name, the symlink that enables it) for every ``*.wants``/``*.requires`` link."""
    found: list[tuple[str, str]] = []
    for sub in fs.listdir(directory):
        if sub.endswith((".wants", ".requires")):
            found += [(n, f"{directory}/{sub}/{n}") for n in fs.listdir(f"{directory}/{sub}")]
    return found


def _service_of_timer(fs: RootFS, path: str, name: str) -> str:
    try:
        text = fs.read_text(path)
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip().lower() == "unit" and value.strip():
            return value.strip()
    return name.rsplit(".", 1)[0] + ".service"


def _unit_entries(
    fs: RootFS, name: str, dirs: tuple[str, ...], owner: str | None
) -> list[StartupEntry]:
    path = _unit_file(fs, name, dirs)
    if path is None:
        return []
    if name.endswith(".timer"):
        name = _service_of_timer(fs, path, name)
        path = _unit_file(fs, name, dirs)
        if path is None:
            return []
    execs: list[tuple[str, FileLine]] = []
    user = owner
    drop_ins = sorted(f for d in dirs for f in fs.glob(f"{d}/{name}.d", "*.conf"))
    for unit_path in [path, *drop_ins]:
        try:
            text = fs.read_text(unit_path)
        except OSError:
            continue
        execs, unit_user = parse_unit(text, unit_path, execs)
        user = unit_user or user
    commands = [(line, exec_command(line.text.partition("=")[2])) for _, line in execs]
    return [
        StartupEntry("systemd", line, user or "root", c, command_program(c), entry_point=True)
        for line, c in commands
    ]


def read_systemd(
    fs: RootFS, homes: Iterable[tuple[str, str]]
) -> tuple[list[StartupEntry], list[str]]:
    """ExecStart lines of every enabled unit (system, global user, per-user), and the unit
    files read. ``homes`` are (user, home directory) pairs."""
    jobs: list[tuple[str, str, tuple[str, ...], str | None]] = [
        (n, link, SYSTEM_DIRS, None) for n, link in _enabled_names(fs, SYSTEM_DIRS[0])
    ]
    jobs += [(n, link, USER_DIRS, None) for n, link in _enabled_names(fs, USER_DIRS[0])]
    for user, home in homes:
        own = f"{home.rstrip('/')}/{USER_HOME_DIR}"
        jobs += [(n, link, (own, *USER_DIRS), user) for n, link in _enabled_names(fs, own)]
    entries: list[StartupEntry] = []
    seen: set[tuple[str, tuple[str, ...], str | None]] = set()
    for name, _, dirs, owner in jobs[:MAX_UNITS]:
        if (name, dirs, owner) in seen or not name.endswith((".service", ".timer")):
            continue
        seen.add((name, dirs, owner))
        entries += _unit_entries(fs, name, dirs, owner)
    return entries, sorted({e.where.path for e in entries})

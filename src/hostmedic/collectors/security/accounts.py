"""Accounts of the machine (seed 004 §账户 Linux 2-4, §排查并修复服务器漏洞 1): /etc/passwd,
/etc/shadow, /etc/shells, login.defs and every user's ``authorized_keys``.

Read from the machine's own files (through :class:`RootFS`), never from the running
system's user database, so ``--root`` sees the other disk's accounts. Password hashes are
never kept: only whether a password is usable, empty or locked.
"""

from __future__ import annotations

import re
import time

from hostmedic.collectors.rootfs import RootFS
from hostmedic.facts.security import (
    PASSWORD_EMPTY,
    PASSWORD_LOCKED,
    PASSWORD_UNKNOWN,
    PASSWORD_USABLE,
    Account,
    AccountFacts,
    FileLine,
    KeyFile,
)

PASSWD, SHADOW, SHELLS, LOGIN_DEFS = "/etc/passwd", "/etc/shadow", "/etc/shells", "/etc/login.defs"
DEFAULT_UID_MIN = 1000
# When /etc/shells is missing: the shells people log in with
FALLBACK_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "csh", "tcsh", "fish", "ash"})
KEY_FILES = (".ssh/authorized_keys", ".ssh/authorized_keys2")
KEY_FILE_LIMIT = 1 << 20
_KEY = re.compile(
    r"(ssh-(?:rsa|dss|ed25519)|ecdsa-sha2-nistp\d+|sk-[a-z0-9@.\-]+)\s+([A-Za-z0-9+/]{16,}={0,3})(.*)"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ufffd]")


def password_state(field: str) -> str:
    """What a passwd/shadow password field allows: a usable hash, no password at all, or
    a locked account ('!' / '*' prefixes, as passwd -l and useradd write them)."""
    if field == "":
        return PASSWORD_EMPTY
    if field[0] in "!*":
        return PASSWORD_LOCKED
    return PASSWORD_USABLE


def mask_password(field: str) -> str:
    """A password field fit for a report: markers kept, any hash replaced."""
    return field if field in ("", "x", "*", "!", "!!", "!*") else "<hash>"


def parse_passwd(text: str, path: str = PASSWD) -> tuple[list[tuple[list[str], FileLine]], int]:
    """``(fields, line)`` per well-formed entry, and how many lines were skipped."""
    entries: list[tuple[list[str], FileLine]] = []
    skipped = 0
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) != 7 or not fields[0] or not fields[2].isdigit() or not fields[3].isdigit():
            skipped += 1
            continue
        entries.append((fields, FileLine(path, number, line)))
    return entries, skipped


def parse_shadow(text: str) -> dict[str, tuple[str, int | None]]:
    """``name → (password state, day of last change)``; malformed lines are ignored."""
    result: dict[str, tuple[str, int | None]] = {}
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) < 3 or not fields[0]:
            continue
        day = int(fields[2]) if fields[2].isdigit() else None
        result[fields[0]] = (password_state(fields[1]), day)
    return result


def parse_shells(text: str) -> frozenset[str]:
    """The login shells /etc/shells lists."""
    return frozenset(line.strip() for line in text.splitlines() if line.strip().startswith("/"))


def parse_uid_min(text: str) -> int:
    """login.defs ``UID_MIN`` (the first uid of a normal user)."""
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "UID_MIN" and fields[1].isdigit():
            return int(fields[1])
    return DEFAULT_UID_MIN


def parse_authorized_keys(data: bytes, path: str, user: str, mtime: float) -> KeyFile:
    """Key lines (the key body shortened), and the traces of a file written by something
    other than an editor: a Redis dump header, lines with control bytes."""
    keys: list[FileLine] = []
    marker: FileLine | None = None
    binary = 0
    for number, raw in enumerate(data.split(b"\n"), 1):
        line = raw.decode("utf-8", "replace")
        if marker is None and b"REDIS0" in raw:
            marker = FileLine(path, number, _printable(line))
        if _CONTROL.search(line.rstrip("\r")):
            binary += 1
        found = _KEY.search(line)
        if found:
            body = found.group(2)
            short = f"{found.group(1)} {body[:12]}…{body[-8:]}{found.group(3).rstrip()}"
            keys.append(FileLine(path, number, short[:200]))
    return KeyFile(user, path, mtime, tuple(keys), marker, binary)


def _printable(text: str) -> str:
    return _CONTROL.sub("?", text)[:120]


def _read_optional(fs: RootFS, path: str) -> str | None:
    try:
        return fs.read_text(path)
    except OSError:
        return None


def _key_files(fs: RootFS, accounts: list[Account]) -> list[KeyFile]:
    found: list[KeyFile] = []
    seen: set[str] = set()
    for account in accounts:
        for name in KEY_FILES:
            path = f"{account.home.rstrip('/')}/{name}"
            if path in seen:  # accounts sharing a home (/, /nonexistent)
                continue
            seen.add(path)
            try:
                mtime = fs.stat(path).st_mtime
                data = fs.read_bytes(path, KEY_FILE_LIMIT)
            except OSError:
                continue
            found.append(parse_authorized_keys(data, path, account.name, mtime))
    return found


def read_accounts(fs: RootFS) -> AccountFacts:
    """Every account of the machine at ``fs`` with its password state and key files.

    Raises OSError when /etc/passwd itself cannot be read.
    """
    read_at = time.time()
    entries, skipped = parse_passwd(fs.read_text(PASSWD))
    shadow_text = _read_optional(fs, SHADOW)
    shadow = parse_shadow(shadow_text) if shadow_text is not None else {}
    shells_text = _read_optional(fs, SHELLS)
    shells = parse_shells(shells_text) if shells_text is not None else None
    accounts: list[Account] = []
    for fields, line in entries:
        name, pw_field, uid, gid, _, home, shell = fields
        if pw_field == "x":
            state, day = shadow.get(name, (PASSWORD_UNKNOWN, None))
        else:  # the hash (or its absence) sits in passwd itself
            state, day = password_state(pw_field), None
        try:
            home_ctime: float | None = fs.stat(home).st_ctime if home else None
        except OSError:
            home_ctime = None
        login = (
            shell in shells if shells is not None else shell.rsplit("/", 1)[-1] in FALLBACK_SHELLS
        )
        masked = ":".join([name, mask_password(pw_field), *fields[2:]])
        accounts.append(
            Account(
                name=name,
                uid=int(uid),
                gid=int(gid),
                home=home,
                shell=shell,
                login_shell=login,
                password=state,
                changed_day=day,
                home_ctime=home_ctime,
                entry=FileLine(line.path, line.line_no, masked),
            )
        )
    defs = _read_optional(fs, LOGIN_DEFS)
    return AccountFacts(
        accounts=tuple(accounts),
        key_files=tuple(_key_files(fs, accounts)),
        uid_min=parse_uid_min(defs) if defs is not None else DEFAULT_UID_MIN,
        shadow_read=shadow_text is not None,
        skipped_lines=skipped,
        read_at=read_at,
    )

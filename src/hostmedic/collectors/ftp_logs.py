"""Who failed to log in to FTP, and who is banned for it (seed 004: "entering a wrong
password several times may get your IP blocked").

Failed logins come from the FTP servers' own logs (vsftpd's ``FAIL LOGIN``, pure-ftpd's
``Authentication failed``, ProFTPD's ``Login failed`` / ``SECURITY VIOLATION``) and PAM's
lines in the auth log; bans from fail2ban's database (read-only) and from the firewall
elements its actions add (``addr-set-<jail>`` sets, ``f2b-<jail>`` chains). Only jails
whose name contains "ftp" count. Parsing is pure; reading is bounded (the last
``TAIL_BYTES`` of each log).
"""

from __future__ import annotations

import ipaddress
import os
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field

from hostmedic.facts import netfilter as nf
from hostmedic.facts.ftp import Ban, FailedLogins, Refusals
from hostmedic.facts.netfilter import Ruleset

TAIL_BYTES = 16 << 20
FAIL2BAN_DB = "/var/lib/fail2ban/fail2ban.sqlite3"
AUTH_LOGS = ("/var/log/auth.log", "/var/log/secure")
SYSLOGS = ("/var/log/syslog", "/var/log/messages")

_FAILED = [
    # vsftpd's own log: [pid 27202] [anonymous] FAIL LOGIN: Client "64.106.46.98"
    re.compile(r'\[pid \d+\] \[(?P<user>[^\]]*)\] FAIL LOGIN: Client "(?P<ip>[^"]+)"'),
    # PAM via syslog: vsftpd: pam_unix(vsftpd:auth): authentication failure; ... rhost=1.2.3.4
    re.compile(r"vsftpd.*authentication failure;.*\brhost=(?P<ip>\S+)(?:\s+user=(?P<user>\S+))?"),
    # pure-ftpd: (?@24.79.92.194) [WARNING] Authentication failed for user [Administrator]
    re.compile(
        r"pure-ftpd(?:\[\d+\])?: \([^@)]*@(?P<ip>[^)]+)\) \[WARNING\] "
        r"Authentication failed for user \[(?P<user>[^\]]*)\]"
    ),
    # proftpd[12345] host (name[1.2.3.4]): USER bob (Login failed): Incorrect password.
    re.compile(
        r"proftpd\[\d+\]:? \S+ \(\S*?\[(?P<ip>[^\]]+)\]\)[: -]+"
        r"(?:USER (?P<user>\S+)(?: \(Login failed\))?: |SECURITY VIOLATION: (?P<root>\S+) login"
        r"|Maximum login attempts)"
    ),
]


def _clean_ip(text: str) -> str | None:
    raw = text.strip().removeprefix("::ffff:")
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        return None


@dataclass
class _Tally:
    count: int = 0
    first: int = 0
    last: int = 0
    users: dict[str, None] = field(default_factory=dict)


def parse_failed_logins(text: str, log_file: str, first_line: int = 1) -> list[FailedLogins]:
    """Failed FTP logins per client address in a log excerpt whose first line is number
    ``first_line`` of ``log_file``. Lines of other programs are ignored."""
    tallies: dict[str, _Tally] = {}
    for number, line in enumerate(text.splitlines(), start=first_line):
        if "ftpd" not in line and "FAIL LOGIN" not in line:  # cheap: most lines are others'
            continue
        for pattern in _FAILED:
            found = pattern.search(line)
            if not found:
                continue
            ip = _clean_ip(found.group("ip"))
            if ip is None:
                break
            tally = tallies.setdefault(ip, _Tally(first=number))
            tally.count += 1
            tally.last = number
            user = found.groupdict().get("user") or found.groupdict().get("root")
            if user and len(tally.users) < 5:
                tally.users[user] = None
            break
    return [
        FailedLogins(ip, t.count, log_file, t.first, t.last, tuple(t.users))
        for ip, t in sorted(tallies.items(), key=lambda kv: -kv[1].count)
    ]


_REFUSED = re.compile(r'CONNECT: Client "(?P<ip>[^"]+)", "Connection refused: too many sessions')


def parse_refusals(text: str, log_file: str, first_line: int = 1) -> Refusals | None:
    """vsftpd's record of the connections it answered with 421 (too many sessions, all
    clients or per address), or None when there is none."""
    count = per_address = first = last = 0
    for number, line in enumerate(text.splitlines(), start=first_line):
        if "Connection refused: too many sessions" not in line or not _REFUSED.search(line):
            continue
        count += 1
        per_address += "for this address" in line
        first, last = first or number, number
    return Refusals(log_file, count, per_address, first, last) if count else None


def read_tail(path: str, limit: int = TAIL_BYTES) -> tuple[str, int, bool]:
    """(text, number of its first line, whether the file was cut) of a log's last
    ``limit`` bytes. Lines before the tail are counted, not kept, so numbers are real."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        start = max(size - limit, 0)
        skipped_lines = 0
        while f.tell() < start:
            chunk = f.read(min(1 << 20, start - f.tell()))
            if not chunk:
                break
            skipped_lines += chunk.count(b"\n")
        data = f.read(limit)
    if start:
        cut = data.find(b"\n") + 1  # the first line of the tail is partial
        skipped_lines += 1 if cut else 0
        data = data[cut:]
    return data.decode("utf-8", "replace"), skipped_lines + 1, start > 0


def fail2ban_bans(db_path: str, now: float) -> list[Ban]:
    """Active bans of FTP jails in fail2ban's database (opened read-only)."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=2.0) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        table = "bips" if "bips" in tables else "bans"
        rows = db.execute(f"SELECT ip, jail, timeofban, bantime FROM {table}").fetchall()
    bans: dict[tuple[str, str], Ban] = {}
    for ip, jail, banned_at, bantime in rows:
        if "ftp" not in str(jail).lower() or not isinstance(banned_at, int | float):
            continue
        until = None if bantime is None or bantime < 0 else float(banned_at + bantime)
        if until is not None and until <= now:
            continue
        clean = _clean_ip(str(ip))
        if clean:
            bans[(clean, str(jail))] = Ban(clean, str(jail), db_path, float(banned_at), until)
    return list(bans.values())


_F2B_SET = re.compile(r"addr6?-set-(?P<jail>.+)")


def bans_in_ruleset(ruleset: Ruleset) -> list[Ban]:
    """Addresses fail2ban's firewall actions block for FTP jails: elements of nftables
    sets ``addr-set-<jail>`` in ``f2b-*`` tables, one-address rules of ``f2b-<jail>``
    iptables chains."""
    found: list[Ban] = []
    for s in ruleset.sets:
        named = _F2B_SET.fullmatch(s.name)
        if s.table.startswith("f2b") and named and "ftp" in named["jail"].lower():
            where = f"nft set {s.family} {s.table} {s.name}"
            found += [Ban(ip, named["jail"], where) for e in s.elements if (ip := _clean_ip(e))]
    for chain in ruleset.chains:
        jail = chain.name.removeprefix("f2b-")
        if chain.name == jail or "ftp" not in jail.lower():
            continue
        for rule in chain.rules:
            if rule.verdict != "drop":
                continue
            for m in rule.matches:
                if m.field == nf.SADDR and not m.negate:
                    ips = (_clean_ip(v.removesuffix("/32").removesuffix("/128")) for v in m.values)
                    where = f"{chain.backend} {chain.where} {rule.position}"
                    found += [Ban(ip, jail, where) for ip in ips if ip]
    return found


def log_candidates(kinds: Iterable[str], configured: Iterable[str]) -> list[str]:
    """The log files that may hold failed FTP logins for these server kinds."""
    paths = list(configured)
    kinds = set(kinds)
    if "vsftpd" in kinds:
        paths += AUTH_LOGS
    if "pure-ftpd" in kinds:
        paths += SYSLOGS
    return list(dict.fromkeys(paths))

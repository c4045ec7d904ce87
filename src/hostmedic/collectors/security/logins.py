"""Recent and failed logins (seed 004 §账户 Linux 1 ``last`` / /var/log/secure, and
§排查并修复服务器漏洞 2 "logins from elsewhere"): the auth logs (or the journal), then wtmp
for successful and btmp for failed logins outside the span the logs cover."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from hostmedic.analysis.logins import AuthEvent, LoginTally
from hostmedic.collectors.rootfs import RootFS
from hostmedic.collectors.security.authlog import (
    log_files,
    parse_auth_lines,
    read_journal,
    read_log_file,
)
from hostmedic.collectors.security.utmp import LOGIN_PROCESS, USER_PROCESS, read_utmp
from hostmedic.errors import FactUnavailable
from hostmedic.facts.security import LoginFacts

WTMP, BTMP = "/var/log/wtmp", "/var/log/btmp"
CountryOf = Callable[[str], str | None]


def _feed(
    tally: LoginTally, items: Iterable[AuthEvent | float | None], country_of: CountryOf
) -> None:
    for item in items:
        if item is None:
            tally.skipped += 1
        elif isinstance(item, float):
            tally.cover(item)
        else:
            if item.time is not None:
                tally.cover(item.time)
            tally.add(item, country_of)


def _read_logs(fs: RootFS, tally: LoginTally, country_of: CountryOf) -> None:
    files = log_files(fs)
    for path in files:
        try:
            _feed(tally, read_log_file(fs, path), country_of)
        except OSError:
            continue
        tally.sources.append(path)
    if files:
        return
    journal = read_journal(fs)
    if journal is not None:
        label, lines = journal
        reference = time.localtime()
        _feed(tally, parse_auth_lines(enumerate(lines, 1), label, reference), country_of)
        tally.sources.append(label)


def _read_utmp(fs: RootFS, tally: LoginTally, country_of: CountryOf) -> None:
    for path, success in ((WTMP, True), (BTMP, False)):
        try:
            records, skipped = read_utmp(fs, path)
        except OSError:
            continue
        tally.sources.append(path)
        tally.skipped += skipped
        kinds = (USER_PROCESS,) if success else (LOGIN_PROCESS, USER_PROCESS)
        for r in records:
            if r.kind not in kinds or not r.user or tally.covered(r.time):
                continue
            method = "session" if success else "btmp"
            event = AuthEvent(r.time, r.user, r.host, success, method, path, r.index, binary=True)
            tally.add(event, country_of)


def read_logins(fs: RootFS, country_of: CountryOf, home_country: str | None) -> LoginFacts:
    """Logins and failed attempts of the machine at ``fs``; FactUnavailable when it keeps
    no login records hostmedic can read."""
    read_at = time.time()
    tally = LoginTally()
    _read_logs(fs, tally, country_of)
    _read_utmp(fs, tally, country_of)
    if not tally.sources:
        raise FactUnavailable("no auth log, journal, wtmp or btmp", key="reason.no_login_records")
    return tally.facts(home_country, read_at, country_of)

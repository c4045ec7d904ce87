"""Tally login events into the facts the account rules judge (pure: no I/O, no clock).

Events come from the auth logs (auth.log / secure / the journal) and from wtmp / btmp.
Both record the same SSH logins, so wtmp / btmp only count outside the time span the auth
logs cover: no login is counted twice, and a log an intruder emptied still leaves the
binary records. Memory grows with the number of distinct addresses and users, not with
the number of attempts (a brute-force run writes millions of lines).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from hostmedic.facts.security import FailureGroup, Login, LoginFacts

MAX_LOGINS = 200
MAX_GROUPS = 200
SAMPLE = 5


class AuthEvent(NamedTuple):
    """One login attempt as a log or utmp file recorded it (a tuple: millions are made
    while a brute-force log is read)."""

    time: float | None
    user: str
    host: str
    success: bool
    method: str
    source: str  # the file (or command) it came from
    position: int  # line number, or utmp record index
    repeats: int = 1  # "message repeated N times"
    binary: bool = False  # from wtmp/btmp (positions are record indexes)


def is_remote(host: str) -> bool:
    """A login over the network (not the console, not an X display)."""
    return bool(host) and not host.startswith(":")


@dataclass
class _Group:
    count: int = 0
    others: dict[str, None] = field(default_factory=dict)  # insertion-ordered set
    first: float | None = None
    last: float | None = None
    spans: dict[tuple[str, bool], list[int]] = field(default_factory=dict)

    def add(self, other: str, event: AuthEvent) -> None:
        """Count one failure against this group, ``other`` being the other side."""
        # hot path of a brute-force log (millions of lines): plain comparisons only
        self.count += event.repeats
        if other not in self.others:
            self.others[other] = None
        t = event.time
        if t is not None:
            if self.first is None or t < self.first:
                self.first = t
            if self.last is None or t > self.last:
                self.last = t
        pos = event.position
        span = self.spans.get((event.source, event.binary))
        if span is None:
            self.spans[(event.source, event.binary)] = [pos, pos]
        elif pos > span[1]:
            span[1] = pos
        elif pos < span[0]:
            span[0] = pos


def _span_text(source: str, binary: bool, span: list[int]) -> str:
    if binary:
        return f"{source}#{span[0]}-{span[1]}"
    return f"{source} lines {span[0]}-{span[1]}"


def _position_text(event: AuthEvent) -> str:
    return f"{event.source}{'#' if event.binary else ':'}{event.position}"


class LoginTally:
    """Accumulates events; :meth:`facts` returns the bounded :class:`LoginFacts`."""

    def __init__(self) -> None:
        self._logins: list[Login] = []
        self._by_host: dict[str, _Group] = {}
        self._by_user: dict[str, _Group] = {}
        self.sources: list[str] = []
        self.skipped = 0
        self.log_span: tuple[float, float] | None = None  # what the auth logs cover

    def cover(self, time_s: float) -> None:
        """Widen the span the auth logs cover (any sshd line counts, not only logins)."""
        lo, hi = self.log_span or (time_s, time_s)
        self.log_span = (min(lo, time_s), max(hi, time_s))

    def covered(self, time_s: float) -> bool:
        """True when the auth logs already cover this moment (wtmp/btmp then defer)."""
        return self.log_span is not None and self.log_span[0] <= time_s <= self.log_span[1]

    def add(self, event: AuthEvent, country_of: Callable[[str], str | None]) -> None:
        """Count one event (a success becomes a :class:`Login`, a failure joins its groups)."""
        if event.success:
            if is_remote(event.host):
                self._logins.append(
                    Login(
                        event.user,
                        event.host,
                        event.time or 0.0,
                        event.method,
                        _position_text(event),
                        country_of(event.host),
                    )
                )
                if len(self._logins) > 4 * MAX_LOGINS:  # keep the newest, bounded
                    self._logins = self._newest(self._logins)
            return
        if is_remote(event.host):
            self._by_host.setdefault(event.host, _Group()).add(event.user, event)
        if event.user:
            self._by_user.setdefault(event.user, _Group()).add(event.host or "-", event)

    @staticmethod
    def _newest(logins: list[Login]) -> list[Login]:
        return sorted(logins, key=lambda x: x.time)[-MAX_LOGINS:]

    def facts(
        self, home_country: str | None, read_at: float, country_of: Callable[[str], str | None]
    ) -> LoginFacts:
        """The tallied facts: newest logins, biggest failure groups first."""
        by_host = sorted(self._by_host.items(), key=lambda kv: (-kv[1].count, kv[0]))
        by_user = sorted(
            self._by_user.items(), key=lambda kv: (-len(kv[1].others), -kv[1].count, kv[0])
        )
        return LoginFacts(
            logins=tuple(self._newest(self._logins)),
            failures_by_host=tuple(_group(k, g, country_of(k)) for k, g in by_host[:MAX_GROUPS]),
            failures_by_user=tuple(_group(k, g, None) for k, g in by_user[:MAX_GROUPS]),
            sources=tuple(self.sources),
            skipped=self.skipped,
            home_country=home_country,
            read_at=read_at,
        )


def _group(key: str, g: _Group, country: str | None) -> FailureGroup:
    return FailureGroup(
        key=key,
        count=g.count,
        others=tuple(list(g.others)[:SAMPLE]),
        distinct_others=len(g.others),
        first_time=g.first,
        last_time=g.last,
        sources=tuple(_span_text(s, b, span) for (s, b), span in g.spans.items()),
        country=country,
    )

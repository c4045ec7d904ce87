"""Facts about the web server's access logs over one time window (seed 004: bandwidth-full
and CPU-full causes, CC attacks, HTTP 404/502/503/504).

Everything is already aggregated: top clients, URLs, crawlers, referers, status codes and
per-minute counts, with the file and line numbers behind each, so rules stay pure and a
saved bundle is small. Times are UTC epoch seconds; ``utc_offset_s`` is the offset the log
itself was written in (reports show the log's own clock). Counts are exact unless
``pruned_below`` > 0: then entries with fewer requests than that were dropped to bound
memory, and every count is a lower bound off by at most that much.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


def percent(part: float, whole: float) -> int:
    """``part`` as a whole percentage of ``whole`` (0 when ``whole`` is 0)."""
    return round(100 * part / whole) if whole > 0 else 0


@dataclass(frozen=True, slots=True)
class LineSpan:
    """Lines ``first_line``..``last_line`` (1-based, inclusive) of one log file."""

    path: str
    first_line: int
    last_line: int


@dataclass(frozen=True, slots=True)
class MalformedLine:
    path: str
    line: int
    excerpt: str


@dataclass(frozen=True, slots=True)
class LogSource:
    """One log file read: its format, how many lines, which lines fell in the window, and
    what could not be used (``skipped_key``: a ``reason.weblogs.*`` key when the file was
    not analysed at all)."""

    path: str
    format_name: str
    compressed: bool
    size_bytes: int
    lines_total: int
    lines_in_window: int
    malformed_lines: int
    too_long_lines: int
    window_lines: LineSpan | None
    first_s: int | None
    last_s: int | None
    has_bytes: bool = True
    has_referer: bool = True
    has_user_agent: bool = True
    skipped_key: str = ""
    note: str = ""


@dataclass(frozen=True, slots=True)
class ClientUsage:
    """One client address: its requests and bytes in the window, and its busiest minute."""

    ip: str
    requests: int
    bytes_sent: int
    peak_minute_s: int
    peak_minute_requests: int
    top_path: str
    top_path_requests: int
    crawler: str
    lines: tuple[LineSpan, ...]


@dataclass(frozen=True, slots=True)
class PathUsage:
    """One URL path (no query string): requests and bytes, its kind (download / image /
    asset / page) and extension."""

    path: str
    requests: int
    bytes_sent: int
    kind: str
    extension: str


@dataclass(frozen=True, slots=True)
class PathBurst:
    """One URL's busiest minute: how many requests, from how many addresses."""

    path: str
    minute_s: int
    requests: int
    distinct_ips: int
    top_ip: str
    top_ip_requests: int
    window_requests: int
    lines: tuple[LineSpan, ...]


@dataclass(frozen=True, slots=True)
class CrawlerUsage:
    name: str
    generic: bool
    requests: int
    bytes_sent: int
    distinct_ips: int
    top_ips: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class RefererUsage:
    """Media/download requests that came with another site's page as referer."""

    host: str
    requests: int
    bytes_sent: int
    top_paths: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class StatusUsage:
    """One HTTP status code: its count, busiest minute, and where it came from."""

    status: int
    requests: int
    peak_minute_s: int
    peak_minute_requests: int
    top_paths: tuple[tuple[str, int], ...]
    top_ips: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class KindUsage:
    """Requests and bytes of one kind of file (download / image / asset / page)."""

    kind: str
    requests: int
    bytes_sent: int


@dataclass(frozen=True, slots=True)
class MinuteCount:
    minute_s: int
    requests: int
    client_errors: int
    server_errors: int


@dataclass(frozen=True, slots=True)
class WeblogFacts:
    """The access logs' story over ``since_s``..``until_s`` (the window the rules judge)."""

    read_at: float
    since_s: int
    until_s: int
    utc_offset_s: int
    sources: tuple[LogSource, ...]
    requests: int
    bytes_sent: int
    distinct_ips: int
    clients: tuple[ClientUsage, ...]
    paths_by_bytes: tuple[PathUsage, ...]
    paths_by_requests: tuple[PathUsage, ...]
    path_bursts: tuple[PathBurst, ...]
    crawlers: tuple[CrawlerUsage, ...]
    referers: tuple[RefererUsage, ...]
    hotlink_requests: int
    hotlink_bytes: int
    kinds: tuple[KindUsage, ...]
    own_hosts: tuple[str, ...]
    own_hosts_inferred: bool
    statuses: tuple[StatusUsage, ...]
    minutes: tuple[MinuteCount, ...]
    malformed_examples: tuple[MalformedLine, ...]
    pruned_below: int = 0
    burst_floor: int = 0

    @property
    def window_s(self) -> int:
        """Length of the judged window (at least one minute)."""
        return max(60, self.until_s - self.since_s)

    def clock(self, seconds: int) -> str:
        """``2026-11-19 10:05 +0800``: a time as the log itself writes it."""
        zone = dt.timezone(dt.timedelta(seconds=self.utc_offset_s))
        return dt.datetime.fromtimestamp(seconds, zone).strftime("%Y-%m-%d %H:%M %z")

    def window_text(self) -> str:
        return f"{self.clock(self.since_s)} – {self.clock(self.until_s)}"

    @property
    def malformed_lines(self) -> int:
        return sum(s.malformed_lines + s.too_long_lines for s in self.sources)

"""Merge chunk counts into one bounded window, then roll it up into :class:`WeblogFacts`.

Memory stays bounded however many distinct addresses or URLs the log holds (a CC attack
with random paths, a botnet of a million addresses): each table is a plain dict that,
past ``max_keys`` entries, keeps its larger half and forgets the rest — lossy counting
in the spirit of Manku & Motwani. The largest count ever dropped is kept as
``pruned_below``: any key still present is undercounted by at most that much, and any
key with more requests than that survives, so the heavy hitters the rules look for are
never the ones lost. Plain dicts were chosen over a count-min sketch because the report
needs the keys themselves (which address, which URL) and exact counts in the common case
where nothing is pruned; a space-saving summary would cost a heap update per line.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from hostmedic.analysis.weblog_scan import KIND_NAMES, ChunkStats, Tables
from hostmedic.facts.weblogs import (
    ClientUsage,
    CrawlerUsage,
    KindUsage,
    LineSpan,
    MalformedLine,
    MinuteCount,
    PathBurst,
    PathUsage,
    RefererUsage,
    StatusUsage,
    WeblogFacts,
)

K = TypeVar("K")
MAX_KEYS = 200_000
MAX_BURSTS = 20_000
EXAMPLES = 10
_SECOND_LEVEL = {b"com", b"net", b"org", b"gov", b"edu", b"ac", b"co", b"ne", b"or", b"go"}


def text(raw: bytes) -> str:
    """Log bytes → str for facts and reports; bytes that are not UTF-8 stay visible."""
    return raw.decode("utf-8", "backslashreplace")


def site_of(host: str) -> str:
    """The registrable part of a host name (``img.example.com.cn`` → ``example.com.cn``),
    good enough to tell a site's own subdomains from another site; addresses as is."""
    raw = host.lower().rstrip(".").encode()
    labels = raw.split(b".")
    if raw.replace(b".", b"").isdigit() or b":" in raw or len(labels) <= 2:
        return host.lower()
    keep = 3 if len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL else 2
    return text(b".".join(labels[-keep:]))


def _add_pairs(into: dict[Any, list[int]], more: dict[Any, list[int]]) -> None:
    for key, (requests, size) in more.items():
        have = into.get(key)
        if have is None:
            into[key] = [requests, size]
        else:
            have[0] += requests
            have[1] += size


def _add_counts(into: dict[Any, int], more: dict[Any, int]) -> None:
    for key, count in more.items():
        into[key] = into.get(key, 0) + count


def _top(items: Iterable[tuple[K, Any]], n: int, by: Callable[[Any], Any]) -> list[tuple[K, Any]]:
    return heapq.nlargest(n, items, key=lambda kv: by(kv[1]))


@dataclass(slots=True)
class SourceTally:
    """What was seen of one file: lines, malformed lines, the window's line span, times."""

    lines: int = 0
    malformed: int = 0
    requests: int = 0
    first_line: int = 0
    last_line: int = 0
    first_s: int | None = None
    last_s: int | None = None


@dataclass(slots=True)
class WindowStats(Tables):
    """Every chunk merged; :meth:`add` is called in file order."""

    source_paths: list[str]
    max_keys: int = MAX_KEYS
    tallies: list[SourceTally] = field(default_factory=list)
    requests: int = 0
    bytes_sent: int = 0
    offset_s: int = 0
    pruned_below: int = 0
    minutes: dict[int, list[int]] = field(default_factory=dict)  # [requests, 4xx, 5xx]
    spans: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    examples: list[MalformedLine] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.tallies = [SourceTally() for _ in self.source_paths]

    def add(self, chunk: ChunkStats) -> None:
        """Merge one chunk's counts, then bound every table."""
        tally = self.tallies[chunk.source]
        tally.lines += chunk.lines
        tally.malformed += chunk.malformed
        tally.requests += chunk.requests
        if chunk.requests:
            tally.first_line = tally.first_line or chunk.first_line
            tally.last_line = max(tally.last_line, chunk.last_line)
        if chunk.first_s is not None and chunk.last_s is not None:
            tally.first_s = min(tally.first_s or chunk.first_s, chunk.first_s)
            tally.last_s = max(tally.last_s or chunk.last_s, chunk.last_s)
            self.offset_s = chunk.offset_s
        for line_no, raw in chunk.examples:
            if len(self.examples) < EXAMPLES:
                self.examples.append(
                    MalformedLine(self.source_paths[chunk.source], line_no, text(raw))
                )
        self.requests += chunk.requests
        self.bytes_sent += chunk.bytes_sent
        for minute, (requests, client, server, first, last) in chunk.minutes.items():
            row = self.minutes.setdefault(minute, [0, 0, 0])
            row[0] += requests
            row[1] += client
            row[2] += server
            span = self.spans.setdefault((chunk.source, minute), [first, last])
            span[0], span[1] = min(span[0], first), max(span[1], last)
        for name in Tables.PAIRS:
            _add_pairs(getattr(self, name), getattr(chunk, name))
        for name in Tables.COUNTS:
            _add_counts(getattr(self, name), getattr(chunk, name))
        self._add_bursts(self.ip_bursts, chunk.ip_bursts, chunk.source)
        self._add_bursts(self.path_bursts, chunk.path_bursts, chunk.source)
        self._bound()

    @staticmethod
    def _add_bursts(
        into: dict[tuple[bytes, int], list[Any]],
        more: dict[tuple[bytes, int], list[Any]],
        source: int,
    ) -> None:
        """A pair seen in two chunks (two files of one minute) adds up; the details (line
        span, top counterpart) are those of its bigger part."""
        for key, value in more.items():
            have = into.get(key)
            if have is None:
                into[key] = [*value, source]
            else:
                total = have[0] + value[0]
                if value[0] > have[0]:
                    have[:] = [*value, source]
                have[0] = total

    def _bound(self) -> None:
        quarter = self.max_keys // 4
        for table, limit, with_bytes in (
            (self.ips, self.max_keys, True),
            (self.paths, self.max_keys, True),
            (self.referers, quarter, True),
            (self.status_paths, quarter, False),
            (self.status_ips, quarter, False),
            (self.crawler_ips, quarter, False),
            (self.referer_paths, quarter, False),
            (self.asset_referers, quarter, False),
            (self.ip_bursts, MAX_BURSTS, False),
            (self.path_bursts, MAX_BURSTS, False),
        ):
            if len(table) > limit:
                self._prune(table, limit // 2, with_bytes)

    def _prune(self, table: dict[Any, Any], keep: int, with_bytes: bool) -> None:
        def count(value: Any) -> int:
            return int(value[0] if isinstance(value, list) else value)

        kept = dict(_top(table.items(), keep, count))
        if with_bytes:  # [requests, bytes]: a key heavy in bytes stays even if light in requests
            kept.update(_top(table.items(), keep // 4, lambda v: v[1]))
        dropped = max((count(v) for k, v in table.items() if k not in kept), default=0)
        self.pruned_below = max(self.pruned_below, dropped)
        table.clear()
        table.update(kept)

    def span(self, source: int, first: int, last: int) -> LineSpan:
        return LineSpan(self.source_paths[source], first, last)


def _extension(path: str) -> str:
    dot, slash = path.rfind("."), path.rfind("/")
    return path[dot + 1 :].lower() if dot > slash else ""


def _pairs_for(
    table: dict[tuple[Any, bytes], int], first: Any, n: int
) -> tuple[tuple[str, int], ...]:
    picked = [(key[1], count) for key, count in table.items() if key[0] == first]
    return tuple((text(k), c) for k, c in heapq.nlargest(n, picked, key=lambda kv: kv[1]))


def roll_up(
    stats: WindowStats,
    *,
    top_n: int,
    kinds: dict[str, str],
    generic_crawlers: frozenset[str],
    site_hosts: tuple[str, ...],
    **window: Any,
) -> WeblogFacts:
    """The window's facts: top lists, bursts, crawler and referer shares out of the
    merged counts; ``window`` holds what the collector knows (clock, window, sources)."""
    own, inferred = _own_hosts(stats, site_hosts)
    foreign = _foreign(stats, own)
    return WeblogFacts(
        **window,
        requests=stats.requests,
        bytes_sent=stats.bytes_sent,
        distinct_ips=len(stats.ips),
        clients=_clients(stats, top_n),
        paths_by_bytes=_paths(stats, top_n, kinds, by_bytes=True),
        paths_by_requests=_paths(stats, top_n, kinds, by_bytes=False),
        path_bursts=_path_bursts(stats, top_n),
        crawlers=_crawlers(stats, generic_crawlers),
        referers=_foreign_referers(stats, foreign, top_n),
        hotlink_requests=sum(v[0] for _, v in foreign),
        hotlink_bytes=sum(v[1] for _, v in foreign),
        kinds=_kinds(stats, kinds),
        own_hosts=own,
        own_hosts_inferred=inferred,
        statuses=_statuses(stats),
        minutes=tuple(MinuteCount(m, *row) for m, row in sorted(stats.minutes.items())),
        malformed_examples=tuple(stats.examples),
        pruned_below=stats.pruned_below,
    )


def _clients(stats: WindowStats, top_n: int) -> tuple[ClientUsage, ...]:
    peaks: dict[bytes, tuple[int, list[Any]]] = {}
    for (ip, minute), value in stats.ip_bursts.items():
        if ip not in peaks or value[0] > peaks[ip][1][0]:
            peaks[ip] = (minute, value)
    chosen = [ip for ip, _ in _top(stats.ips.items(), top_n, lambda v: v[0])]
    chosen += [ip for ip, _ in _top(peaks.items(), top_n, lambda v: v[1][0]) if ip not in chosen]
    crawler_of: dict[bytes, tuple[str, int]] = {}
    for (name, ip), count in stats.crawler_ips.items():
        if count > crawler_of.get(ip, ("", 0))[1]:
            crawler_of[ip] = (name, count)
    rows = []
    for ip in chosen:
        requests, size = stats.ips.get(ip, [0, 0])
        minute, burst = peaks.get(ip, (0, [0, 0, 0, b"", 0, 0]))
        name, crawled = crawler_of.get(ip, ("", 0))
        rows.append(
            ClientUsage(
                ip=text(ip),
                requests=requests,
                bytes_sent=size,
                peak_minute_s=minute,
                peak_minute_requests=burst[0],
                top_path=text(burst[3]),
                top_path_requests=burst[4],
                crawler=name if crawled * 2 >= max(requests, 1) else "",
                lines=(stats.span(burst[5], burst[1], burst[2]),) if burst[0] else (),
            )
        )
    return tuple(sorted(rows, key=lambda c: (-c.requests, c.ip)))


def _paths(
    stats: WindowStats, top_n: int, kinds: dict[str, str], *, by_bytes: bool
) -> tuple[PathUsage, ...]:
    rows = _top(stats.paths.items(), top_n, lambda v: v[1] if by_bytes else v[0])
    out = []
    for raw, (requests, size) in rows:
        path = text(raw)
        ext = _extension(path)
        out.append(PathUsage(path, requests, size, kinds.get(ext, KIND_NAMES[0]), ext))
    return tuple(out)


def _path_bursts(stats: WindowStats, top_n: int) -> tuple[PathBurst, ...]:
    best: dict[bytes, tuple[int, list[Any]]] = {}
    for (path, minute), value in stats.path_bursts.items():
        if path not in best or value[0] > best[path][1][0]:
            best[path] = (minute, value)
    out = []
    for path, (minute, v) in _top(best.items(), top_n, lambda mv: mv[1][0]):
        count, first, last, distinct, top_ip, top_count, source = v
        out.append(
            PathBurst(
                text(path),
                minute,
                count,
                distinct,
                text(top_ip),
                top_count,
                stats.paths.get(path, [count])[0],
                (stats.span(source, first, last),),
            )
        )
    return tuple(out)


def _crawlers(stats: WindowStats, generic: frozenset[str]) -> tuple[CrawlerUsage, ...]:
    out = []
    for name, (requests, size) in stats.crawlers.items():
        ips = [(ip, c) for (n, ip), c in stats.crawler_ips.items() if n == name]
        top = heapq.nlargest(5, ips, key=lambda kv: kv[1])
        out.append(
            CrawlerUsage(
                name, name in generic, requests, size, len(ips), tuple((text(i), c) for i, c in top)
            )
        )
    return tuple(sorted(out, key=lambda c: (-c.requests, c.name)))


def _own_hosts(stats: WindowStats, configured: tuple[str, ...]) -> tuple[tuple[str, ...], bool]:
    """The site's own host names: configured (server_name, --site-host), else the host
    that refers most of the site's own CSS/JS/images."""
    if configured:
        return tuple(sorted({h.lower() for h in configured})), False
    if not stats.asset_referers:
        return (), True
    top = max(stats.asset_referers.items(), key=lambda kv: kv[1])[0]
    return (text(top),), True


def _foreign(stats: WindowStats, own: tuple[str, ...]) -> list[tuple[bytes, list[int]]]:
    """Referer hosts of downloads and images that are not the site itself."""
    if not own:
        return []
    own_sites = {site_of(h.lstrip("*.")) for h in own}
    return [(h, v) for h, v in stats.referers.items() if site_of(text(h)) not in own_sites]


def _kinds(stats: WindowStats, kinds: dict[str, str]) -> tuple[KindUsage, ...]:
    totals: dict[str, list[int]] = {name: [0, 0] for name in KIND_NAMES}
    for raw, (requests, size) in stats.paths.items():
        row = totals[kinds.get(_extension(text(raw)), KIND_NAMES[0])]
        row[0] += requests
        row[1] += size
    return tuple(KindUsage(k, r, b) for k, (r, b) in totals.items())


def _foreign_referers(
    stats: WindowStats, foreign: list[tuple[bytes, list[int]]], top_n: int
) -> tuple[RefererUsage, ...]:
    out = []
    for host, (requests, size) in _top(foreign, top_n, lambda v: v[1]):
        out.append(
            RefererUsage(text(host), requests, size, _pairs_for(stats.referer_paths, host, 3))
        )
    return tuple(out)


def _statuses(stats: WindowStats) -> tuple[StatusUsage, ...]:
    out = []
    for raw, count in stats.statuses.items():
        if not raw.isdigit():
            continue
        minutes = [(m, c) for (s, m), c in stats.status_minutes.items() if s == raw]
        peak_minute, peak = max(minutes, key=lambda mc: mc[1], default=(0, 0))
        out.append(
            StatusUsage(
                int(raw),
                count,
                peak_minute,
                peak,
                _pairs_for(stats.status_paths, raw, 5) if raw >= b"400" else (),
                _pairs_for(stats.status_ips, raw, 5) if raw >= b"400" else (),
            )
        )
    return tuple(sorted(out, key=lambda s: s.status))

"""One chunk of log lines → mergeable counts (:class:`ChunkStats`). Pure, and the part of
``hostmedic logs`` that runs in worker processes.

Chunks hold whole minutes (the reader cuts them where the minute changes), which is what
makes the per-minute burst counts exact while staying small: an (address, minute) or
(URL, minute) pair is kept only when it reaches ``burst_floor`` requests inside the chunk,
and since no minute is split between chunks, no pair that reaches the floor overall can
be below it in every chunk. Everything else is a plain dict count that the merge step
bounds (:mod:`weblog_window`).

The per-line loop is the program's hot spot: local names, tuple keys, no calls per line
except dict methods; the slow paths (a timestamp not seen before, a User-Agent not yet
classified) are cached per distinct value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from hostmedic.analysis.weblog_formats import LogFormat, Record, parse_time
from hostmedic.analysis.weblog_parse import EXAMPLES_KEPT, parse_lines
from hostmedic.gc_pause import cyclic_gc_paused

PAGE, DOWNLOAD, IMAGE, ASSET = 0, 1, 2, 3
KIND_NAMES = ("page", "download", "image", "asset")
CACHE_LIMIT = 50_000  # per-value caches are cleared past this many entries (hostile logs)
NEVER = 1 << 40  # a time after every log's end
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ScanSpec:
    """What a worker needs: the window, the burst floor, crawler patterns (lower-case
    substrings, first match wins) and the file kind of each extension."""

    since_s: int = 0
    until_s: int = NEVER
    burst_floor: int = 60
    crawlers: tuple[tuple[str, tuple[bytes, ...]], ...] = ()
    kinds: tuple[tuple[bytes, int], ...] = ()
    forwarded: bool = False


@dataclass(slots=True, kw_only=True)
class Tables:
    """The counting tables a chunk fills and the window merges, all by addition. Keys
    are raw bytes; ``[requests, bytes]`` values unless said otherwise."""

    PAIRS: ClassVar[tuple[str, ...]] = ("ips", "paths", "crawlers", "referers")
    COUNTS: ClassVar[tuple[str, ...]] = (
        "statuses",
        "status_minutes",
        "status_paths",
        "status_ips",
        "crawler_ips",
        "referer_paths",
        "asset_referers",
    )

    ips: dict[bytes, list[int]] = field(default_factory=dict)
    paths: dict[bytes, list[int]] = field(default_factory=dict)
    statuses: dict[bytes, int] = field(default_factory=dict)
    status_minutes: dict[tuple[bytes, int], int] = field(default_factory=dict)
    status_paths: dict[tuple[bytes, bytes], int] = field(default_factory=dict)
    status_ips: dict[tuple[bytes, bytes], int] = field(default_factory=dict)
    # bursts; the window appends the source index to each value
    # (ip, minute) → [requests, first line, last line, top path, its requests]
    ip_bursts: dict[tuple[bytes, int], list[Any]] = field(default_factory=dict)
    # (path, minute) → [requests, first line, last line, distinct ips, top ip, its requests]
    path_bursts: dict[tuple[bytes, int], list[Any]] = field(default_factory=dict)
    crawlers: dict[str, list[int]] = field(default_factory=dict)
    crawler_ips: dict[tuple[str, bytes], int] = field(default_factory=dict)
    referers: dict[bytes, list[int]] = field(default_factory=dict)
    referer_paths: dict[tuple[bytes, bytes], int] = field(default_factory=dict)
    asset_referers: dict[bytes, int] = field(default_factory=dict)


@dataclass(slots=True)
class ChunkStats(Tables):
    """Counts of one chunk of one source."""

    source: int
    lines: int = 0
    malformed: int = 0
    examples: list[tuple[int, bytes]] = field(default_factory=list)
    requests: int = 0
    bytes_sent: int = 0
    first_line: int = 0
    last_line: int = 0
    first_s: int | None = None
    last_s: int | None = None
    offset_s: int = 0
    w3c_fields: tuple[bytes, ...] = ()
    # minute → [requests, 4xx, 5xx, first line, last line]
    minutes: dict[int, list[int]] = field(default_factory=dict)


def _cached(cache: dict[bytes, T], key: bytes, compute: Callable[[bytes], T]) -> T:
    """``compute(key)``, remembered; a cache past CACHE_LIMIT entries starts over."""
    value = cache.get(key)
    if value is None:
        if len(cache) > CACHE_LIMIT:
            cache.clear()
        value = cache[key] = compute(key)
    return value


def referer_host(referer: bytes) -> bytes:
    """``https://Img.Example.com:8443/a?b`` → ``img.example.com``; b"" when not a URL."""
    start = referer.find(b"//")
    if start < 0:
        return b""
    rest = referer[start + 2 :]
    end = len(rest)
    for stop in (b"/", b"?", b"#", b":"):
        at = rest.find(stop)
        if 0 <= at < end:
            end = at
    host = rest[:end].lower()
    at = host.rfind(b"@")
    return host[at + 1 :] if at >= 0 else host


class Scanner:
    """Scans chunks with one spec; keeps the per-value caches between chunks (a worker
    process holds one for its whole life)."""

    def __init__(self, spec: ScanSpec) -> None:
        self.spec = spec
        self._kinds = dict(spec.kinds)
        self._times: dict[bytes, tuple[int, int, int]] = {}
        self._agents: dict[bytes, str] = {}
        self._paths: dict[bytes, int] = {}
        self._hosts: dict[bytes, bytes] = {}

    def crawler_of(self, agent: bytes) -> str:
        """The crawler a User-Agent names ("" for none), cached per distinct agent."""
        return _cached(self._agents, agent, self._classify)

    def _classify(self, agent: bytes) -> str:
        lowered = agent.lower()
        return next((n for n, pats in self.spec.crawlers if any(p in lowered for p in pats)), "")

    def kind_of(self, path: bytes) -> int:
        """PAGE / DOWNLOAD / IMAGE / ASSET by the path's extension, cached per path."""
        return _cached(self._paths, path, self._kind)

    def _kind(self, path: bytes) -> int:
        dot, slash = path.rfind(b"."), path.rfind(b"/")
        return self._kinds.get(path[dot + 1 :].lower(), PAGE) if dot > slash else PAGE

    def host_of(self, referer: bytes) -> bytes:
        return _cached(self._hosts, referer, referer_host)

    def scan(
        self,
        fmt: LogFormat,
        data: bytes,
        source: int,
        first_line: int,
        w3c_fields: tuple[bytes, ...] = (),
    ) -> ChunkStats:
        """Count one chunk (whole lines, numbered from ``first_line``)."""
        with cyclic_gc_paused():  # ~200k short-lived tuples per chunk and no cycles
            return self._scan(fmt, data, source, first_line, w3c_fields)

    def _scan(
        self,
        fmt: LogFormat,
        data: bytes,
        source: int,
        first_line: int,
        w3c_fields: tuple[bytes, ...],
    ) -> ChunkStats:
        lines = data.split(b"\n")
        if lines and not lines[-1]:
            lines.pop()
        parsed = parse_lines(fmt, lines, first_line, w3c_fields, self.spec.forwarded)
        out = ChunkStats(
            source,
            lines=len(lines),
            malformed=parsed.malformed,
            examples=parsed.examples,
            w3c_fields=parsed.w3c_fields,
        )
        if self._count(fmt, parsed.records, out):
            self._bursts(fmt, parsed.records, out)
        return out

    def _time(self, fmt: LogFormat, text: bytes) -> tuple[int, int, int] | None:
        try:
            seconds, offset = parse_time(fmt, text)
        except (ValueError, KeyError):
            return None
        if len(self._times) > CACHE_LIMIT:
            self._times.clear()
        value = self._times[text] = (seconds, seconds - seconds % 60, offset)
        return value

    def _count(self, fmt: LogFormat, records: list[Record], out: ChunkStats) -> bool:
        """The per-line loop; True when some (address|URL, minute) reached the floor."""
        since, until = self.spec.since_s, self.spec.until_s
        times, kinds = self._times, self._paths
        ips, paths, minutes = out.ips, out.paths, out.minutes
        statuses, crawlers, crawler_ips = out.statuses, out.crawlers, out.crawler_ips
        status_minutes, status_paths, status_ips = (
            out.status_minutes,
            out.status_paths,
            out.status_ips,
        )
        referers, referer_paths, asset_referers = (
            out.referers,
            out.referer_paths,
            out.asset_referers,
        )
        # minute → {address: requests} and {path: requests}: per-line keys stay plain bytes
        ip_minutes: dict[int, dict[bytes, int]] = {}
        path_minutes: dict[int, dict[bytes, int]] = {}
        minute_ips: dict[bytes, int] = {}
        minute_paths: dict[bytes, int] = {}
        agents, hosts = self._agents, self._hosts
        requests = total = first_line = last_line = 0
        first_s, last_s = NEVER, 0
        current_minute, row = -1, [0, 0, 0, 0, 0]
        offset = 0
        for line_no, ip, stamp, path, status, size, referer, agent in records:
            when = times.get(stamp) or self._time(fmt, stamp)
            if when is None:
                out.malformed += 1
                if len(out.examples) < EXAMPLES_KEPT:  # the line itself is gone: its fields
                    out.examples.append((line_no, b"%s [%s] %s" % (ip, stamp, path)))
                continue
            second, minute, offset = when
            if second < first_s:
                first_s = second
            if second > last_s:
                last_s = second
            if second < since or second > until:
                continue
            requests += 1
            total += size
            if not first_line:
                first_line = line_no
            last_line = line_no
            if minute != current_minute:
                current_minute = minute
                row = minutes.get(minute) or minutes.setdefault(minute, [0, 0, 0, line_no, 0])
                minute_ips = ip_minutes.setdefault(minute, {})
                minute_paths = path_minutes.setdefault(minute, {})
            row[0] += 1
            row[4] = line_no
            minute_ips[ip] = minute_ips.get(ip, 0) + 1
            minute_paths[path] = minute_paths.get(path, 0) + 1
            counts = ips.get(ip)
            if counts is None:
                ips[ip] = [1, size]
            else:
                counts[0] += 1
                counts[1] += size
            counts = paths.get(path)
            if counts is None:
                paths[path] = [1, size]
            else:
                counts[0] += 1
                counts[1] += size
            statuses[status] = statuses.get(status, 0) + 1
            if status >= b"400":
                row[2 if status >= b"500" else 1] += 1
                key3 = (status, minute)
                status_minutes[key3] = status_minutes.get(key3, 0) + 1
                key4 = (status, path)
                status_paths[key4] = status_paths.get(key4, 0) + 1
                key4 = (status, ip)
                status_ips[key4] = status_ips.get(key4, 0) + 1
            if agent:
                name = agents.get(agent)
                if name is None:
                    name = self.crawler_of(agent)
                if name:
                    counts2 = crawlers.get(name)
                    if counts2 is None:
                        crawlers[name] = [1, size]
                    else:
                        counts2[0] += 1
                        counts2[1] += size
                    key5 = (name, ip)
                    crawler_ips[key5] = crawler_ips.get(key5, 0) + 1
            kind = kinds.get(path)
            if kind is None:
                kind = self.kind_of(path)
            if kind and len(referer) > 1:
                host = hosts.get(referer)
                if host is None:
                    host = self.host_of(referer)
                if not host:
                    continue
                if kind != DOWNLOAD:  # pages' own images, CSS, JS: who the site is
                    asset_referers[host] = asset_referers.get(host, 0) + 1
                if kind != ASSET:  # what another site may be embedding
                    counts = referers.get(host)
                    if counts is None:
                        referers[host] = [1, size]
                    else:
                        counts[0] += 1
                        counts[1] += size
                    key4 = (host, path)
                    referer_paths[key4] = referer_paths.get(key4, 0) + 1
        out.requests, out.bytes_sent, out.offset_s = requests, total, offset
        if last_s:
            out.first_s, out.last_s = first_s, last_s
        out.first_line, out.last_line = first_line, last_line
        floor = self.spec.burst_floor
        hot_ips = {(k, m): v for m, d in ip_minutes.items() for k, v in d.items() if v >= floor}
        hot_paths = {(k, m): v for m, d in path_minutes.items() for k, v in d.items() if v >= floor}
        out.ip_bursts = {k: [v, 0, 0, b"", 0] for k, v in hot_ips.items()}
        out.path_bursts = {k: [v, 0, 0, 0, b"", 0] for k, v in hot_paths.items()}
        return bool(hot_ips or hot_paths)

    def _bursts(self, fmt: LogFormat, records: list[Record], out: ChunkStats) -> None:
        """Second pass, only over chunks with a burst: what each bursting address asked
        for, and who asked for each bursting URL (distinct addresses, the top one)."""
        by_ip: dict[tuple[bytes, int], dict[bytes, int]] = {}
        by_path: dict[tuple[bytes, int], dict[bytes, int]] = {}
        spans: dict[tuple[int, bytes, int], list[int]] = {}
        hot_ips, hot_paths = out.ip_bursts, out.path_bursts
        since, until = self.spec.since_s, self.spec.until_s
        for line_no, ip, stamp, path, _, _, _, _ in records:
            when = self._times.get(stamp) or self._time(fmt, stamp)
            if when is None or not since <= when[0] <= until:
                continue
            minute = when[1]
            key = (ip, minute)
            if key in hot_ips:
                asked = by_ip.setdefault(key, {})
                asked[path] = asked.get(path, 0) + 1
                span = spans.setdefault((0, ip, minute), [line_no, line_no])
                span[1] = line_no
            key = (path, minute)
            if key in hot_paths:
                askers = by_path.setdefault(key, {})
                askers[ip] = askers.get(ip, 0) + 1
                span = spans.setdefault((1, path, minute), [line_no, line_no])
                span[1] = line_no
        for key, asked in by_ip.items():
            top = max(asked, key=asked.__getitem__)
            first, last = spans[(0, *key)]
            hot_ips[key][1:] = [first, last, top, asked[top]]
        for key, askers in by_path.items():
            top = max(askers, key=askers.__getitem__)
            first, last = spans[(1, *key)]
            hot_paths[key][1:] = [first, last, len(askers), top, askers[top]]

"""The web-log collector: find the access logs, settle the time window on the log's own
clock, stream every file through the scanner (in worker processes when there is a lot to
read) and roll the counts up into :class:`WeblogFacts`.

Work is split by whole-minute chunks of about 4 MiB: the parent reads and decompresses
(sequential I/O, cheap), workers parse and count (the CPU-bound part), the parent merges
in file order. At most two chunks per worker are in flight, so memory stays at a few
chunks plus the bounded tables whatever the size of the logs. Chunks that lie entirely
before the window are counted (their newlines) but not parsed, and whole rotated files
last modified before the window are not opened at all: the default window, the last
hour, costs little even with days of logs around it.
"""

from __future__ import annotations

import collections
import datetime as dt
import multiprocessing
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.pool import AsyncResult, Pool
from typing import TYPE_CHECKING

from hostmedic.analysis.weblog_data import crawlers, extension_kinds, scan_kinds, scan_patterns
from hostmedic.analysis.weblog_formats import LogFormat
from hostmedic.analysis.weblog_parse import W3C_FIELDS, sniff
from hostmedic.analysis.weblog_scan import NEVER, ChunkStats, Scanner, ScanSpec
from hostmedic.analysis.weblog_window import WindowStats, roll_up
from hostmedic.collectors.weblog_files import FoundLog, find_logs, resolve_format, server_names
from hostmedic.collectors.weblog_read import (
    Chunk,
    LogFile,
    iter_chunks,
    last_time,
    read_sample,
    tail_time,
)
from hostmedic.errors import FactUnavailable, UsageError
from hostmedic.facts.weblogs import LineSpan, LogSource, WeblogFacts
from hostmedic.settings_weblogs import WeblogSettings

if TYPE_CHECKING:
    from hostmedic.gather import GatherContext

Progress = Callable[[float], None]
SKIP_MARGIN_S = 300  # a chunk is skipped only when it ends this long before the window
POOL_MIN_BYTES = 32 * 1024 * 1024
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])", re.IGNORECASE)
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class LogRequest:
    """What to read: named files (empty: find them), how to read them, which window."""

    files: tuple[str, ...] = ()
    root: str = "/"
    format_spec: str | None = None
    since: str | None = None
    until: str | None = None
    whole_log: bool = False


def parse_when(value: str, end_s: int, offset_s: int) -> int:
    """``--since``/``--until``: a duration before the log's end (``90m``, ``2h``, ``1d``)
    or a date and time (``2026-11-23 10:00``, ISO 8601; without an offset it is read on
    the log's own clock)."""
    text = value.strip()
    duration = _DURATION.fullmatch(text)
    if duration:
        return end_s - int(float(duration.group(1)) * _UNIT_S[duration.group(2).lower()])
    try:
        moment = dt.datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError as exc:
        raise UsageError("error.weblogs.bad_time", value=value) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone(dt.timedelta(seconds=offset_s)))
    return int(moment.timestamp())


@dataclass(slots=True)
class _Source:
    found: FoundLog
    fmt: LogFormat | None = None
    skipped_key: str = ""
    note: str = ""
    compressed: bool = False
    too_long: int = 0
    skipped_lines: int = 0


def _prepare(found: list[FoundLog], explicit: LogFormat | None) -> list[_Source]:
    """Open each file once to tell its format (explicit > declared > sniffed)."""
    declared = [f.fmt for f in found if f.fmt is not None]
    out = []
    for log in found:
        src = _Source(log)
        try:
            sample = read_sample(log.path)
            with LogFile(log.path) as f:
                src.compressed = f.compressed
        except OSError as exc:
            src.skipped_key, src.note = "reason.weblogs.unreadable", exc.strerror or str(exc)
            out.append(src)
            continue
        src.fmt = explicit or sniff(sample, [log.fmt] if log.fmt else declared)
        if not any(sample):
            src.fmt, src.skipped_key = None, "reason.weblogs.empty"
        elif src.fmt is None:
            src.skipped_key = "reason.weblogs.unknown_format"
            src.note = next((line[:120] for line in sample if line), b"").decode(
                "utf-8", "backslashreplace"
            )
        out.append(src)
    return out


def _log_end(sources: list[_Source]) -> tuple[int, int] | None:
    """(time of the newest line, its UTC offset): plain files first (read from the end);
    gzip ones only when no plain file has a timestamp."""
    for compressed in (False, True):
        ends: list[tuple[int, int]] = []
        for src in sources:
            if src.fmt is None or src.compressed != compressed:
                continue
            try:
                end = tail_time(src.found.path, src.fmt)
            except OSError:
                continue
            if end is not None:
                ends.append(end)
        if ends:
            return max(e[0] for e in ends), max(ends)[1]
    return None


_SCANNER: Scanner | None = None


def _worker_init(spec: ScanSpec) -> None:
    global _SCANNER
    _SCANNER = Scanner(spec)


def _worker_scan(task: tuple[LogFormat, bytes, int, int, tuple[bytes, ...]]) -> ChunkStats:
    assert _SCANNER is not None, "worker started without its spec"
    return _SCANNER.scan(*task)


class _Runner:
    """Scans chunks in this process or in a pool, and merges results in order."""

    def __init__(self, spec: ScanSpec, stats: WindowStats, jobs: int) -> None:
        self._stats = stats
        self._local = Scanner(spec) if jobs <= 1 else None
        self._pool: Pool | None = None
        self._pending: collections.deque[AsyncResult[ChunkStats]] = collections.deque()
        self._limit = 2 * jobs
        if jobs > 1:
            context = multiprocessing.get_context("fork")
            self._pool = context.Pool(jobs, initializer=_worker_init, initargs=(spec,))

    def submit(self, task: tuple[LogFormat, bytes, int, int, tuple[bytes, ...]]) -> None:
        if self._pool is None:
            assert self._local is not None
            self._stats.add(self._local.scan(*task))
            return
        while len(self._pending) >= self._limit:
            self._stats.add(self._pending.popleft().get())
        self._pending.append(self._pool.apply_async(_worker_scan, (task,)))

    def finish(self) -> None:
        while self._pending:
            self._stats.add(self._pending.popleft().get())

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()


def _outside(chunk: Chunk, fmt: LogFormat, since: int, until: int) -> int | None:
    """The chunk's last time when the whole chunk lies before the window (then it need not
    be parsed; lines are in time order, give or take ``SKIP_MARGIN_S``)."""
    if since <= 0 or fmt.kind == "w3c":
        return None
    end = last_time(fmt, chunk.data)
    if end is not None and end[0] < since - SKIP_MARGIN_S:
        return end[0]
    return None


def _scan_all(
    sources: list[_Source], spec: ScanSpec, stats: WindowStats, jobs: int, progress: Progress | None
) -> None:
    total = sum(max(s.found.size_bytes, 0) for s in sources if s.fmt and not s.skipped_key) or 1
    done = 0
    runner = _Runner(spec, stats, jobs)
    try:
        for index, src in enumerate(sources):
            if src.fmt is None or src.skipped_key:
                continue
            fields: tuple[bytes, ...] = ()
            with LogFile(src.found.path) as log:
                for chunk in iter_chunks(log, src.fmt):
                    src.too_long += len(chunk.too_long)
                    if _outside(chunk, src.fmt, spec.since_s, spec.until_s) is not None:
                        src.skipped_lines += chunk.lines
                    else:
                        runner.submit((src.fmt, chunk.data, index, chunk.first_line, fields))
                    at = chunk.data.rfind(W3C_FIELDS)
                    if at >= 0:
                        end = chunk.data.find(b"\n", at)
                        fields = tuple(chunk.data[at + len(W3C_FIELDS) : end].split())
                    if progress is not None:
                        progress(min(1.0, (done + chunk.position) / total))
                src.note = log.note
            done += max(src.found.size_bytes, 0)
        runner.finish()
    finally:
        runner.close()


def _source_facts(src: _Source, stats: WindowStats, index: int) -> LogSource:
    tally = stats.tallies[index]
    fmt = src.fmt
    return LogSource(
        path=src.found.path,
        format_name=fmt.name if fmt else "",
        compressed=src.compressed,
        size_bytes=max(src.found.size_bytes, 0),
        lines_total=tally.lines + src.skipped_lines,
        lines_in_window=tally.requests,
        malformed_lines=tally.malformed,
        too_long_lines=src.too_long,
        window_lines=(
            LineSpan(src.found.path, tally.first_line, tally.last_line) if tally.requests else None
        ),
        first_s=tally.first_s,
        last_s=tally.last_s,
        has_bytes=fmt.has_bytes if fmt else False,
        has_referer=fmt.has_referer if fmt else False,
        has_user_agent=fmt.has_user_agent if fmt else False,
        skipped_key=src.skipped_key,
        note=src.note,
    )


def collect_weblogs(
    request: LogRequest, settings: WeblogSettings, progress: Progress | None = None
) -> WeblogFacts:
    """Read the logs and return the window's facts (FactUnavailable when there is no log
    to read, or none has a timestamp hostmedic understands)."""
    read_at = time.time()
    found, configs = find_logs(request.root, request.files or settings.paths)
    if not found:
        raise FactUnavailable("no access logs found", key="reason.weblogs.no_logs")
    explicit = resolve_format(request.format_spec, configs) if request.format_spec else None
    sources = _prepare(found, explicit)
    end = _log_end(sources)
    if end is None:
        if all(s.skipped_key == "reason.weblogs.empty" for s in sources):
            raise FactUnavailable("the access logs are empty", key="reason.weblogs.all_empty")
        denied = [s for s in sources if s.skipped_key == "reason.weblogs.unreadable"]
        if len(denied) == len(sources):  # typically: not root, logs are root:adm 0640
            path = denied[0].found.path
            raise FactUnavailable(denied[0].note, key="reason.unreadable", path=path)
        raise FactUnavailable("no readable access log", key="reason.weblogs.no_readable_log")
    end_s, offset_s = end
    if request.whole_log:
        since, until = 0, NEVER
    else:
        until = parse_when(request.until, end_s, offset_s) if request.until else end_s
        since = (
            parse_when(request.since, end_s, offset_s)
            if request.since
            else until - settings.window_s
        )
        if since > until:
            raise UsageError("error.weblogs.empty_window")
        for src in sources:
            if src.fmt and 0 < src.found.mtime < since - 3600:
                src.skipped_key = "reason.weblogs.older_than_window"
    floor = max(10, min(settings.ip_per_minute_warning, settings.url_per_minute) // 4)
    spec = ScanSpec(since, until, floor, scan_patterns(), scan_kinds(), settings.use_forwarded_for)
    stats = WindowStats([s.found.path for s in sources])
    work = sum(s.found.size_bytes for s in sources if s.fmt and not s.skipped_key)
    jobs = settings.jobs or min(2, os.cpu_count() or 1)
    _scan_all(sources, spec, stats, jobs if work >= POOL_MIN_BYTES else 1, progress)
    seen = [t for t in stats.tallies if t.requests]
    if request.whole_log:
        since = min((t.first_s or end_s for t in seen), default=end_s)
        until = max((t.last_s or end_s for t in seen), default=end_s)
    return roll_up(
        stats,
        top_n=settings.top_n,
        kinds=extension_kinds(),
        generic_crawlers=frozenset(c.name for c in crawlers() if c.generic),
        site_hosts=settings.site_hosts or server_names(configs),
        read_at=read_at,
        since_s=since,
        until_s=until,
        utc_offset_s=stats.offset_s if stats.requests else offset_s,
        sources=tuple(_source_facts(s, stats, i) for i, s in enumerate(sources)),
        burst_floor=floor,
    )


class WeblogCollection:
    """The ``weblogs`` category of ``hostmedic diagnose``: the logs found under the
    context's root, the default window. Read in ``finish`` (after any sampling window),
    so a big log never delays the start of the bandwidth sample."""

    wants_window = False

    def __init__(self, root: str, settings: WeblogSettings) -> None:
        self._root, self._settings = root, settings

    def tick(self) -> None:
        return None

    def finish(self) -> dict[str, WeblogFacts]:
        return {"weblogs": collect_weblogs(LogRequest(root=self._root), self._settings)}

    def close(self) -> None:
        return None


def weblogs_source(ctx: GatherContext) -> WeblogCollection:
    """The ``weblogs`` category's collection for ``gather``."""
    return WeblogCollection(ctx.root, ctx.settings.weblogs)

"""Lines → records for every :mod:`weblog_formats` format, and which format a file uses.

The hot loop of ``hostmedic logs``: :func:`parse_lines` runs once per line of the
analysed window, so the combined/common path is written for CPython's speed (bytes
methods implemented in C, local names, no per-line function calls) rather than beauty.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from hostmedic.analysis.weblog_formats import (
    APACHE_ESCAPED,
    COMBINED,
    COMMON,
    IIS,
    MAX_KEY_BYTES,
    LogFormat,
    Record,
    builtin_formats,
)

EXAMPLES_KEPT = 5  # malformed lines kept as examples per chunk (the count is exact)
EXAMPLE_BYTES = 160
W3C_FIELDS = b"#Fields:"


@dataclass(slots=True)
class Parsed:
    """What one run of lines gave: records, malformed lines (count and a few examples),
    and the IIS ``#Fields:`` in force at the end (a later chunk continues with them)."""

    records: list[Record] = field(default_factory=list)
    malformed: int = 0
    examples: list[tuple[int, bytes]] = field(default_factory=list)
    w3c_fields: tuple[bytes, ...] = ()

    def bad(self, line_no: int, line: bytes) -> None:
        self.malformed += 1
        if len(self.examples) < EXAMPLES_KEPT:
            self.examples.append((line_no, line[:EXAMPLE_BYTES]))


def path_of(request: bytes) -> bytes:
    """``GET /a/b?x=1 HTTP/1.1`` → ``/a/b``; a request line that is not one (TLS bytes
    sent to port 80, an empty request) is kept, cut short, as its own "path"."""
    first = request.find(b" ")
    if first < 0:
        return request[:64]
    end = request.find(b" ", first + 1)
    target = request[first + 1 : end] if end > 0 else request[first + 1 :]
    query = target.find(b"?")
    return (target[:query] if query >= 0 else target)[:MAX_KEY_BYTES]


def forwarded_client(header: bytes) -> bytes | None:
    """The original client of an X-Forwarded-For value (its first address), or None."""
    first = header.split(b",", 1)[0].strip()
    return first if first and first != b"-" else None


def _parse_clf(
    lines: Iterable[bytes], first_line: int, combined: bool, forwarded: bool, out: Parsed
) -> None:
    """The combined/common fast path: split on ``"``; anything unexpected goes to the
    escaped-quote regex (Apache writes ``\\"``) and then counts as malformed. With
    ``forwarded``, a ninth quoted field (CentOS's ``main``: X-Forwarded-For) names the
    client."""
    append = out.records.append
    line_no = first_line - 1
    for line in lines:
        line_no += 1
        if not line:
            continue
        p = line.split(b'"')
        n = len(p)
        # Each Apache-escaped quote (\\") adds a split: only an exact count takes this path.
        if ((n == 7 or (n > 7 and b'\\"' not in line)) and p[4] == b" ") if combined else n == 3:
            head = p[0]
            space = head.find(b" ")
            bracket = head.find(b" [", space)
            tail = p[2].split()
            if space > 0 and bracket > 0 and head[-2:] == b"] " and len(tail) == 2:
                status, size = tail
                if len(status) == 3 and status.isdigit():
                    if size.isdigit():
                        body = int(size)
                    elif size == b"-":
                        body = 0
                    else:
                        out.bad(line_no, line)
                        continue
                    request = p[1]
                    sp = request.find(b" ")
                    if sp > 0:
                        end = request.find(b" ", sp + 1)
                        target = request[sp + 1 : end] if end > 0 else request[sp + 1 :]
                        q = target.find(b"?")
                        path = (target[:q] if q >= 0 else target)[:MAX_KEY_BYTES]
                    else:
                        path = request[:64]
                    head_ip, stamp = head[:space], head[bracket + 2 : -2]
                    if forwarded and n >= 9:
                        head_ip = forwarded_client(p[7]) or head_ip
                    if combined:
                        referer, agent = p[3][:MAX_KEY_BYTES], p[5][:MAX_KEY_BYTES]
                    else:
                        referer = agent = b""
                    append((line_no, head_ip, stamp, path, status, body, referer, agent))
                    continue
        if b'\\"' in line and _parse_regex_line(APACHE_ESCAPED, line, line_no, out, forwarded):
            continue
        out.bad(line_no, line)


_COMPILED: dict[bytes, re.Pattern[bytes]] = {}


def _compiled(pattern: bytes) -> re.Pattern[bytes]:
    rx = _COMPILED.get(pattern)
    if rx is None:
        rx = _COMPILED[pattern] = re.compile(pattern, re.DOTALL)
    return rx


def _parse_regex_line(
    fmt: LogFormat, line: bytes, line_no: int, out: Parsed, forwarded: bool = False
) -> bool:
    m = _compiled(fmt.strict).fullmatch(line) or _compiled(fmt.loose).fullmatch(line)
    if m is None:
        return False
    g = m.groupdict()
    size = g.get("bytes") or b"-"
    if "path" in g:
        path = g["path"][:MAX_KEY_BYTES]
    elif "uri" in g:
        path = g["uri"].split(b"?", 1)[0][:MAX_KEY_BYTES]
    else:
        path = path_of(g.get("request") or b"")
    status = g.get("status") or b"-"
    if size != b"-" and not size.isdigit():
        return False
    client = g["ip"]
    if forwarded and g.get("xff"):
        client = forwarded_client(g["xff"]) or client
    out.records.append(
        (
            line_no,
            client,
            g["time"],
            path,
            status,
            int(size) if size != b"-" else 0,
            (g.get("referer") or b"")[:MAX_KEY_BYTES],
            (g.get("ua") or b"")[:MAX_KEY_BYTES],
        )
    )
    return True


def _parse_regex(
    fmt: LogFormat, lines: Iterable[bytes], first_line: int, forwarded: bool, out: Parsed
) -> None:
    for line_no, line in enumerate(lines, first_line):
        if line and not _parse_regex_line(fmt, line, line_no, out, forwarded):
            out.bad(line_no, line)


_W3C_NAMES = {
    b"c-ip": 0,
    b"cs-uri-stem": 2,
    b"sc-status": 3,
    b"sc-bytes": 4,
    b"cs(referer)": 5,
    b"cs(user-agent)": 6,
}


def _parse_w3c(lines: Iterable[bytes], first_line: int, out: Parsed) -> None:
    """IIS W3C extended logs: space-separated, ``-`` for empty, ``#`` directives; the
    ``#Fields:`` line says which column is which and may change after a restart."""
    where: dict[int, int] = {}
    columns = 0

    def use(fields: tuple[bytes, ...]) -> None:
        nonlocal columns
        names = [f.lower() for f in fields]
        where.clear()
        for name, slot in _W3C_NAMES.items():
            if name in names:
                where[slot] = names.index(name)
        for name, slot in ((b"date", 7), (b"time", 8)):
            if name in names:
                where[slot] = names.index(name)
        columns = len(names)

    use(out.w3c_fields)
    for line_no, line in enumerate(lines, first_line):
        if not line:
            continue
        if line[:1] == b"#":
            if line.startswith(W3C_FIELDS):
                out.w3c_fields = tuple(line[len(W3C_FIELDS) :].split())
                use(out.w3c_fields)
            continue
        cols = line.rstrip(b"\r").split(b" ")
        if len(cols) != columns or 0 not in where or 7 not in where or 8 not in where:
            out.bad(line_no, line)
            continue
        size = cols[where[4]] if 4 in where else b"-"
        if size != b"-" and not size.isdigit():
            out.bad(line_no, line)
            continue
        referer = cols[where[5]] if 5 in where else b"-"
        ua = cols[where[6]] if 6 in where else b"-"
        out.records.append(
            (
                line_no,
                cols[where[0]],
                cols[where[7]] + b" " + cols[where[8]],
                cols[where[2]][:MAX_KEY_BYTES] if 2 in where else b"-",
                cols[where[3]] if 3 in where else b"-",
                int(size) if size != b"-" else 0,
                b"" if referer == b"-" else referer[:MAX_KEY_BYTES],
                b"" if ua == b"-" else ua[:MAX_KEY_BYTES],
            )
        )


def parse_lines(
    fmt: LogFormat,
    lines: Iterable[bytes],
    first_line: int,
    w3c_fields: tuple[bytes, ...] = (),
    forwarded: bool = False,
) -> Parsed:
    """Parse lines numbered from ``first_line``; empty lines are skipped silently.
    ``forwarded``: the client is the first X-Forwarded-For address when the line has one
    (a site behind a load balancer or CDN)."""
    out = Parsed(w3c_fields=w3c_fields)
    if fmt.kind in ("combined", "common"):
        _parse_clf(lines, first_line, fmt.kind == "combined", forwarded, out)
    elif fmt.kind == "w3c":
        _parse_w3c(lines, first_line, out)
    else:
        _parse_regex(fmt, lines, first_line, forwarded, out)
    return out


def minute_key(fmt: LogFormat, line: bytes) -> bytes | None:
    """The text of a line's timestamp up to the minute (``18/Nov/2026:11:06``), or None:
    what chunks are cut on, so that one minute never spans two chunks."""
    if fmt.kind in ("combined", "common"):
        start = line.find(b"[")
        return line[start + 1 : start + 18] if start >= 0 else None
    if fmt.kind == "w3c":
        return None if line[:1] in (b"#", b"") else line[:16]
    out = Parsed()
    if not _parse_regex_line(fmt, line, 0, out):
        return None
    text = out.records[0][2].lstrip(b"[")
    if fmt.time_kind == "msec":
        head, _, _ = text.partition(b".")
        return str(int(head) // 60).encode() if head.isdigit() else None
    return text[:17] if fmt.time_kind == "clf" else text[:16]


def sniff(lines: list[bytes], candidates: Iterable[LogFormat] = ()) -> LogFormat | None:
    """The format that parses most of a file's first lines (at least half of them);
    ``candidates`` (from the server's configuration) are tried before the built-ins."""
    if any(line.startswith(W3C_FIELDS) for line in lines):
        return IIS
    sample = [line for line in lines if line and not line.startswith(b"#")]
    if not sample:
        return None
    best, best_count = None, 0
    for fmt in (*candidates, *builtin_formats()):
        count = len(parse_lines(fmt, sample, 1).records)
        if count > best_count:
            best, best_count = fmt, count
    return best if best_count * 2 >= len(sample) else None


__all__ = ["COMBINED", "COMMON", "IIS", "Parsed", "minute_key", "parse_lines", "sniff"]

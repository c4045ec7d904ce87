"""Reading access-log files: plain or gzip (by magic bytes, not by name), in whole-minute
chunks, with bounded memory whatever the file holds.

A chunk ends where the log's minute changes, so that no minute is split between two
workers (the burst counts depend on it). A line longer than ``MAX_LINE`` bytes without a
newline (a corrupt or hostile file) is dropped as it streams by and reported by number;
it never grows a buffer. A truncated gzip member (a rotation caught mid-write) yields
what it held and a note, not an error.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from hostmedic.analysis.weblog_formats import LogFormat, parse_time
from hostmedic.analysis.weblog_parse import minute_key, parse_lines

CHUNK_BYTES = 4 * 1024 * 1024
MAX_LINE = 1024 * 1024
SAMPLE_BYTES = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(slots=True)
class Chunk:
    """Whole lines numbered from ``first_line``; ``position`` is how far into the file
    (compressed bytes for gzip) reading has got, for progress."""

    data: bytes
    first_line: int
    lines: int
    position: int
    too_long: list[int] = field(default_factory=list)


class LogFile:
    """An open log file; ``note`` says what went wrong while reading, if anything."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._raw: BinaryIO = open(path, "rb")  # noqa: SIM115  (closed by close())
        self.compressed = self._raw.read(2) == GZIP_MAGIC
        self._raw.seek(0)
        self._stream: BinaryIO | gzip.GzipFile = (
            gzip.GzipFile(fileobj=self._raw, mode="rb") if self.compressed else self._raw
        )
        self.note = ""

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; b"" at the end, or where a damaged gzip stops."""
        try:
            return self._stream.read(size)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            self.note = f"gzip: {exc}"
            return b""

    def position(self) -> int:
        return self._raw.tell()

    def close(self) -> None:
        self._stream.close()
        self._raw.close()

    def __enter__(self) -> LogFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_sample(path: str, size: int = SAMPLE_BYTES) -> list[bytes]:
    """The first whole lines of a file (decompressed), for telling its format."""
    with LogFile(path) as f:
        data = f.read(size)
    lines = data.split(b"\n")
    return lines[:-1] if len(lines) > 1 else lines


def _line_time(fmt: LogFormat, line: bytes) -> tuple[int, int] | None:
    records = parse_lines(fmt, [line], 1).records
    if not records:
        return None
    try:
        return parse_time(fmt, records[0][2])
    except (ValueError, KeyError):
        return None


def last_time(fmt: LogFormat, data: bytes) -> tuple[int, int] | None:
    """(UTC epoch, UTC offset) of the last line of ``data`` that has a timestamp."""
    end = len(data)
    while end > 0:
        start = data.rfind(b"\n", 0, end - 1) + 1
        when = _line_time(fmt, data[start:end].rstrip(b"\n"))
        if when is not None:
            return when
        end = start
    return None


def tail_time(path: str, fmt: LogFormat) -> tuple[int, int] | None:
    """When a log file's last line was written (by its own clock). Plain files are read
    from the end; gzip files have to be decompressed through."""
    with LogFile(path) as f:
        if not f.compressed:
            size = os.path.getsize(path)
            f._raw.seek(max(0, size - SAMPLE_BYTES))
            return last_time(fmt, f.read(SAMPLE_BYTES))
        tail = b""
        while block := f.read(CHUNK_BYTES):
            tail = (tail + block)[-SAMPLE_BYTES:]
        return last_time(fmt, tail)


def minute_cut(fmt: LogFormat, data: bytes) -> int:
    """Where the last minute of ``data`` (whole lines) begins, or ``len(data)`` when the
    data holds a single minute or no timestamp."""
    end = len(data)
    last_key: bytes | None = None
    while end > 0:
        start = data.rfind(b"\n", 0, end - 1) + 1
        key = minute_key(fmt, data[start:end].rstrip(b"\n"))
        if key is not None:
            if last_key is None:
                last_key = key
            elif key != last_key:
                return end
        end = start
    return len(data)


def iter_chunks(log: LogFile, fmt: LogFormat, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """Whole-minute chunks of whole lines, numbered; the last one may lack a newline."""
    carry = b""
    line_no = 1
    skipping = False
    too_long: list[int] = []
    while True:
        block = log.read(chunk_bytes)
        if not block:
            break
        if skipping:
            newline = block.find(b"\n")
            if newline < 0:
                continue
            block, skipping = block[newline + 1 :], False
            line_no += 1
        data = carry + block
        end = data.rfind(b"\n") + 1
        carry = data[end:]
        if len(carry) > MAX_LINE:
            # Ends the chunk before the oversized line, which is then skipped as it streams.
            too_long.append(line_no + data.count(b"\n", 0, end))
            carry, skipping = b"", True
        data = data[:end]
        cut = minute_cut(fmt, data) if not skipping else len(data)
        if cut < len(data) and cut > 0:
            carry = data[cut:] + carry
            data = data[:cut]
        if data or too_long:
            lines = data.count(b"\n")
            yield Chunk(data, line_no, lines, log.position(), too_long)
            line_no += lines
            too_long = []
    if carry:
        yield Chunk(
            carry, line_no, carry.count(b"\n") + (not carry.endswith(b"\n")), log.position()
        )

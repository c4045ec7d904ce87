"""Reading log files: gzip rotations (by magic, not name), truncated gzip, whole-minute
chunks, oversized lines dropped by number, the newest timestamp of a file."""

import itertools

from hostmedic.analysis.weblog_formats import COMBINED
from hostmedic.analysis.weblog_parse import minute_key
from hostmedic.collectors.weblog_read import (
    LogFile,
    iter_chunks,
    minute_cut,
    read_sample,
    tail_time,
)
from tests.unit import weblog_samples as S


def _chunks(path, size):
    with LogFile(str(path)) as log:
        return list(iter_chunks(log, COMBINED, size)), log.note


def test_chunks_hold_whole_minutes_and_number_every_line(tmp_path):
    path = S.write(tmp_path / "access.log", S.healthy(minutes=10))
    small, _ = _chunks(path, 3000)  # smaller than a minute: minutes split, numbering holds
    assert (
        sum(c.lines for c in small) == 400 and b"".join(c.data for c in small) == path.read_bytes()
    )
    chunks, note = _chunks(path, 10_000)
    assert note == "" and len(chunks) > 5
    assert sum(c.lines for c in chunks) == 400
    assert [c.first_line for c in chunks] == [1] + [
        sum(c.lines for c in chunks[:i]) + 1 for i in range(1, len(chunks))
    ]
    keys = [{minute_key(COMBINED, line) for line in c.data.split(b"\n") if line} for c in chunks]
    for a, b in itertools.pairwise(keys):
        assert not a & b  # no minute is in two chunks
    assert b"".join(c.data for c in chunks) == path.read_bytes()


def test_gzip_rotation_is_read_by_magic_and_truncation_is_a_note(tmp_path):
    lines = S.healthy(minutes=3)
    plain = S.write(tmp_path / "access.log.1", lines)
    packed = S.write(tmp_path / "access.log.2.gz", lines, compress=True)
    disguised = tmp_path / "access.log.3"
    disguised.write_bytes(packed.read_bytes())
    for path in (packed, disguised):
        chunks, note = _chunks(path, 1 << 20)
        assert note == "" and b"".join(c.data for c in chunks) == plain.read_bytes()
    cut = tmp_path / "access.log.4.gz"
    cut.write_bytes(packed.read_bytes()[: len(packed.read_bytes()) // 2])
    chunks, note = _chunks(cut, 1 << 20)
    assert note.startswith("gzip:")
    assert sum(c.lines for c in chunks) < len(lines)
    assert read_sample(str(packed))[0] == lines[0][1].rstrip("\n").encode()


def test_a_line_longer_than_the_limit_is_skipped_by_number(tmp_path, monkeypatch):
    import hostmedic.collectors.weblog_read as reader

    monkeypatch.setattr(reader, "MAX_LINE", 10_000)
    good = [text.encode() for _, text in S.healthy(minutes=2)]
    path = tmp_path / "access.log"
    path.write_bytes(b"".join(good[:5]) + b"x" * 50_000 + b"\n" + b"".join(good[5:]))
    chunks, _ = _chunks(path, 4096)
    assert [n for c in chunks for n in c.too_long] == [6]
    data = b"".join(c.data for c in chunks)
    assert data == b"".join(good)
    # numbering continues after the dropped line: good[5] is line 7
    first_after = next(c for c in chunks if c.first_line > 6)
    assert first_after.first_line >= 7


def test_tail_time_of_plain_and_gzip_files(tmp_path):
    lines = S.healthy(minutes=3)
    plain = S.write(tmp_path / "a.log", lines)
    packed = S.write(tmp_path / "a.log.1.gz", lines, compress=True)
    last = int(lines[-1][0])
    assert tail_time(str(plain), COMBINED) == (last, 8 * 3600)
    assert tail_time(str(packed), COMBINED) == (last, 8 * 3600)
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    assert tail_time(str(empty), COMBINED) is None


def test_minute_cut_on_unparseable_tail():
    data = b"".join(text.encode() for _, text in S.healthy(minutes=2)) + b"junk\n"
    cut = minute_cut(COMBINED, data)
    assert data[cut:].startswith(b"198.51.100") and b"junk" in data[cut:]
    assert minute_cut(COMBINED, b"junk\nmore junk\n") == len(b"junk\nmore junk\n")

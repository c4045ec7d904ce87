"""The scanner and the window merge: counts inside the window only, bursts exact across
chunks, the same totals in one process or split in chunks, and bounded tables."""

from hostmedic.analysis.weblog_data import scan_kinds, scan_patterns
from hostmedic.analysis.weblog_formats import COMBINED
from hostmedic.analysis.weblog_parse import minute_key
from hostmedic.analysis.weblog_scan import Scanner, ScanSpec, referer_host
from hostmedic.analysis.weblog_window import WindowStats, site_of
from tests.unit import weblog_samples as S


def _data(*parts):
    return "".join(text for _, text in sorted(p for part in parts for p in part)).encode()


def _spec(**kw):
    return ScanSpec(crawlers=scan_patterns(), kinds=scan_kinds(), burst_floor=75, **kw)


def test_window_bounds_are_inclusive_and_outside_lines_are_not_counted():
    data = _data(S.healthy(minutes=10))
    since, until = S.T0 + 120, S.T0 + 239
    stats = Scanner(_spec(since_s=since, until_s=until)).scan(COMBINED, data, 0, 1)
    assert stats.lines == 400 and stats.requests == 80
    assert stats.first_line == 81 and stats.last_line == 160
    assert set(stats.minutes) == {S.T0 + 120, S.T0 + 180}
    assert stats.first_s == S.T0 and stats.malformed == 0


def test_bursts_name_their_lines_and_counterparts():
    data = _data(S.healthy(minutes=45), S.cc_attack())
    stats = Scanner(_spec()).scan(COMBINED, data, 0, 1)
    login = stats.ip_bursts[(b"203.0.113.10", S.T0 + 40 * 60)]
    assert login[0] == 500 and login[3:] == [b"/login.php", 500]
    assert 0 < login[1] < login[2] <= stats.lines
    search = stats.path_bursts[(b"/search", S.T0 + 40 * 60)]
    assert search[0] == 1200 and search[3] == 300 and search[5] == 4
    assert all(v[0] >= 75 for v in (*stats.ip_bursts.values(), *stats.path_bursts.values()))


def test_chunked_merge_equals_one_pass():
    parts = (S.healthy(minutes=45), S.cc_attack(), S.downloads(foreign=True))
    data = _data(*parts)
    one = WindowStats(["a.log"])
    one.add(Scanner(_spec()).scan(COMBINED, data, 0, 1))
    split = WindowStats(["a.log"])
    scanner = Scanner(_spec())
    lines = data.split(b"\n")[:-1]
    # cut on minute boundaries, as the reader does
    start = 0
    for end in range(1, len(lines) + 1):
        if (
            end == len(lines)
            or minute_key(COMBINED, lines[end]) != minute_key(COMBINED, lines[end - 1])
        ) and (end - start > 500 or end == len(lines)):
            chunk = b"\n".join(lines[start:end]) + b"\n"
            split.add(scanner.scan(COMBINED, chunk, 0, start + 1))
            start = end
    for name in (
        "requests",
        "bytes_sent",
        "ips",
        "paths",
        "statuses",
        "crawlers",
        "referers",
        "ip_bursts",
        "path_bursts",
        "minutes",
        "spans",
    ):
        assert getattr(one, name) == getattr(split, name), name
    assert one.tallies == split.tallies


def test_tables_stay_bounded_and_say_so():
    data = b"".join(
        S.line(f"198.18.{i // 250}.{i % 250 + 1}", S.T0 + i * 0.01, f"/r/{i}").encode()
        for i in range(3000)
    )
    data += b"".join(S.line("203.0.113.1", S.T0 + 31, "/hot").encode() for _ in range(200))
    stats = WindowStats(["a.log"], max_keys=400)
    stats.add(Scanner(_spec()).scan(COMBINED, data, 0, 1))
    assert len(stats.ips) <= 400 and len(stats.paths) <= 400
    assert stats.pruned_below >= 1
    assert stats.ips[b"203.0.113.1"][0] == 200 and stats.paths[b"/hot"][0] == 200


def test_hosts_and_sites():
    assert referer_host(b"https://User@Img.Example.COM:8443/a?b") == b"img.example.com"
    assert referer_host(b"-") == b"" and referer_host(b"android-app://x") == b"x"
    assert site_of("img.example.com") == site_of("www.example.com") == "example.com"
    assert site_of("www.example.com.cn") == "example.com.cn"
    assert site_of("203.0.113.5") == "203.0.113.5"
    assert site_of("bbs.forum.example.net") != site_of("www.example.com")

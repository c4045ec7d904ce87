"""Access-log formats on recorded lines (a private nginx on loopback wrote them, see
tests/fixtures/weblogs/record_fixtures.py), Apache's and IIS's documented layouts, and
hostile lines: garbage, raw non-UTF-8 bytes, escaped quotes, huge and empty lines."""

from pathlib import Path

import pytest

from hostmedic.analysis.weblog_formats import (
    COMBINED,
    COMMON,
    IIS,
    FormatError,
    apache_format,
    nginx_format,
    parse_time,
)
from hostmedic.analysis.weblog_parse import minute_key, parse_lines, path_of, sniff

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "weblogs"
TIMED = (
    '$remote_addr [$time_iso8601] "$request" $status $body_bytes_sent '
    '$request_time "$http_referer" "$http_user_agent" $host'
)


def lines_of(name: str) -> list[bytes]:
    return (FIXTURES / name).read_bytes().split(b"\n")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("nginx_combined.log", "combined"),
        ("nginx_main.log", "combined"),
        ("nginx_common.log", "common"),
    ],
)
def test_recorded_nginx_logs_are_recognised_and_parsed(name, expected):
    lines = lines_of(name)
    fmt = sniff(lines)
    assert fmt is not None and fmt.name == expected
    parsed = parse_lines(fmt, lines, 1)
    assert parsed.malformed == 0 and len(parsed.records) == 5
    first = parsed.records[0]
    assert first[:6] == (1, b"127.0.0.1", first[2], b"/", b"200", 6)
    assert parse_time(fmt, first[2])[1] == 0
    # the query string is cut, nginx's \x escapes and the TLS garbage request stay as data
    paths = [r[3] for r in parsed.records]
    assert paths[2] == b"/missing.php" and paths[3] == rb"/a%20b/\xFF\xFE.zip"
    assert paths[4].startswith(rb"\x16\x03") and parsed.records[4][4] == b"400"
    if expected == "combined":
        assert parsed.records[1][6] == b"https://bbs.hotlinker.test/t/1"
        assert b"Baiduspider" in parsed.records[1][7]
        assert parsed.records[3][7] == rb"evil \x22quoted\x22 \x1B[31mred"


def test_custom_nginx_log_format_with_iso_time():
    fmt = nginx_format("timed", TIMED)
    assert fmt.kind == "regex" and fmt.time_kind == "iso8601"
    assert sniff(lines_of("nginx_timed.log")) is None  # not a built-in layout
    assert sniff(lines_of("nginx_timed.log"), [fmt]) is fmt
    parsed = parse_lines(fmt, lines_of("nginx_timed.log"), 10)
    assert parsed.malformed == 0
    assert [r[0] for r in parsed.records] == [10, 11, 12, 13, 14]
    assert parsed.records[1][3:6] == (b"/music/song.mp3", b"200", 40000)
    assert parse_time(fmt, parsed.records[0][2]) == (1795478278, 0)


def test_nginx_main_and_combined_definitions_take_the_fast_path():
    main = (
        '$remote_addr - $remote_user [$time_local] "$request" '
        '$status $body_bytes_sent "$http_referer" '
        '"$http_user_agent" "$http_x_forwarded_for"'
    )
    assert nginx_format("main", main) is COMBINED
    assert (
        nginx_format(
            "x", '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent'
        )
        is COMMON
    )


def test_loose_pattern_takes_values_with_spaces():
    fmt = nginx_format(
        "up",
        '$remote_addr [$time_local] "$request" $status $body_bytes_sent $upstream_response_time "$http_user_agent"',
    )
    line = (
        b'198.51.100.7 [23/Nov/2026:10:00:00 +0800] "GET /a HTTP/1.1" 502 150 0.001, 0.002 "curl/8"'
    )
    record = parse_lines(fmt, [line], 1).records[0]
    assert record[1:6] == (b"198.51.100.7", b"23/Nov/2026:10:00:00 +0800", b"/a", b"502", 150)
    assert record[7] == b"curl/8"


def test_apache_combined_with_escaped_quotes_and_dash_bytes():
    fmt = apache_format("combined", r"%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-agent}i\"")
    line = (
        rb'203.0.113.99 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif?x=1 HTTP/1.0" 200 - '
        rb'"http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav) \"x\""'
    )
    assert fmt is COMBINED  # Apache's combined layout takes the fast path…
    debian = r"%h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\""
    assert apache_format("combined", debian) is COMBINED
    assert apache_format("common", '%a %l %u %t "%r" %>s %B') is COMMON
    for f in (fmt, COMBINED):  # …which hands lines with escaped quotes to the Apache regex
        record = parse_lines(f, [line], 1).records[0]
        assert record[3:6] == (b"/apache_pb.gif", b"200", 0)
        assert record[7] == rb"Mozilla/4.08 [en] (Win98; I ;Nav) \"x\""
        assert parse_time(f, record[2]) == (971211336, -7 * 3600)


IIS_LOG = b"""#Software: Microsoft Internet Information Services 10.0
#Version: 1.0
#Date: 2026-11-23 00:00:00
#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken
2026-11-23 00:00:01 10.0.0.4 GET /default.aspx - 80 - 203.0.113.5 Mozilla/5.0+(compatible;+Baiduspider/2.0) - 200 0 0 15
2026-11-23 00:00:02 10.0.0.4 GET /missing.png - 80 - 203.0.113.6 Mozilla/5.0 https://other.example.net/ 404 0 2 3
#Fields: date time c-ip cs-uri-stem sc-status sc-bytes
2026-11-23 00:01:00 203.0.113.7 /big.zip 200 7340032
2026-11-23 00:01:01 203.0.113.7 /big.zip 200 x
"""


def test_iis_w3c_fields_and_their_change_mid_file():
    lines = IIS_LOG.split(b"\n")
    assert sniff(lines) is IIS
    parsed = parse_lines(IIS, lines, 1)
    assert [r[0] for r in parsed.records] == [5, 6, 8]
    assert parsed.records[0][1:6] == (
        b"203.0.113.5",
        b"2026-11-23 00:00:01",
        b"/default.aspx",
        b"200",
        0,
    )
    assert b"Baiduspider" in parsed.records[0][7] and parsed.records[0][6] == b""
    assert parsed.records[1][6] == b"https://other.example.net/"
    assert parsed.records[2][5] == 7340032
    assert parsed.malformed == 1 and parsed.examples[0][0] == 9
    assert parsed.w3c_fields[-1] == b"sc-bytes"
    assert parse_time(IIS, parsed.records[0][2]) == (1795392001, 0)


HOSTILE = [
    b"",
    b"garbage",
    b"\xff\xfe\x00\x01 binary \x9c\x80",
    b'203.0.113.9 - - [23/Nov/2026:10:00:00 +0800] "GET / HTTP/1.1" 200',
    b'203.0.113.9 - - [23/Nov/2026:10:00:00 +0800] "GET / HTTP/1.1" abc 12 "-" "-"',
    b'203.0.113.9 - - [23/Nov/2026:10:00:00 +0800] "GET / HTTP/1.1" 200 12x "-" "-"',
    b'203.0.113.9 - - [23/Nov/2026:10:00:00 +0800] "GET /'
    + b"A" * 200_000
    + b' HTTP/1.1" 200 5 "-" "'
    + b"\xe4\xb8" * 1000
    + b'"',
    b'203.0.113.9 - - [99/Xyz/2026:10:00:00 +0800] "GET / HTTP/1.1" 200 5 "-" "-"',
]


@pytest.mark.parametrize(
    "fmt", [COMBINED, COMMON, IIS, nginx_format("timed", TIMED)], ids=lambda f: f.name
)
def test_hostile_lines_are_counted_never_raised(fmt):
    parsed = parse_lines(fmt, HOSTILE, 1)
    assert parsed.malformed + len(parsed.records) == len(HOSTILE) - 1  # the empty line is skipped
    assert all(len(example) <= 160 for _, example in parsed.examples)


def test_huge_line_keys_are_cut_and_bad_time_is_an_error():
    parsed = parse_lines(COMBINED, HOSTILE, 1)
    numbers = [r[0] for r in parsed.records]
    assert numbers == [7, 8]  # the huge line and the bad-month line parse; time is checked later
    huge = parsed.records[0]
    assert len(huge[3]) == 512 and len(huge[7]) == 512
    with pytest.raises(KeyError):
        parse_time(COMBINED, parsed.records[1][2])
    assert [n for n, _ in parsed.examples] == [2, 3, 4, 5, 6]


@pytest.mark.parametrize(
    "text",
    [
        b"23/Nov/2026:10:00:00",
        b"23/Nov/2026 10:00:00 +0800",
        b"2026-11-23",
        b"1e400",
        b"23/Nov/2026:10:00:00 +08x0",
    ],
)
def test_bad_times_raise_value_errors(text):
    for kind_fmt in (COMBINED, nginx_format("t", TIMED), IIS):
        with pytest.raises((ValueError, KeyError)):
            parse_time(kind_fmt, text)


def test_msec_time_and_minute_keys():
    fmt = nginx_format("ms", '$msec $remote_addr "$request" $status $body_bytes_sent')
    line = b'1795478278.123 203.0.113.1 "GET /x HTTP/1.1" 200 10'
    record = parse_lines(fmt, [line], 1).records[0]
    assert parse_time(fmt, record[2]) == (1795478278, 0)
    assert minute_key(fmt, line) == str(1795478278 // 60).encode()
    assert minute_key(COMBINED, lines_of("nginx_combined.log")[0]) == b"23/Nov/2026:23:57"
    assert minute_key(IIS, b"2026-11-23 00:00:01 x") == b"2026-11-23 00:00"
    assert (
        minute_key(nginx_format("t", TIMED), lines_of("nginx_timed.log")[0]) == b"2026-11-23T23:57"
    )
    assert minute_key(fmt, b"junk") is None


@pytest.mark.parametrize(
    "definition",
    ['$remote_addr "$request"', '[$time_local] "$request"', "$remote_addr $ [$time_local]"],
)
def test_unusable_definitions_are_format_errors(definition):
    with pytest.raises(FormatError):
        nginx_format("bad", definition)


def test_path_of_request_lines():
    assert path_of(b"GET /a/b?x=1 HTTP/1.1") == b"/a/b"
    assert path_of(b"GET /only") == b"/only"
    assert path_of(b"-") == b"-"


def test_forwarded_for_names_the_client_behind_a_proxy():
    lines = lines_of("nginx_main.log")  # line 3 was sent with X-Forwarded-For: 198.51.100.7
    plain = parse_lines(COMBINED, lines, 1).records
    behind = parse_lines(COMBINED, lines, 1, forwarded=True).records
    assert plain[2][1] == b"127.0.0.1" and behind[2][1] == b"198.51.100.7"
    assert [r[1] for r in behind[:2]] == [b"127.0.0.1", b"127.0.0.1"]  # "-": no header
    fmt = nginx_format(
        "xff",
        '$remote_addr [$time_local] "$request" $status $body_bytes_sent "$http_x_forwarded_for"',
    )
    line = b'10.0.0.2 [23/Nov/2026:10:00:00 +0800] "GET / HTTP/1.1" 200 5 "203.0.113.9, 10.0.0.1"'
    assert parse_lines(fmt, [line], 1, forwarded=True).records[0][1] == b"203.0.113.9"
    assert parse_lines(fmt, [line], 1).records[0][1] == b"10.0.0.2"

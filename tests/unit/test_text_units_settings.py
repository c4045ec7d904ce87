"""Terminal safety, units, settings parsing and the language chooser."""

import pytest

from hostmedic.errors import UsageError
from hostmedic.i18n import resolve_language
from hostmedic.render.safe_text import sanitize
from hostmedic.render.units import human_bits_per_s, human_bytes, humanize_params
from hostmedic.settings import build_settings, parse_bitrate


@pytest.mark.parametrize(
    "raw,shown",
    [
        ("nginx", "nginx"),
        ("evil\x1b[2J\x1b]0;pwned\x07", "evil\\x1b[2J\\x1b]0;pwned\\x07"),
        ("a\nb\rc\td", "a\\x0ab\\x0dc\\x09d"),
        ("\u202egpj.exe", "\\u202egpj.exe"),
        ("x\x9by", "x\\x9by"),
        ("进程", "进程"),
        ("zero\u200bwidth", "zero\\u200bwidth"),
    ],
)
def test_sanitize(raw, shown):
    assert sanitize(raw) == shown


def test_units_are_unambiguous():
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(10) == "10 B"
    assert human_bits_per_s(2_500_000) == "2.50 Mbit/s"
    assert humanize_params({"tx_bytes": 2048, "cap_bits_per_s": 5e6, "name": "x"}) == {
        "tx_bytes": "2.0 KiB",
        "cap_bits_per_s": "5.00 Mbit/s",
        "name": "x",
    }


@pytest.mark.parametrize(
    "text,bits",
    [("5Mbit", 5e6), ("100mbps", 1e8), ("1G", 1e9), ("2.5gbit/s", 2.5e9), ("800k", 8e5)],
)
def test_parse_bitrate(text, bits):
    assert parse_bitrate(text) == bits


@pytest.mark.parametrize("text", ["", "fast", "5MB", "-1M", "0"])
def test_parse_bitrate_rejects(text):
    with pytest.raises(UsageError):
        parse_bitrate(text)


def test_settings_merge_options_over_config():
    s = build_settings(
        {"bandwidth": {"cap": "10Mbit", "top_n": 3}, "geo": {"home_country": "cn"}},
        cap="5Mbit",
        home_country=None,
    )
    assert (s.cap_bits_per_s, s.home_country, s.top_n) == (5e6, "CN", 3)
    with pytest.raises(UsageError):
        build_settings({}, cap=None, home_country="China")


@pytest.mark.parametrize(
    "env,lang",
    [
        ({"LANG": "zh_CN.UTF-8"}, "zh_CN"),
        ({"LC_ALL": "ja_JP.UTF-8", "LANG": "en_US"}, "ja"),
        ({"LC_MESSAGES": "ko_KR"}, "ko"),
        ({"LANG": "C.UTF-8"}, "en"),
        ({}, "en"),
        ({"LANG": "de_DE.UTF-8"}, "en"),
        ({"LANG": "zh_TW.UTF-8"}, "zh_CN"),
    ],
)
def test_language_from_environment(env, lang):
    assert resolve_language(None, env) == lang


def test_explicit_language_wins():
    assert resolve_language("ko", {"LANG": "ja_JP"}) == "ko"

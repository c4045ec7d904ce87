"""Each planted problem in a generated access log → its finding, with evidence naming the
file, the lines, the addresses or URLs and the counts, at the right severity; the healthy
log raises nothing (false positives are bugs too)."""

import dataclasses

import pytest

from hostmedic.collectors.weblogs import LogRequest, collect_weblogs
from hostmedic.engine import registered_rules, run_rules
from hostmedic.model import Severity, Status
from hostmedic.settings import Settings
from tests.unit import weblog_samples as S


def analyse(tmp_path, *parts, name="access.log", settings=None, **request):
    settings = settings or Settings()
    path = S.write(tmp_path / name, *parts)
    facts = collect_weblogs(LogRequest(files=(str(path),), **request), settings.weblogs)
    facts = dataclasses.replace(facts, read_at=facts.until_s + 60.0)  # judged "now"
    findings, errors = run_rules(
        registered_rules({"weblogs"}), {"settings": settings, "weblogs": facts}
    )
    assert errors == []
    return facts, [f for f in findings if f.status is Status.FAILED], str(path)


def only(findings, rule_id):
    return [f for f in findings if f.rule_id == rule_id]


def test_healthy_log_raises_nothing(tmp_path):
    facts, failed, _ = analyse(tmp_path, S.healthy())
    assert failed == []
    assert facts.requests == 2400 and facts.own_hosts == ("www.example.com",)
    assert facts.crawlers[0].name == "googlebot"


def test_cc_attack_few_addresses_and_one_url(tmp_path):
    _facts, failed, path = analyse(tmp_path, S.healthy(), S.cc_attack())
    cc = only(failed, "weblogs.cc_attack")
    few = next(f for f in cc if f.title_key.endswith("few_ips.title"))
    assert few.severity is Severity.CRITICAL  # 47 % of all requests from three addresses
    assert few.params["count"] == 3 and few.params["peak_per_minute"] == 500
    assert few.params["path"] == "/login.php"
    assert few.params["at"] == "2026-11-18 19:40 +0800"
    first = few.evidence[0]
    assert first.source.startswith(path + ":") and "ip=203.0.113.1" in first.excerpt
    start, end = map(int, first.source.rsplit(":", 1)[1].split("-"))
    with open(path) as f:
        lines = f.read().splitlines()
    assert "203.0.113.1" in lines[start - 1] and "203.0.113.1" in lines[end - 1]
    assert (
        "requests_in_minute=500" in first.excerpt and "top_path='/login.php' (500)" in first.excerpt
    )
    url = next(f for f in cc if f.title_key.endswith("one_url.title"))
    assert url.params == {
        "path": "/search",
        "per_minute": 1200,
        "ips": 300,
        "at": "2026-11-18 19:40 +0800",
        "repeat": "4.0",
    }
    assert url.severity is Severity.CRITICAL and "distinct_ips=300" in url.evidence[0].excerpt
    assert only(failed, "weblogs.crawlers") == []


def test_cc_attack_outside_the_window_is_not_reported(tmp_path):
    _, failed, _ = analyse(tmp_path, S.healthy(), S.cc_attack(), since="15m")
    assert only(failed, "weblogs.cc_attack") == []


def test_crawler_flood(tmp_path):
    _facts, failed, path = analyse(tmp_path, S.healthy(), S.crawler_flood())
    (finding,) = only(failed, "weblogs.crawlers")
    assert finding.severity is Severity.WARNING
    assert finding.params["requests_percent"] == 62 and finding.params["bytes_percent"] == 76
    assert finding.params["crawlers"].startswith("baiduspider (60 %)")
    assert finding.evidence[0].source == f"{path}:1-6000"
    assert "crawler=baiduspider requests=3600" in finding.evidence[0].excerpt
    assert "220.181.108.1 (180)" in finding.evidence[0].excerpt
    assert only(failed, "weblogs.cc_attack") == []  # 60 a minute from 20 addresses is a crawl


def test_big_downloads_without_hotlinking(tmp_path):
    _, failed, _ = analyse(tmp_path, S.healthy(), S.downloads())
    (finding,) = only(failed, "weblogs.heavy_downloads")
    assert finding.severity is Severity.WARNING and finding.params["percent"] == 96
    assert finding.params["sent_bytes"] == 960_000_000
    assert "path='/music/song0.mp3' kind=download requests=30" in finding.evidence[0].excerpt
    assert only(failed, "weblogs.hotlinking") == []


def test_hotlinking_from_another_site(tmp_path):
    _, failed, _ = analyse(tmp_path, S.healthy(), S.downloads(foreign=True))
    (finding,) = only(failed, "weblogs.hotlinking")
    assert finding.params["hosts"] == "bbs.forum.example.net"
    assert finding.params["own_hosts"] == "www.example.com"
    assert "referer_host=bbs.forum.example.net requests=120" in finding.evidence[0].excerpt
    assert "(inferred)" in finding.evidence[0].excerpt


def test_hotlinking_judged_against_configured_site_host(tmp_path):
    settings = Settings()
    settings = dataclasses.replace(
        settings, weblogs=dataclasses.replace(settings.weblogs, site_hosts=("forum.example.net",))
    )
    facts, failed, _ = analyse(tmp_path, S.healthy(), S.downloads(foreign=True), settings=settings)
    assert facts.own_hosts == ("forum.example.net",) and not facts.own_hosts_inferred
    assert only(failed, "weblogs.hotlinking") == []  # the forum is the site itself


def test_bad_gateway_spike(tmp_path):
    _, failed, path = analyse(tmp_path, S.healthy(), S.bad_gateway())
    (finding,) = only(failed, "weblogs.http_errors")
    assert finding.title_key == "finding.weblogs.http_errors.502.title"
    assert finding.remedy_key == "remedy.weblogs.http_errors.502"
    assert finding.severity is Severity.WARNING  # 16 % overall: above 2 %, below 20 %
    assert finding.params["count"] == 450 and finding.params["peak"] == 150
    assert finding.params["peak_percent"] == 79 and finding.params["at"] == "2026-11-18 19:50 +0800"
    assert "top_paths=[/index.php (450)]" in finding.evidence[0].excerpt
    assert finding.evidence[0].source == f"{path}:1-2850"


def test_stale_window_is_at_most_a_warning(tmp_path):
    settings = Settings()
    path = S.write(tmp_path / "access.log", S.healthy(), S.cc_attack())
    facts = collect_weblogs(LogRequest(files=(str(path),)), settings.weblogs)
    facts = dataclasses.replace(facts, read_at=facts.until_s + 3 * 86400.0)
    findings, _ = run_rules(registered_rules({"weblogs"}), {"settings": settings, "weblogs": facts})
    cc = only(findings, "weblogs.cc_attack")
    assert cc and all(f.severity is Severity.WARNING for f in cc)


def test_malformed_lines_are_reported_with_numbers(tmp_path):
    good = S.healthy(minutes=5)
    broken = [(t, "garbage line\n" if i in (3, 50) else text) for i, (t, text) in enumerate(good)]
    facts, failed, path = analyse(tmp_path, broken)
    (finding,) = only(failed, "weblogs.log_coverage")
    assert finding.severity is Severity.INFO
    assert finding.params["count"] == 2 and finding.params["lines"] == "4, 51"
    assert [e.source for e in finding.evidence] == [f"{path}:4", f"{path}:51"]
    assert facts.sources[0].malformed_lines == 2


def test_rules_skip_when_the_format_lacks_the_field(tmp_path):
    path = tmp_path / "common.log"
    path.write_text("".join(text.rsplit(' "', 2)[0] + "\n" for _, text in S.healthy(minutes=2)))
    facts = collect_weblogs(LogRequest(files=(str(path),)), Settings().weblogs)
    assert facts.sources[0].format_name == "common"
    findings, _ = run_rules(
        registered_rules({"weblogs"}), {"settings": Settings(), "weblogs": facts}
    )
    skipped = {f.rule_id: f.skip_reason for f in findings if f.status is Status.SKIPPED}
    assert skipped == {
        "weblogs.crawlers": "reason.weblogs.no_user_agent",
        "weblogs.hotlinking": "reason.weblogs.no_referer",
    }


@pytest.mark.parametrize(
    ("since", "until", "expected"),
    [("10m", None, 401), ("2026-11-18 19:50", "2026-11-18 19:54:59", 200), (None, "30m", 1200)],
)
def test_window_options(tmp_path, since, until, expected):
    facts, _, _ = analyse(tmp_path, S.healthy(), since=since, until=until)
    assert facts.requests == expected

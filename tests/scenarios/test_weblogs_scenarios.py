"""Web-log scenarios: recorded fact bundles (tests/scenarios/make_weblog_bundles.py)
replayed through ``hostmedic logs --from`` and ``hostmedic diagnose --only weblogs
--from``, findings asserted, the text people read compared with snapshots in all four
languages (regenerate with ``HOSTMEDIC_UPDATE_SNAPSHOTS=1``, then review the diff)."""

import json

import pytest

from tests.scenarios.test_scenarios import BUNDLES, LANGS, check_snapshot, run


def logs_json(bundle: str, lang: str = "en") -> dict:
    result = run(
        "logs", "--from", str(BUNDLES / f"weblogs_{bundle}.json"), "--json", "--lang", lang
    )
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == result.returncode
    return doc


def failed(doc: dict) -> set[tuple[str, str, str]]:
    return {
        (f["rule_id"], f["severity"], f["title_key"].split(".")[-2])
        for f in doc["findings"]
        if f["status"] == "failed"
    }


def test_attack_scenario_findings():
    doc = logs_json("attack")
    assert failed(doc) == {
        ("weblogs.cc_attack", "critical", "few_ips"),
        ("weblogs.cc_attack", "critical", "one_url"),
        ("weblogs.heavy_downloads", "warning", "heavy_downloads"),
        ("weblogs.hotlinking", "warning", "hotlinking"),
        ("weblogs.http_errors", "warning", "502"),
        ("weblogs.log_coverage", "info", "malformed"),
    }
    assert doc["exit_code"] == 2
    few = next(f for f in doc["findings"] if f["title_key"].endswith("few_ips.title"))
    assert few["evidence"][0]["source"] == "/var/log/nginx/access.log:1684-4420"
    assert few["runbook_ref"].startswith("seed 004 §被CC攻击")
    malformed = next(f for f in doc["findings"] if f["rule_id"] == "weblogs.log_coverage")
    assert [e["source"] for e in malformed["evidence"]] == [
        "/var/log/nginx/access.log:101",
        "/var/log/nginx/access.log:2001",
    ]


def test_crawled_and_healthy_scenarios():
    assert failed(logs_json("crawled")) == {("weblogs.crawlers", "warning", "crawlers")}
    healthy = logs_json("healthy")
    assert failed(healthy) == set() and healthy["exit_code"] == 0
    assert healthy["sources"][0]["compressed"] and healthy["sources"][0]["lines_in_window"] <= 1


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("bundle", ["attack", "crawled", "healthy"])
def test_logs_report_snapshot(bundle, lang):
    result = run("logs", "--from", str(BUNDLES / f"weblogs_{bundle}.json"), "--lang", lang)
    assert result.stderr == ""
    check_snapshot(f"logs.{bundle}.{lang}.txt", result.stdout)


@pytest.mark.parametrize("lang", LANGS)
def test_diagnose_weblogs_snapshot(lang):
    result = run(
        "diagnose",
        "--only",
        "weblogs",
        "--from",
        str(BUNDLES / "weblogs_attack.json"),
        "--lang",
        lang,
    )
    assert result.returncode == 2 and result.stderr == ""
    check_snapshot(f"diagnose.weblogs_attack.{lang}.txt", result.stdout)


def test_logs_json_snapshot():
    doc = logs_json("attack")
    doc["generated_at"] = "<time>"
    doc["tool"]["version"] = "<version>"
    check_snapshot("logs.attack.en.json", json.dumps(doc, ensure_ascii=False, indent=1) + "\n")

"""Health scenarios: the recorded sick and healthy servers replayed through the real CLI
(``diagnose --only health --from``), findings asserted, and the report people read
compared with snapshots in all four languages (see test_scenarios.py for updating)."""

import json

import pytest

from tests.scenarios.test_scenarios import BUNDLES, LANGS, check_snapshot, run


def diagnose(bundle: str, *extra: str) -> dict:
    result = run("diagnose", "--only", "health", "--from", str(BUNDLES / bundle), "--json", *extra)
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == result.returncode
    return doc


def test_sick_server():
    doc = diagnose("health_sick.json")
    failed = {(f["rule_id"], f["severity"]) for f in doc["findings"] if f["status"] == "failed"}
    assert ("health.cpu_top_consumer", "critical") in failed
    assert ("health.disk_space", "critical") in failed
    assert ("health.mount_busy", "warning") in failed
    assert doc["exit_code"] == 2
    busy = next(f for f in doc["findings"] if f["rule_id"] == "health.mount_busy")
    assert "fuser -cu /data" in busy["remedy"]
    assert busy["evidence"][0]["excerpt"].startswith("cwd pid=2300 name=bash user=admin")


def test_healthy_server_raises_nothing():
    doc = diagnose("health_healthy.json")
    assert doc["exit_code"] == 0
    assert [f for f in doc["findings"] if f["status"] == "failed"] == []


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("bundle", ["health_sick", "health_healthy"])
def test_health_report_snapshot(bundle, lang):
    result = run(
        "diagnose", "--only", "health", "--from", str(BUNDLES / f"{bundle}.json"), "--lang", lang
    )
    assert result.stderr == ""
    check_snapshot(f"diagnose.{bundle}.{lang}.txt", result.stdout)

"""Scenario tests: recorded fact bundles replayed through the real CLI (``--from``), with
the findings asserted and the output people read compared with snapshots in all four
languages. Regenerate snapshots after an intended change with
``HOSTMEDIC_UPDATE_SNAPSHOTS=1 pytest tests/scenarios``, then review the diff."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
BUNDLES = HERE / "bundles"
SNAPSHOTS = HERE / "snapshots"
LANGS = ("en", "zh_CN", "ja", "ko")
UPDATE = os.environ.get("HOSTMEDIC_UPDATE_SNAPSHOTS") == "1"


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "100", "LINES": "40", "NO_COLOR": "1", "LANG": "C.UTF-8"}
    env.pop("LC_ALL", None)
    return subprocess.run(
        [sys.executable, "-m", "hostmedic", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def check_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if UPDATE or not path.exists():
        path.write_text(text, encoding="utf-8")
        if not UPDATE:
            pytest.fail(f"snapshot {name} was missing and has been written; review and rerun")
    assert text == path.read_text(encoding="utf-8")


def diagnose_json(bundle: str, lang: str = "en") -> dict:
    result = run(
        "diagnose",
        "--only",
        "bandwidth",
        "--from",
        str(BUNDLES / bundle),
        "--cap",
        "5Mbit",
        "--json",
        "--lang",
        lang,
    )
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == result.returncode
    return doc


def test_compromised_server_findings():
    doc = diagnose_json("compromised.json")
    failed = {
        (f["rule_id"], f["severity"], f["params"].get("verdict"))
        for f in doc["findings"]
        if f["status"] == "failed"
    }
    assert ("bandwidth.saturation", "critical", None) in failed
    assert ("bandwidth.top_consumer", "critical", "suspicious") in failed
    assert ("bandwidth.top_consumer", "warning", "cloud-agent") in failed
    assert ("bandwidth.top_consumer", "warning", "unknown") in failed
    assert ("bandwidth.top_consumer", "info", "business") in failed
    assert ("bandwidth.top_talker_abroad", "critical", None) in failed
    assert doc["exit_code"] == 2
    miner = next(f for f in doc["findings"] if f["params"].get("pid") == 4242)
    assert {c["key"] for c in miner["clues"]} >= {
        "clue.exe_deleted",
        "clue.exe_in_temp",
        "clue.imitates_kernel_thread",
        "clue.flood_shape",
        "clue.many_destinations",
    }
    assert "exe=/tmp/.x/kworkerds (deleted)" in miner["evidence"][0]["excerpt"]
    assert miner["runbook_ref"].startswith("seed 000-003")


def test_healthy_server_raises_nothing():
    doc = diagnose_json("healthy.json")
    assert doc["exit_code"] == 0
    assert all(f["severity"] == "info" for f in doc["findings"] if f["status"] == "failed")


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("bundle", ["compromised", "healthy"])
def test_terminal_report_snapshot(bundle, lang):
    result = run(
        "diagnose",
        "--only",
        "bandwidth",
        "--from",
        str(BUNDLES / f"{bundle}.json"),
        "--cap",
        "5Mbit",
        "--lang",
        lang,
    )
    assert result.stderr == ""
    check_snapshot(f"diagnose.{bundle}.{lang}.txt", result.stdout)


@pytest.mark.parametrize("lang", LANGS)
def test_json_report_snapshot(lang):
    doc = diagnose_json("compromised.json", lang)
    doc["generated_at"] = "<time>"
    doc["tool"]["version"] = doc["tool"]["geo_database"] = "<version>"
    check_snapshot(
        f"diagnose.compromised.{lang}.json", json.dumps(doc, ensure_ascii=False, indent=1) + "\n"
    )


@pytest.mark.parametrize("lang", LANGS)
def test_bandwidth_tables_snapshot(lang):
    result = run("bandwidth", "--from", str(BUNDLES / "compromised.json"), "--lang", lang)
    assert result.returncode == 0 and result.stderr == ""
    check_snapshot(f"bandwidth.compromised.{lang}.txt", result.stdout)


@pytest.mark.parametrize("lang", LANGS)
def test_container_tables_snapshot(lang):
    result = run("bandwidth", "--from", str(BUNDLES / "containers.json"), "--lang", lang)
    assert result.returncode == 0 and result.stderr == ""
    check_snapshot(f"bandwidth.containers.{lang}.txt", result.stdout)


def test_containers_in_the_json_and_their_processes_judged():
    doc = diagnose_json("containers.json")
    bw = doc["bandwidth"]
    assert [c["label"] for c in bw["containers"]] == ["docker:3f2a1b4c5d6e", "podman:9e8d7c6b5a4f"]
    assert bw["containers"][0]["host_interfaces"] == ["veth3a1"]
    labels = {p["pid"]: p["container"] for p in bw["processes"]}
    assert labels == {7001: "docker:3f2a1b4c5d6e", 7100: "podman:9e8d7c6b5a4f", 650: None}
    assert {f["container"] for f in bw["flows"]} == {"docker:3f2a1b4c5d6e", "podman:9e8d7c6b5a4f"}
    sprayer = next(f for f in doc["findings"] if f["params"].get("pid") == 7001)
    assert sprayer["params"]["verdict"] == "suspicious"


def test_bad_bundle_is_a_clear_usage_error(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    result = run("diagnose", "--from", str(bad))
    assert result.returncode == 64
    assert "Traceback" not in result.stderr and "not a hostmedic facts file" in result.stderr
    result = run("diagnose", "--from", str(tmp_path / "missing.json"))
    assert result.returncode == 64 and "cannot read" in result.stderr

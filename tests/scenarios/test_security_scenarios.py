"""Security scenarios through the real CLI: recorded bundles replayed with ``--from``
(snapshots per language), and ``--root`` against fake machine roots."""

import json

import pytest

from tests.scenarios.test_scenarios import BUNDLES, LANGS, check_snapshot, run
from tests.security_tree import healthy_tree


def security_json(*args: str) -> dict:
    result = run("diagnose", "--only", "security", "--json", *args)
    assert result.stderr == "" or "Not running as root" in result.stderr
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == result.returncode
    return doc


def failed_rules(doc: dict) -> set[tuple[str, str]]:
    return {(f["rule_id"], f["severity"]) for f in doc["findings"] if f["status"] == "failed"}


def test_compromised_bundle_findings():
    doc = security_json("--from", str(BUNDLES / "security_compromised.json"))
    assert doc["exit_code"] == 2
    assert failed_rules(doc) >= {
        ("security.uid0_account", "critical"),
        ("security.suspicious_process", "critical"),
        ("security.hidden_process", "critical"),
        ("security.trojan_files", "critical"),
        ("security.modified_binary", "critical"),
        ("security.ld_preload", "critical"),
        ("security.startup_item", "critical"),
        ("security.authorized_keys", "critical"),
        ("security.brute_force", "critical"),
        ("security.redis_no_password", "critical"),
        ("security.admin_console", "critical"),
        ("security.login_abroad", "warning"),
        ("security.ssh_root_login", "warning"),
    }
    cron = next(f for f in doc["findings"] if f["rule_id"] == "security.startup_item")
    assert cron["evidence"][0]["source"] == "/etc/cron.d/sysupdate:1"
    assert cron["clues"][0]["key"] == "clue.download_exec"
    assert all(f["runbook_ref"].startswith("004 ") for f in doc["findings"])


def test_healthy_bundle_raises_nothing():
    doc = security_json("--from", str(BUNDLES / "security_healthy.json"))
    assert doc["exit_code"] == 0 and failed_rules(doc) == set()


@pytest.mark.parametrize("lang", LANGS)
def test_security_report_snapshot(lang):
    result = run(
        "diagnose",
        "--only",
        "security",
        "--from",
        str(BUNDLES / "security_compromised.json"),
        "--lang",
        lang,
    )
    assert result.stderr == ""
    check_snapshot(f"security.compromised.{lang}.txt", result.stdout)


def test_security_json_snapshot():
    doc = security_json("--from", str(BUNDLES / "security_compromised.json"), "--lang", "en")
    doc["generated_at"] = "<time>"
    doc["tool"]["version"] = doc["tool"]["geo_database"] = "<version>"
    check_snapshot(
        "security.compromised.en.json", json.dumps(doc, ensure_ascii=False, indent=1) + "\n"
    )


def test_root_option_on_a_healthy_and_a_planted_disk(tmp_path):
    tree = healthy_tree(tmp_path / "disk")
    doc = security_json("--root", str(tree.path), "--home-country", "CN")
    assert doc["exit_code"] == 0 and failed_rules(doc) == set()
    skipped = {f["rule_id"]: f["skip_reason"] for f in doc["findings"] if f["status"] == "skipped"}
    assert skipped["security.suspicious_process"] == "reason.not_live"
    tree.file("/etc/ld.so.preload", "/lib/x86_64-linux-gnu/libprocesshider.so\n")
    doc = security_json("--root", str(tree.path), "--home-country", "CN")
    assert doc["exit_code"] == 2 and failed_rules(doc) == {("security.ld_preload", "critical")}


def test_root_option_needs_a_directory(tmp_path):
    result = run("diagnose", "--only", "security", "--root", str(tmp_path / "missing"))
    assert result.returncode == 64 and "is not a directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_root_option_is_documented_in_every_language():
    for lang in LANGS:
        result = run("diagnose", "--help", "--lang", lang)
        assert "--root DIR" in result.stdout

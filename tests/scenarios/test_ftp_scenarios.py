"""FTP scenarios: bundles recorded from a real vsftpd behind a real nftables firewall
(record_ftp_bundles.py) replayed through the CLI, findings asserted, output compared
with snapshots in four languages (``HOSTMEDIC_UPDATE_SNAPSHOTS=1`` regenerates them)."""

import json

import pytest

from tests.scenarios.test_scenarios import BUNDLES, LANGS, check_snapshot, run


def ftp_json(bundle: str) -> dict:
    result = run("diagnose", "--only", "ftp", "--from", str(BUNDLES / bundle), "--json")
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == result.returncode
    return doc


def failed(doc: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for f in doc["findings"]:
        if f["status"] == "failed":
            found.setdefault(f["title_key"], []).append(f)
    return found


def test_broken_ftp_server():
    doc = ftp_json("ftp-broken.json")
    found = failed(doc)
    assert doc["exit_code"] == 2
    (passive,) = found["finding.ftp.passive_ports.drop.range.title"]
    assert (passive["severity"], passive["params"]["ports"]) == ("critical", "30050-30100")
    (full,) = found["finding.ftp.max_clients.full.title"]
    assert (full["params"]["sessions"], full["params"]["limit"]) == (2, 2)
    (refused,) = found["finding.ftp.max_clients.refused.title"]
    assert refused["severity"] == "warning" and refused["params"]["refused"] == 1
    assert "vsftpd.log lines 3-3" in refused["evidence"][0]["source"]
    assert full["runbook_ref"].startswith("004 §FTP 421")


def test_healthy_ftp_server_raises_nothing_about_it():
    doc = ftp_json("ftp-healthy.json")
    assert doc["exit_code"] == 0
    assert [f["params"]["config"] for fs in failed(doc).values() for f in fs] == [
        "/etc/vsftpd.conf"  # the machine's own vsftpd, installed and stopped: INFO
    ]


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("bundle", ["ftp-broken", "ftp-healthy"])
def test_ftp_report_snapshot(bundle, lang):
    result = run(
        "diagnose", "--only", "ftp", "--from", str(BUNDLES / f"{bundle}.json"), "--lang", lang
    )
    assert result.stderr == ""
    check_snapshot(f"diagnose.{bundle}.{lang}.txt", result.stdout)

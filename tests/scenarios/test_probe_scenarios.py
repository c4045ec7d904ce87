"""Scenario tests of the reachability runbook: evidence recorded in the lab
(make_probe_evidence.py) replayed through the real CLI — ``probe --offline`` merging a
client's probe with the target's ``diagnose --save``, and ``diagnose --only network
--from`` — with snapshots in four languages; command-line errors exit 64, no traceback."""

import json
from pathlib import Path

import pytest

from tests.scenarios.test_scenarios import LANGS, check_snapshot, run

EVIDENCE = Path(__file__).parent / "evidence"
CLIENT, INSIDE = str(EVIDENCE / "probe_client.json"), str(EVIDENCE / "probe_inside.json")


def merged(*extra: str) -> tuple[int, str]:
    result = run(
        "probe", "www.lab.test", "--offline", "--evidence", CLIENT, "--evidence", INSIDE, *extra
    )
    assert result.stderr == ""
    return result.returncode, result.stdout


def test_merged_evidence_names_both_sides_of_the_blocked_port():
    code, out = merged("--json")
    doc = json.loads(out)
    assert code == doc["exit_code"] == 1 and doc["schema"] == "hostmedic.probe/1"
    client, inside = (e["observation"] for e in doc["evidence"])
    assert {p["port"]: p["state"] for p in client["ports"]} == {80: "open", 9001: "timeout"}
    assert client["http"][1]["fingerprints"] == ["icp.aliyun"]
    assert (
        inside["inside"]["firewall"]["chains"][0]["rules"][1]["text"]
        == "l4proto tcp dport 9001 drop"
    )
    assert doc["fingerprints"] == {"icp.aliyun": {"kind": "icp_filing", "vendor": "Alibaba Cloud"}}
    assert doc["observation"] is None
    # the seed's tree asks about the page first: the filing notice, then the inside page
    verdict = doc["verdict"]
    assert (verdict["node"], verdict["complete"]) == ("1.1-B.1-A.1", False)
    assert [c["id"] for c in verdict["causes"][:2]] == ["icp_filing", "target_host_internal"]


@pytest.mark.parametrize("lang", LANGS)
def test_merged_evidence_snapshot(lang):
    code, out = merged("--lang", lang)
    assert code == 1
    check_snapshot(f"probe.merged.{lang}.txt", out)


@pytest.mark.parametrize("lang", LANGS)
def test_inside_checks_snapshot(lang):
    result = run("diagnose", "--only", "network", "--from", INSIDE, "--lang", lang)
    assert result.returncode == 1 and result.stderr == ""
    check_snapshot(f"diagnose.network.{lang}.txt", result.stdout)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bad name!"], "neither an IP address nor a host name"),
        (["x.test", "--url", "ftp://x.test/"], "not an http:// or https:// URL"),
        (["x.test", "--resolver", "nonsense"], "is not a resolver address"),
        (["x.test", "-4", "-6"], "exclude each other"),
        (["x.test", "--offline"], "needs at least one --evidence"),
        (
            ["x.test", "--offline", "--evidence", CLIENT, "--save", "/tmp/x.json"],
            "nothing to --save",
        ),
        (["x.test", "--port", "0"], "0 is not in the range"),
        (
            ["x.test", *[a for i in range(6) for a in ("--url", f"http://x{i}.test/")]],
            "at most 5 times",
        ),
    ],
)
def test_command_line_errors_exit_64(args, message):
    result = run("probe", *args)
    assert result.returncode == 64, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_bad_evidence_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "hostmedic.evidence/1", "observation": {"vantage": 1}}')
    result = run("probe", "x.test", "--offline", "--evidence", str(bad))
    assert result.returncode == 64 and "not a hostmedic evidence file" in result.stderr
    result = run("probe", "x.test", "--offline", "--evidence", str(tmp_path / "missing.json"))
    assert result.returncode == 64 and "cannot read" in result.stderr


def test_help_is_translated():
    assert "并排显示" in run("probe", "--help", "--lang", "zh_CN").stdout
    assert "--evidence" in run("probe", "--help").stdout

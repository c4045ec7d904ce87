"""``hostmedic logs`` end to end on generated files: exit codes, the JSON schema, usage
errors without tracebacks, custom formats, save/replay of the facts."""

import json

import pytest

from tests.scenarios.test_scenarios import run
from tests.unit import weblog_samples as S


@pytest.fixture(scope="module")
def attack_log(tmp_path_factory):
    return str(S.write(tmp_path_factory.mktemp("logs") / "access.log", S.healthy(), S.cc_attack()))


def test_json_document(attack_log):
    result = run("logs", attack_log, "--json")
    doc = json.loads(result.stdout)
    assert result.stderr == ""
    assert doc["schema"] == "hostmedic.logs/1"
    assert doc["exit_code"] == result.returncode == 1  # a week-old window: warnings at most
    assert doc["window"]["since"] == "2026-11-18 18:59 +0800"
    assert doc["requests"] == 15900 and doc["sources"][0]["path"] == attack_log
    assert doc["clients"][0]["ip"].startswith("203.0.113.")
    failed = {f["rule_id"] for f in doc["findings"] if f["status"] == "failed"}
    assert failed == {"weblogs.cc_attack"}
    cc = next(f for f in doc["findings"] if f["rule_id"] == "weblogs.cc_attack")
    assert cc["evidence"][0]["source"].startswith(attack_log + ":")


def test_terminal_report_and_save_then_replay(attack_log, tmp_path):
    saved = tmp_path / "facts.json"
    first = run("logs", attack_log, "--save", str(saved))
    assert first.returncode == 1 and "CC attack on /search" in first.stdout
    assert "Busiest client addresses" in first.stdout and "Traceback" not in first.stderr
    again = run("logs", "--from", str(saved), "--lang", "zh_CN")
    assert again.returncode == 1 and "遭受 CC 攻击" in again.stdout
    diagnose = run("diagnose", "--only", "weblogs", "--from", str(saved), "--json")
    doc = json.loads(diagnose.stdout)
    assert {f["rule_id"] for f in doc["findings"]} >= {"weblogs.cc_attack", "weblogs.crawlers"}


def test_healthy_log_exits_zero(tmp_path):
    path = S.write(tmp_path / "access.log", S.healthy())
    result = run("logs", str(path))
    assert result.returncode == 0 and "No problem found." in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("logs", "/nonexistent/access.log"), "cannot read /nonexistent/access.log"),
        (("logs", "{log}", "--since", "yesterday-ish"), "is not a time"),
        (("logs", "{log}", "--since", "1h", "--until", "2h"), "the window is empty"),
        (("logs", "{log}", "--format", "$remote_addr only"), "not a usable log format"),
        (("logs", "{log}", "--format", "nosuch"), "unknown log format"),
    ],
)
def test_usage_errors(attack_log, args, message):
    result = run(*(a.replace("{log}", attack_log) for a in args))
    assert result.returncode == 64, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_custom_format_and_unknown_format(tmp_path):
    fmt = '$remote_addr [$time_iso8601] "$request" $status $body_bytes_sent'
    path = tmp_path / "custom.log"
    path.write_text(
        '203.0.113.1 [2026-11-23T10:00:00+08:00] "GET /a HTTP/1.1" 200 10\n'
        '203.0.113.2 [2026-11-23T10:00:30+08:00] "GET /b.zip HTTP/1.1" 404 0\n'
    )
    result = run("logs", str(path), "--format", fmt, "--json")
    doc = json.loads(result.stdout)
    assert doc["requests"] == 2 and doc["sources"][0]["format_name"] == "custom"
    skipped = {f["rule_id"]: f["skip_reason"] for f in doc["findings"] if f["status"] == "skipped"}
    assert skipped["weblogs.crawlers"] == "reason.weblogs.no_user_agent"
    result = run("logs", str(path))
    assert result.returncode == 64 and "no access log could be read" in result.stderr


def test_config_table_is_checked_and_used(tmp_path):
    path = S.write(tmp_path / "access.log", S.healthy(), S.cc_attack())
    config = tmp_path / "config.toml"
    config.write_text("[weblogs]\nip_per_minute_warning = 'many'\n")
    result = run("logs", str(path), "--config", str(config))
    assert (
        result.returncode == 64 and "bad value 'many' for 'ip_per_minute_warning'" in result.stderr
    )
    config.write_text("[weblogs]\nnope = 1\n")
    assert "unknown setting 'nope'" in run("logs", str(path), "--config", str(config)).stderr
    config.write_text(
        "[weblogs]\nurl_per_minute = 5000\nip_per_minute_warning = 600\nuse_forwarded_for = true\n"
    )
    doc = json.loads(run("logs", str(path), "--config", str(config), "--json").stdout)
    assert not [f for f in doc["findings"] if f["status"] == "failed"]

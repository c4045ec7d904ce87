"""``hostmedic fix`` without privileges: the command helper, the journal, the confirmation
flow and the refusals, exercised through the real CLI on files of a temporary tree
(``--root``) and a temporary state directory."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hostmedic.errors import UsageError
from hostmedic.fix_commands import command_for
from hostmedic.i18n import catalog
from hostmedic.remedies.journal import STATES, Journal

CRONTAB = b"SHELL=/bin/sh\n# m h dom mon dow user command\n*/5 * * * * root /tmp/.x/miner\r\n"


def fix(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "LANG": "C.UTF-8"}
    env.pop("LC_ALL", None)
    return subprocess.run(
        [sys.executable, "-m", "hostmedic", "fix", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "root" / "etc").mkdir(parents=True)
    (tmp_path / "root" / "etc" / "crontab").write_bytes(CRONTAB)
    return tmp_path


def args(tree: Path, *more: str) -> list[str]:
    return [*more, "--root", str(tree / "root"), "--state-dir", str(tree / "state")]


def test_command_for_quotes_the_target():
    assert command_for("kill", 4242) == "hostmedic fix kill 4242"
    assert command_for("quarantine", "/tmp/a b") == "hostmedic fix quarantine '/tmp/a b'"
    with pytest.raises(ValueError):
        command_for("format-disk", "/")


def test_every_state_and_action_help_has_a_message():
    english = catalog("en")
    assert all(f"ui.fix.state.{s}" in english for s in STATES.values())
    from hostmedic.remedies import ACTIONS

    assert all(f"help.fix_{a.replace('-', '_')}" in english for a in ACTIONS)


def test_non_interactive_input_without_yes_is_refused_and_nothing_changes(tree):
    result = fix("disable-startup", "/etc/crontab:3", *args(tree)[2:], "--root", str(tree / "root"))
    assert result.returncode == 64
    assert "--dry-run" in result.stderr and "--yes" in result.stderr
    assert (tree / "root" / "etc" / "crontab").read_bytes() == CRONTAB
    assert not (tree / "state" / "journal.jsonl").exists()


def test_dry_run_prints_the_plan_only(tree):
    result = fix("disable-startup", "/etc/crontab:3", "--dry-run", "--json", *args(tree))
    assert result.returncode == 0
    doc = json.loads(result.stdout)
    assert (doc["schema"], doc["outcome"], doc["entry"]) == ("hostmedic.fix/1", "dry-run", None)
    assert doc["plan"]["steps"][0]["key"] == "ui.fix.step.comment_line"
    assert "*/5 * * * * root /tmp/.x/miner" in doc["plan"]["steps"][0]["text"]
    assert "will:" in result.stderr  # the human plan goes to stderr next to --json
    assert (tree / "root" / "etc" / "crontab").read_bytes() == CRONTAB


def test_comment_a_line_then_undo_restores_the_exact_bytes(tree):
    crontab = tree / "root" / "etc" / "crontab"
    crontab.chmod(0o640)
    done = json.loads(
        fix("disable-startup", "/etc/crontab:3", "--yes", "--json", *args(tree)).stdout
    )
    entry = done["entry"]
    assert (entry["state"], entry["reversible"], entry["before"]["line"]) == ("done", True, 3)
    text = crontab.read_bytes()
    assert (
        text.split(b"\n")[2]
        == f"#hostmedic-disabled {entry['id']}# */5 * * * * root /tmp/.x/miner\r".encode()
    )
    undone = fix("--undo", entry["id"], "--yes", *args(tree)[2:])
    assert undone.returncode == 0, undone.stderr
    assert crontab.read_bytes() == CRONTAB and (crontab.stat().st_mode & 0o777) == 0o640
    again = fix("--undo", entry["id"], "--yes", *args(tree)[2:])
    assert again.returncode == 64 and "already undone" in again.stderr


def test_undo_keeps_edits_made_after_the_fix(tree):
    crontab = tree / "root" / "etc" / "crontab"
    entry = json.loads(
        fix("disable-startup", "/etc/crontab:3", "--yes", "--json", *args(tree)).stdout
    )["entry"]
    crontab.write_bytes(crontab.read_bytes() + b"@daily root /usr/bin/backup\n")
    doc = json.loads(fix("--undo", entry["id"], "--yes", "--json", *args(tree)[2:]).stdout)
    assert doc["entry"]["result"] == {"restored": "line"}
    assert crontab.read_bytes() == CRONTAB + b"@daily root /usr/bin/backup\n"


def test_list_shows_every_entry_and_skips_torn_lines(tree):
    fix("disable-startup", "/etc/crontab:3", "--yes", *args(tree))
    with open(tree / "state" / "journal.jsonl", "a", encoding="utf-8") as f:
        f.write('{"id": "x", "event": "done"}\n{torn line\n')
    doc = json.loads(fix("--list", "--json", "--state-dir", str(tree / "state")).stdout)
    assert doc["schema"] == "hostmedic.fix-journal/1"
    assert [e["state"] for e in doc["entries"]] == ["done"]
    assert doc["skipped_lines"] == 2  # a "done" with no "started", and the torn line
    text = fix("--list", "--state-dir", str(tree / "state")).stdout
    assert "disable-startup /etc/crontab:3" in text and "[done]" in text


def test_a_started_entry_without_done_is_interrupted(tmp_path):
    journal = Journal(str(tmp_path))
    journal.append("started", "a", action="kill", target="9", reversible=False, before={"pid": 9})
    (entry,) = journal.entries()
    assert (entry.state, entry.before) == ("interrupted", {"pid": 9})
    journal.append("done", "a", result={"exited": True})
    assert journal.get("a").state == "done"
    with pytest.raises(UsageError):
        journal.get("missing")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["kill", "1"], "init system"),
        (["kill", str(os.getpid())], "hostmedic itself"),  # an ancestor of the child
        (["kill", "notapid"], "not a process id"),
        (["kill", "2"], "kernel thread"),
        (["block-ip", "127.0.0.1"], "loopback"),
        (["block-ip", "10.0.0.0/8"], "single IP address"),
        (["block-ip", "ff02::1"], "multicast"),
        (["lock-account", "root"], "root account"),
        (["lock-account", "no:such"], "not a valid account name"),
        (["quarantine", "/proc/self/status"], "pseudo filesystem"),
        (["quarantine", "relative/path"], "absolute path"),
        (["disable-startup", "not a unit"], "neither a systemd unit"),
    ],
)
def test_dangerous_targets_are_refused(argv, message, tmp_path):
    result = fix(*argv, "--yes", "--state-dir", str(tmp_path))
    assert result.returncode == 64, result.stderr
    assert message in result.stderr.replace("\n", " ") and "Traceback" not in result.stderr
    assert not (tmp_path / "journal.jsonl").exists()


def test_live_only_actions_refuse_a_root_tree(tree):
    result = fix("kill", "12345", "--yes", *args(tree))
    assert result.returncode == 64 and "--root" in result.stderr


def test_hostmedic_own_files_cannot_be_quarantined(tree):
    import hostmedic

    result = fix("quarantine", hostmedic.__file__, "--yes", "--state-dir", str(tree / "state"))
    assert result.returncode == 64 and "belongs to hostmedic" in result.stderr.replace("\n", " ")


def test_undo_of_an_unknown_id(tree):
    result = fix("--undo", "nope", "--state-dir", str(tree / "state"))
    assert result.returncode == 64 and "no entry nope" in result.stderr


def test_undo_and_an_action_together_is_a_usage_error(tree):
    result = fix("--undo", "x", "kill", "5", "--state-dir", str(tree / "state"))
    assert result.returncode == 64

"""The verdict and the ticket checklist as people read them, in all four languages, and
the JSON objects ``hostmedic probe --json`` carries (docs/reachability-tree.md).
Regenerate with ``HOSTMEDIC_UPDATE_SNAPSHOTS=1 pytest tests/scenarios``."""

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from hostmedic.analysis.reachability import checklist_of, walk
from hostmedic.i18n import Translator
from hostmedic.render.verdict_view import (
    checklist_to_dict,
    print_checklist,
    print_verdict,
    verdict_to_dict,
)
from tests.scenarios.test_scenarios import LANGS, check_snapshot, run
from tests.unit import reach_world as w


def _render(draw) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=100, color_system=None, highlight=False)
    draw(console)
    return buffer.getvalue()


CASES = {
    "host_firewall": lambda: w.target_host_internal()[1],
    "stopped_for_inside": lambda: w.service_down()[0],
    "source_sg": lambda: w.source_security_group()[1],
}


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_verdict_and_checklist_snapshots(case, lang):
    obs = CASES[case]()
    t = Translator(lang)
    verdict, checklist = walk(obs), checklist_of(obs)
    text = _render(lambda c: (print_verdict(c, verdict, t), print_checklist(c, checklist, t)))
    check_snapshot(f"reach.{case}.{lang}.txt", text)


def test_json_objects_carry_the_documented_fields():
    obs = w.target_host_internal()[1]
    t = Translator("en")
    doc = json.loads(json.dumps(verdict_to_dict(walk(obs), t)))
    assert doc["node"] == "2.1-A.1-B" and doc["complete"] is True and doc["tree"] == "public"
    first = doc["causes"][0]
    assert first["id"] == "target_host_internal" and first["rank"] == 1
    assert set(first) >= {"id", "rank", "for", "against", "separating_check", "remedy"}
    assert first["for"][0]["key"].startswith("verdict.reach.why.") and first["for"][0]["text"]
    assert [s["node"] for s in doc["path"]][:2] == ["1.1", "1.1-B"]
    checklist = checklist_to_dict(checklist_of(obs), t)
    assert [s["step"] for s in checklist["steps"]] == list(range(1, 9))
    assert checklist["steps"][7]["status"] == "manual"


def test_untrusted_text_is_escaped():
    obs = w.merged(
        w.service_down()[0],
        primary=w.client("evil\x1b[2Jclient", ports=w.ports(p3306="refused")),
    )
    text = _render(lambda c: print_checklist(c, checklist_of(obs), Translator("en")))
    assert "\x1b" not in text


EVIDENCE = Path(__file__).parent / "evidence"


def _offline(*args: str):
    return run(
        "probe",
        "www.lab.test",
        "--offline",
        "--evidence",
        str(EVIDENCE / "probe_client.json"),
        "--evidence",
        str(EVIDENCE / "probe_inside.json"),
        *args,
    )


def test_probe_json_carries_verdict_and_checklist():
    result = _offline("--json", "--checklist", "--access", "private")
    doc = json.loads(result.stdout)
    assert doc["verdict"]["tree"] == "private" and doc["checklist"]["access"] == "private"
    assert [s["step"] for s in doc["checklist"]["steps"]] == list(range(1, 9))
    answered = _offline("--json", "--console", "security_group=blocks")
    ids = [c["id"] for c in json.loads(answered.stdout)["verdict"]["causes"]]
    assert ids[0] == "icp_filing"  # the page question comes first in the public tree


def test_bad_console_answer_is_a_usage_error():
    result = _offline("--console", "instance_state=maybe")
    assert result.returncode == 64 and "Traceback" not in result.stderr
    assert "instance_state=running|stopped_arrears|locked" in result.stderr

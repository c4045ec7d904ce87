"""The findings report for people: ranked by severity, each with why, evidence, what to do
and the runbook step it comes from. Every string from the machine goes through
:func:`sanitize`; rich markup is never parsed from data.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from hostmedic.i18n import Translator
from hostmedic.model import Finding, Severity, Status
from hostmedic.render.safe_text import sanitize
from hostmedic.render.units import humanize_params

_STYLE = {Severity.CRITICAL: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def _params(f: Finding, t: Translator) -> dict[str, Any]:
    shown = humanize_params({k: v for k, v in f.params.items() if k != "clues"})
    if "what_key" in shown:
        shown["what"] = t(str(shown["what_key"]))
    return {k: sanitize(v) for k, v in shown.items()}


def _line(label: str, text: str, style: str = "") -> Text:
    line = Text("    ")
    line.append(f"{label}: ", style="dim")
    line.append(text, style=style)
    return line


def print_findings(
    console: Console,
    findings: list[Finding],
    errors: list[str],
    t: Translator,
    verbose: bool = False,
) -> None:
    """Print failed findings in full, skipped checks with their reason, passed ones as a count."""
    failed = [f for f in findings if f.status is Status.FAILED]
    skipped = [f for f in findings if f.status is Status.SKIPPED]
    passed = [f for f in findings if f.status is Status.PASSED]
    if not any(f.severity > Severity.INFO for f in failed):
        console.print(Text(t("ui.report.all_clear"), style="bold green"))
    for f in failed:
        params = _params(f, t)
        head = Text()
        head.append(f"{t('ui.severity.' + f.severity.name.lower()):<9} ", style=_STYLE[f.severity])
        head.append(t(f.title_key, **params), style="bold")
        head.append(f"  [{f.rule_id}]", style="dim")
        console.print(head)
        for key, clue_params in f.params.get("clues", []):
            safe = {k: sanitize(v) for k, v in clue_params.items()}
            console.print(_line(t("ui.report.why"), t(key, **safe)))
        for e in f.evidence:
            console.print(
                _line(
                    t("ui.report.evidence"), f"{sanitize(e.source)}: {sanitize(e.excerpt)}", "dim"
                )
            )
        if f.remedy_key:
            console.print(_line(t("ui.report.remedy"), t(f.remedy_key, **params), "green"))
        if f.runbook_ref:
            console.print(_line(t("ui.report.runbook"), f.runbook_ref, "dim"))
        console.print()
    for f in skipped:
        reason = t(f.skip_reason or "reason.generic", **_params(f, t))
        line = Text(f"{t('ui.status.skipped'):<9} ", style="dim")
        line.append(f"{t(f.title_key)} — {reason}")
        console.print(line)
    if passed:
        names = ", ".join(t(f.title_key) for f in passed) if verbose else str(len(passed))
        console.print(Text(t("ui.report.passed", checks=names), style="green"))
    for err in errors:
        console.print(Text(t("error.rule_crashed", detail=sanitize(err)), style="bold red"))

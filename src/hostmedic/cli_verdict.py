"""The decision-tree part of ``hostmedic probe``: its options, the verdict and the checklist.

``cli_probe`` adds :func:`verdict_options` to its options and calls :func:`verdict_json`
(``--json``) or :func:`print_verdict_part` after its own report. The evidence it already
loaded is reused; only the target's *bandwidth* facts, which evidence files do not carry,
are read here from the diagnose bundles among ``--evidence`` (a ``hostmedic.facts/1``
bundle saved with ``diagnose --save``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import click
from rich.console import Console

from hostmedic.analysis.reach_observations import CONSOLE_KEYS
from hostmedic.errors import UsageError
from hostmedic.facts.bandwidth import BandwidthFacts
from hostmedic.facts.probe import Observation
from hostmedic.i18n import Translator


def verdict_options(t: Translator) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--access``, ``--checklist``, ``--console KEY=VALUE`` and ``--cap RATE``."""
    options = [
        click.option(
            "--access",
            type=click.Choice(["private", "public"]),
            help=t("help.opt.probe.access"),
        ),
        click.option("--checklist", is_flag=True, help=t("help.opt.probe.checklist")),
        click.option(
            "--console",
            "console_answers",
            multiple=True,
            metavar="KEY=VALUE",
            help=t("help.opt.probe.console"),
        ),
        click.option("--cap", "target_cap", metavar="RATE", help=t("help.opt.probe.cap")),
    ]

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


def parse_console(answers: Sequence[str]) -> dict[str, str]:
    """``instance_state=stopped_arrears`` … → dict; UsageError on an unknown key or value."""
    parsed: dict[str, str] = {}
    for answer in answers:
        key, _, value = answer.partition("=")
        if value not in CONSOLE_KEYS.get(key, ()):
            choices = "; ".join(f"{k}={'|'.join(v)}" for k, v in CONSOLE_KEYS.items())
            raise UsageError("error.bad_console_answer", value=answer, choices=choices)
        parsed[key] = value
    return parsed


def bandwidth_in(paths: Sequence[str]) -> BandwidthFacts | None:
    """The first ``bandwidth`` fact among the diagnose bundles given as evidence."""
    from hostmedic.facts.bundle import BUNDLE_SCHEMA
    from hostmedic.gather import load_facts

    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                schema = json.load(f).get("schema")
        except (OSError, ValueError, AttributeError):
            continue  # cli_probe has already reported unreadable evidence files
        if schema == BUNDLE_SCHEMA:
            facts = load_facts(path).get("bandwidth")
            if isinstance(facts, BandwidthFacts):
                return facts
    return None


def _inputs(everything: list[Observation], o: dict[str, Any]) -> dict[str, Any]:
    from hostmedic.settings import parse_bitrate

    cap = parse_bitrate(o["target_cap"]) if o.get("target_cap") else None
    return {
        "access": o.get("access"),
        "console": parse_console(o.get("console_answers", ())),
        "bandwidth": bandwidth_in(o.get("evidence", ())),
        "cap_bits_per_s": cap,
    }


def verdict_json(everything: list[Observation], o: dict[str, Any], t: Translator) -> dict[str, Any]:
    """``verdict`` (and with ``--checklist``, ``checklist``) for the probe's JSON document."""
    from hostmedic.analysis.reachability import checklist_for, verdict_for
    from hostmedic.render.verdict_view import checklist_to_dict, verdict_to_dict

    inputs = _inputs(everything, o)
    out: dict[str, Any] = {"verdict": verdict_to_dict(verdict_for(everything, **inputs), t)}
    if o.get("checklist"):
        out["checklist"] = checklist_to_dict(checklist_for(everything, access=inputs["access"]), t)
    return out


def print_verdict_part(
    console: Console, everything: list[Observation], o: dict[str, Any], t: Translator
) -> None:
    """The verdict after the probe's own report, then the checklist when asked for."""
    from hostmedic.analysis.reachability import checklist_for, verdict_for
    from hostmedic.render.verdict_view import print_checklist, print_verdict

    inputs = _inputs(everything, o)
    console.print()
    print_verdict(console, verdict_for(everything, **inputs), t)
    if o.get("checklist"):
        console.print()
        print_checklist(console, checklist_for(everything, access=inputs["access"]), t)

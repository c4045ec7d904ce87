"""The reachability verdict and the ticket checklist, for people and for ``--json``.

``hostmedic probe`` prints :func:`print_verdict` after its probe results (and
:func:`print_checklist` with ``--checklist``); its JSON document carries
:func:`verdict_to_dict` under ``verdict`` and :func:`checklist_to_dict` under
``checklist`` (docs/reachability-tree.md). Every string from the evidence goes through
:func:`sanitize`; rich markup is never parsed from data.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.text import Text

from hostmedic.analysis.reach_checklist import MANUAL, NOT_NEEDED, NOT_RECORDED, ChecklistItem
from hostmedic.analysis.reach_symptoms import Reason
from hostmedic.analysis.reach_tree import QUESTION, tree_data
from hostmedic.analysis.reachability import Checklist, Verdict
from hostmedic.i18n import Translator
from hostmedic.render.safe_text import sanitize

STATES = ("open", "refused", "timeout", "unreachable", "local_block", "error")
_ANSWER = {
    True: "ui.reach.answer_yes",
    False: "ui.reach.answer_no",
    None: "ui.reach.answer_unknown",
}


def reason_text(r: Reason, t: Translator) -> str:
    """A reason in the operator's language, its parameters made safe to print (a port's
    ``state`` is one of a few known words, shown translated)."""
    params = {k: sanitize(v) for k, v in r.params}
    if params.get("state") in STATES:
        params["state"] = t(f"verdict.reach.state.{params['state']}")
    return t(r.key, **params)


def _reason_dict(r: Reason, t: Translator) -> dict[str, Any]:
    return {"key": r.key, "params": dict(r.params), "text": reason_text(r, t)}


def _node_text(tree: str, node_id: str, t: Translator) -> str:
    node = tree_data().trees[tree].node(node_id)
    return t(node.question if node.kind == QUESTION else node.label)


def verdict_to_dict(v: Verdict, t: Translator) -> dict[str, Any]:
    """The ``verdict`` object of the probe's JSON document."""
    return {
        "tree": v.tree,
        "node": v.node,
        "node_text": _node_text(v.tree, v.node, t),
        "complete": v.complete,
        "decide": _reason_dict(v.decide, t) if v.decide else None,
        "remedy_key": v.remedy,
        "remedy": t(v.remedy) if v.remedy else None,
        "path": [
            {
                "node": s.node,
                "text": _node_text(v.tree, s.node, t),
                "answer": s.answer,
                "evidence": [_reason_dict(r, t) for r in s.reasons],
            }
            for s in v.steps
        ],
        "causes": [
            {
                "id": c.id,
                "rank": c.rank,
                "score": c.score,
                "title": t(f"verdict.reach.cause.{c.id}"),
                "for": [_reason_dict(r, t) for r in c.evidence_for],
                "against": [_reason_dict(r, t) for r in c.evidence_against],
                "separating_check_key": c.separating_check,
                "separating_check": t(c.separating_check),
                "console_only": c.console_only,
                "remedy_key": c.remedy,
                "remedy": t(c.remedy),
            }
            for c in v.causes
        ],
    }


def _line(label: str, text: str, style: str = "", indent: int = 6) -> Text:
    line = Text(" " * indent)
    line.append(f"{label}: ", style="dim")
    line.append(text, style=style)
    return line


def print_verdict(console: Console, v: Verdict, t: Translator, limit: int = 4) -> None:
    """The walk through the tree, where it ended, and the ``limit`` most likely causes."""
    access = t(f"ui.reach.access_{v.tree}")
    console.print(Text(t("ui.reach.title", target=sanitize(v.target), access=access), "bold"))
    console.print(Text(t("ui.reach.walk"), style="dim"))
    for s in v.steps:
        if s.node == v.node and not v.complete:
            continue
        line = Text(f"  {s.node:<16} ", style="cyan")
        line.append(_node_text(v.tree, s.node, t))
        if tree_data().trees[v.tree].node(s.node).kind == QUESTION:
            line.append(f" → {t(_ANSWER[s.answer])}", style="bold")
        console.print(line)
        for r in s.reasons:
            console.print(Text(f"{'':19}· {reason_text(r, t)}", style="dim"))
    text = _node_text(v.tree, v.node, t)
    if v.complete:
        console.print(Text(t("ui.reach.reached", node=v.node, label=text), style="bold"))
        if v.remedy:
            console.print(_line(t("ui.reach.instruction"), t(v.remedy), "green", 2))
    else:
        console.print(Text(t("ui.reach.stopped", node=v.node), style="bold yellow"))
        console.print(Text(f"  {text}"))
        if v.decide:
            console.print(_line(t("ui.reach.decide"), reason_text(v.decide, t), "yellow", 2))
    console.print(Text(t("ui.reach.causes"), style="bold"))
    for c in v.causes[:limit]:
        head = Text(f"  {c.rank}. ")
        head.append(t(f"verdict.reach.cause.{c.id}"), style="bold")
        head.append(f"  [{c.id}]", style="dim")
        if c.console_only:
            head.append(f"  ({t('ui.reach.console_only')})", style="magenta")
        console.print(head)
        for r in c.evidence_for:
            console.print(_line(t("ui.reach.for"), reason_text(r, t), "green"))
        for r in c.evidence_against:
            console.print(_line(t("ui.reach.against"), reason_text(r, t), "red"))
        console.print(_line(t("ui.reach.separating"), t(c.separating_check)))
        console.print(_line(t("ui.reach.remedy"), t(c.remedy), "green"))


def _item_text(item: ChecklistItem, target: str, t: Translator) -> list[str]:
    if item.status == NOT_RECORDED:
        where = t(f"ui.reach.{item.where}")
        return [f"{t('ui.reach.not_recorded', command=sanitize(item.command))} ({where})"]
    if item.status == MANUAL:
        return [t("ui.reach.manual", target=sanitize(target))]
    texts = [reason_text(r, t) for r in item.results]
    if item.status == NOT_NEEDED:
        return [f"{t('ui.reach.not_needed')}: {'; '.join(texts)}"]
    return texts


def checklist_to_dict(c: Checklist, t: Translator) -> dict[str, Any]:
    """The ``checklist`` object of the probe's JSON document."""
    return {
        "access": c.access,
        "section": c.section,
        "steps": [
            {
                "step": item.step,
                "text_key": item.text_key,
                "text": t(item.text_key),
                "status": item.status,
                "results": [_reason_dict(r, t) for r in item.results],
                "command": item.command,
                "where": item.where if item.status == NOT_RECORDED else None,
                "summary": _item_text(item, c.target, t),
            }
            for item in c.items
        ],
    }


def print_checklist(console: Console, c: Checklist, t: Translator) -> None:
    """The seed's eight steps, each with what was recorded or how to record it."""
    access = t(f"ui.reach.access_{c.access}")
    console.print(Text(t("ui.reach.checklist_title", access=access, section=c.section), "bold"))
    for item in c.items:
        console.print(Text(f"{item.step}. {t(item.text_key)}"))
        style = "yellow" if item.status == NOT_RECORDED else "dim"
        for text in _item_text(item, c.target, t):
            console.print(Text(f"     {text}", style=style))

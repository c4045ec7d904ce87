"""``hostmedic fix``: the remedies the findings name, as explicit actions.

Every action prints exactly what it will do, asks for confirmation (``--yes`` skips it; a
non-interactive stdin without ``--yes`` is refused), refuses dangerous targets, journals
itself before acting (write-ahead) and after, and — except ``kill`` — can be reversed with
``hostmedic fix --undo ID``. ``--list`` shows the journal, ``--dry-run`` the plan only,
``--json`` prints the ``hostmedic.fix/1`` document (docs/fix.md). Exit codes: 0 done (or
nothing to do, or a dry run), 1 declined at the prompt, 3 the action failed, 64 refused or
a usage error.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import click
from rich.console import Console

from hostmedic import __version__
from hostmedic.errors import UsageError
from hostmedic.i18n import LANGUAGES, Translator
from hostmedic.render.safe_text import sanitize

FIX_SCHEMA = "hostmedic.fix/1"
JOURNAL_SCHEMA = "hostmedic.fix-journal/1"
EXIT_DECLINED, EXIT_FAILED = 1, 3


@dataclass(frozen=True)
class Options:
    """The options every fix invocation shares (given before or after the action name)."""

    yes: bool
    dry_run: bool
    as_json: bool
    state_dir: str
    root: str

    def merged(self, **given: Any) -> Options:
        """Options of a subcommand over the group's: flags add up, values replace."""
        return Options(
            yes=self.yes or bool(given.get("yes")),
            dry_run=self.dry_run or bool(given.get("dry_run")),
            as_json=self.as_json or bool(given.get("as_json")),
            state_dir=given.get("state_dir") or self.state_dir,
            root=given.get("root") or self.root,
        )


def _shared(t: Translator, defaults: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    from hostmedic.remedies.journal import DEFAULT_STATE_DIR

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(
            [
                click.option("--yes", "-y", is_flag=True, help=t("help.opt.fix_yes")),
                click.option("--dry-run", is_flag=True, help=t("help.opt.fix_dry_run")),
                click.option("--json", "as_json", is_flag=True, help=t("help.opt.fix_json")),
                click.option(
                    "--state-dir",
                    metavar="DIR",
                    default=DEFAULT_STATE_DIR if defaults else None,
                    show_default=defaults,
                    help=t("help.opt.fix_state_dir"),
                ),
                click.option(
                    "--root",
                    metavar="DIR",
                    default="/" if defaults else None,
                    help=t("help.opt.fix_root"),
                ),
                click.option(
                    "--lang",
                    "_lang",
                    type=click.Choice(LANGUAGES),
                    expose_value=False,
                    help=t("help.opt.lang"),
                ),
            ]
        ):
            f = option(f)
        return f

    return decorate


class _Out:
    """Human text on stdout, or on stderr when stdout carries the JSON document."""

    def __init__(self, t: Translator, as_json: bool) -> None:
        self.t = t
        self.console = Console(stderr=as_json, highlight=False)

    def say(self, key: str, style: str = "", **params: Any) -> None:
        safe = {k: sanitize(v) for k, v in params.items()}
        self.console.print(self.t(key, **safe), style=style, markup=False)


def _messages(t: Translator, messages: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [{"key": k, "params": p, "text": t(k, **p)} for k, p in messages]


def _document(t: Translator, plan: Any, outcome: str, entry: Any = None) -> str:
    doc = {
        "schema": FIX_SCHEMA,
        "tool": {"name": "hostmedic", "version": __version__},
        "outcome": outcome,
        "plan": None
        if plan is None
        else {
            "action": plan.action,
            "target": plan.target,
            "reversible": plan.reversible,
            "steps": _messages(t, plan.steps),
            "notes": _messages(t, plan.notes),
        },
        "entry": entry.to_dict() if entry is not None else None,
    }
    return json.dumps(doc, ensure_ascii=False, indent=2)


@contextlib.contextmanager
def _locked(state_dir: str) -> Iterator[None]:
    """One remedy at a time per state directory (two block-ip runs must not both create
    the table)."""
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    fd = os.open(os.path.join(state_dir, "fix.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _confirm(out: _Out, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError("error.fix.not_interactive")
    if not click.confirm(out.t("ui.fix.confirm"), default=False, err=True):
        out.say("ui.fix.declined", style="yellow")
        sys.exit(EXIT_DECLINED)


def _show_plan(out: _Out, plan: Any, heading: str) -> None:
    out.say(heading, style="bold", action=plan.action, target=plan.target)
    for key, params in plan.steps:
        out.say(key, **params)
    for key, params in plan.notes:
        out.say(key, style="yellow", **params)


def _perform(
    t: Translator,
    opts: Options,
    name: str,
    target: str,
    undo_of: Any = None,
    **extra: Any,
) -> None:
    """Plan, show, confirm, journal, act, journal — for an action or for an undo."""
    from hostmedic.remedies import ACTIONS
    from hostmedic.remedies.journal import Journal, new_id
    from hostmedic.remedies.model import ActionFailed, FixContext, NothingToDo

    out = _Out(t, opts.as_json)
    journal = Journal(opts.state_dir)
    action = ACTIONS[name]
    entry_id = undo_of.id if undo_of is not None else new_id()
    root = undo_of.before.get("root", "/") if undo_of is not None else os.path.abspath(opts.root)
    ctx = FixContext(opts.state_dir, entry_id, root, **extra)
    try:
        plan = action.plan_undo(undo_of.before, ctx) if undo_of else action.plan(target, ctx)
    except NothingToDo as exc:
        out.say(exc.key, style="green", **exc.params)
        if opts.as_json:
            click.echo(_document(t, None, "nothing-to-do"))
        return
    _show_plan(out, plan, "ui.fix.plan_undo" if undo_of else "ui.fix.plan")
    if opts.dry_run:
        if opts.as_json:
            click.echo(_document(t, plan, "dry-run"))
        return
    _confirm(out, opts.yes)
    started, finished, failed = (
        ("undo-started", "undone", "undo-failed") if undo_of else ("started", "done", "failed")
    )
    with _locked(opts.state_dir):
        fields: dict[str, Any] = {}
        if not undo_of:
            before = {**plan.before, "root": root}
            fields = {"action": name, "target": plan.target, "reversible": plan.reversible}
            fields["before"] = before
        journal.append(started, entry_id, **fields)
        try:
            apply: Callable[..., dict[str, Any]] = action.undo if undo_of else action.apply
            result = apply(plan.before if undo_of else plan, ctx)
        except (ActionFailed, OSError) as exc:
            if isinstance(exc, OSError):  # an unexpected refusal of the system, not a bug
                exc = ActionFailed("error.fix.system", detail=f"{exc.strerror}: {exc.filename}")
            journal.append(failed, entry_id, error=t(exc.key, **exc.params))
            out.say(exc.key, style="bold red", **exc.params)
            if opts.as_json:
                click.echo(_document(t, plan, failed, journal.get(entry_id)))
            sys.exit(EXIT_FAILED)
        journal.append(finished, entry_id, result=result)
    entry = journal.get(entry_id)
    _report(out, name, entry, result, undo_of is not None)
    if opts.as_json:
        click.echo(_document(t, plan, finished, entry))


def _report(out: _Out, name: str, entry: Any, result: dict[str, Any], undone: bool) -> None:
    if undone:
        out.say("ui.fix.undone", style="green", id=entry.id)
        return
    if name == "kill" and not result.get("exited"):
        out.say("ui.fix.still_running", style="yellow", pid=entry.target)
    for missed in result.get("metadata_not_kept") or []:
        out.say("ui.fix.metadata_not_kept", style="yellow", detail=missed)
    key = "ui.fix.done" if entry.reversible else "ui.fix.done_irreversible"
    out.say(key, style="green", id=entry.id)


def _list(t: Translator, opts: Options) -> None:
    from hostmedic.remedies.journal import Journal

    journal = Journal(opts.state_dir)
    entries = journal.entries()
    if opts.as_json:
        doc = {
            "schema": JOURNAL_SCHEMA,
            "journal": journal.path,
            "entries": [e.to_dict() for e in entries],
            "skipped_lines": journal.skipped_lines,
        }
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    out = _Out(t, False)
    if not entries:
        out.say("ui.fix.journal_empty", path=journal.path)
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.time))
        state = t(f"ui.fix.state.{e.state}")
        if not e.reversible:
            state = f"{state}, {t('ui.fix.irreversible')}"
        out.say(
            "ui.fix.journal_line", id=e.id, time=when, action=e.action, target=e.target, state=state
        )
    if journal.skipped_lines:
        out.say("ui.fix.journal_skipped", style="yellow", count=journal.skipped_lines)


def _undo(t: Translator, opts: Options, entry_id: str) -> None:
    from hostmedic.remedies import ACTIONS
    from hostmedic.remedies.journal import Journal

    entry = Journal(opts.state_dir).get(entry_id)
    if entry.state == "undone":
        raise UsageError("error.fix.already_undone", id=entry_id)
    if entry.action not in ACTIONS:
        raise UsageError("error.fix.unknown_action", id=entry_id, action=entry.action)
    _perform(t, opts, entry.action, entry.target, undo_of=entry)


def register(cli: click.Group, t: Translator) -> None:
    """Add ``hostmedic fix`` and its actions to the command tree."""

    @cli.group("fix", help=t("help.fix"), invoke_without_command=True)
    @_shared(t, defaults=True)
    @click.option("--undo", "undo_id", metavar="ID", help=t("help.opt.fix_undo"))
    @click.option("--list", "show_list", is_flag=True, help=t("help.opt.fix_list"))
    @click.pass_context
    def fix(ctx: click.Context, /, undo_id: str | None, show_list: bool, **given: Any) -> None:
        opts = Options(False, False, False, given["state_dir"], given["root"]).merged(**given)
        ctx.obj = {**(ctx.obj or {}), "fix": opts}
        if ctx.invoked_subcommand:
            if undo_id or show_list:
                raise UsageError("error.fix.undo_with_action")
            return
        if show_list:
            _list(t, opts)
        elif undo_id:
            _undo(t, opts, undo_id)
        else:
            click.echo(ctx.get_help(), err=True)
            sys.exit(64)

    def action_command(name: str, metavar: str) -> Callable[..., Any]:
        def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
            f = _shared(t, defaults=False)(f)
            f = click.argument("target", metavar=metavar)(f)
            f = click.pass_context(f)
            return fix.command(name, help=t(f"help.fix_{name.replace('-', '_')}"))(f)

        return decorate

    def run(ctx: click.Context, name: str, target: str, **given: Any) -> None:
        extra = {k: given.pop(k) for k in ("signal", "wait_s") if k in given}
        _perform(t, ctx.obj["fix"].merged(**given), name, target, **extra)

    @action_command("kill", "PID")
    @click.option(
        "--signal",
        type=click.Choice(("TERM", "KILL")),
        default="TERM",
        show_default=True,
        help=t("help.opt.fix_signal"),
    )
    @click.option(
        "--wait",
        "wait_s",
        type=click.FloatRange(0, 300),
        default=5.0,
        show_default=True,
        help=t("help.opt.fix_wait"),
    )
    def kill(ctx: click.Context, target: str, **given: Any) -> None:
        run(ctx, "kill", target, **given)

    for name, metavar in (
        ("stop-unit", "UNIT"),
        ("block-ip", "ADDRESS"),
        ("lock-account", "USER"),
        ("disable-startup", "UNIT|FILE:LINE"),
        ("quarantine", "PATH"),
    ):

        def command(ctx: click.Context, target: str, _name: str = name, **given: Any) -> None:
            run(ctx, _name, target, **given)

        action_command(name, metavar)(command)

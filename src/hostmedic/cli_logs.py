"""``hostmedic logs [FILES…]``: the web-log analysis on its own, with its tables, the
findings of the ``weblogs`` checks, and ``--json`` (schema ``hostmedic.logs/1``,
docs/weblogs.md). Exit codes as ``diagnose``: 0 nothing wrong, 1 warnings, 2 critical,
3 hostmedic failed, 64 bad command line.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console

from hostmedic import __version__
from hostmedic.errors import FactUnavailable, UsageError
from hostmedic.i18n import LANGUAGES, Translator

LOGS_SCHEMA = "hostmedic.logs/1"


@contextmanager
def _progress(t: Translator) -> Iterator[Callable[[float], None] | None]:
    """A transient progress bar on stderr while big logs are read (terminals only)."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress

    bar = Progress(console=Console(stderr=True), transient=True)
    task = bar.add_task(t("ui.progress.logs"), total=1.0)
    bar.start()
    try:
        yield lambda done: bar.update(task, completed=done)
    finally:
        bar.stop()


def logs_document(
    facts: Any, findings: list[Any], errors: list[str], code: int, t: Translator
) -> str:
    """The ``hostmedic logs --json`` document."""
    from hostmedic.facts.bundle import to_jsonable
    from hostmedic.render.json_report import finding_to_dict

    body = to_jsonable(facts)
    doc = {
        "schema": LOGS_SCHEMA,
        "tool": {"name": "hostmedic", "version": __version__},
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "language": t.language,
        "exit_code": code,
        "window": {
            "since": facts.clock(facts.since_s),
            "until": facts.clock(facts.until_s),
            "since_s": facts.since_s,
            "until_s": facts.until_s,
            "utc_offset_s": facts.utc_offset_s,
        },
        **{k: v for k, v in body.items() if k not in ("since_s", "until_s", "utc_offset_s")},
        "findings": [finding_to_dict(f, t) for f in findings],
        "internal_errors": errors,
    }
    return json.dumps(doc, ensure_ascii=False, indent=2)


def _settings(
    config: str | None, site_hosts: tuple[str, ...], jobs: int | None, top: int, forwarded: bool
) -> Any:
    from hostmedic.settings import build_settings, load_config

    settings = build_settings(load_config(config), cap=None, home_country=None)
    weblogs = settings.weblogs
    changes: dict[str, Any] = {"top_n": top}
    if site_hosts:
        changes["site_hosts"] = tuple(h.lower() for h in site_hosts)
    if jobs is not None:
        changes["jobs"] = jobs
    if forwarded:
        changes["use_forwarded_for"] = True
    return dataclasses.replace(settings, weblogs=dataclasses.replace(weblogs, **changes))


def register(cli: click.Group, t: Translator) -> None:
    """Add ``logs`` to the command tree."""

    @cli.command(name="logs", help=t("help.logs"))
    @click.argument("files", nargs=-1, type=click.Path())
    @click.option(
        "--lang", "_lang", type=click.Choice(LANGUAGES), expose_value=False, help=t("help.opt.lang")
    )
    @click.option("--format", "format_spec", metavar="FORMAT", help=t("help.opt.logs.format"))
    @click.option("--since", metavar="WHEN", help=t("help.opt.logs.since"))
    @click.option("--until", metavar="WHEN", help=t("help.opt.logs.until"))
    @click.option("--all", "whole_log", is_flag=True, help=t("help.opt.logs.all"))
    @click.option(
        "--site-host",
        "site_hosts",
        multiple=True,
        metavar="HOST",
        help=t("help.opt.logs.site_host"),
    )
    @click.option("--forwarded-for", is_flag=True, help=t("help.opt.logs.forwarded_for"))
    @click.option("--root", metavar="DIR", default="/", help=t("help.opt.logs.root"))
    @click.option("--jobs", type=click.IntRange(1, 64), help=t("help.opt.logs.jobs"))
    @click.option(
        "--top", type=click.IntRange(1, 1000), default=10, show_default=True, help=t("help.opt.top")
    )
    @click.option("--config", metavar="FILE", help=t("help.opt.config"))
    @click.option("--json", "as_json", is_flag=True, help=t("help.opt.json"))
    @click.option("--save", metavar="FILE", help=t("help.opt.save"))
    @click.option("--from", "from_file", metavar="FILE", help=t("help.opt.from"))
    @click.option("-v", "--verbose", is_flag=True, help=t("help.opt.verbose"))
    def logs(
        files: tuple[str, ...],
        format_spec: str | None,
        since: str | None,
        until: str | None,
        whole_log: bool,
        site_hosts: tuple[str, ...],
        forwarded_for: bool,
        root: str,
        jobs: int | None,
        top: int,
        config: str | None,
        as_json: bool,
        save: str | None,
        from_file: str | None,
        verbose: bool,
    ) -> None:
        from hostmedic.collectors.weblogs import LogRequest, collect_weblogs
        from hostmedic.engine import exit_code, registered_rules, run_rules
        from hostmedic.gather import load_facts, save_facts
        from hostmedic.render.terminal import print_findings
        from hostmedic.render.weblogs_view import print_weblogs

        settings = _settings(config, site_hosts, jobs, top, forwarded_for)
        if from_file:
            facts = load_facts(from_file).get("weblogs") or FactUnavailable(
                "weblogs", key="reason.not_collected"
            )
            if isinstance(facts, FactUnavailable):
                raise facts
        else:
            for path in files:
                if not os.path.exists(path):
                    raise UsageError("error.cannot_read", path=path, detail=os.strerror(2))
            if not os.path.isdir(root):
                raise UsageError("error.cannot_read", path=root, detail=os.strerror(20))
            request = LogRequest(files, root, format_spec, since, until, whole_log)
            with _progress(t) as update:
                try:
                    facts = collect_weblogs(request, settings.weblogs, update)
                except FactUnavailable as exc:
                    if files:  # the operator named files that cannot be used: their error
                        raise UsageError(exc.key, **exc.params) from exc
                    raise
        if save:
            save_facts(save, {"weblogs": facts})
        findings, errors = run_rules(
            registered_rules({"weblogs"}), {"settings": settings, "weblogs": facts}
        )
        code = exit_code(findings, errors)
        if as_json:
            click.echo(logs_document(facts, findings, errors, code, t))
        else:
            console = Console(highlight=False)
            print_weblogs(console, facts, t)
            console.print()
            print_findings(console, findings, errors, t, verbose)
        sys.exit(code)

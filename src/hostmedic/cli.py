"""The ``hostmedic`` command line: diagnose (the main job), bandwidth, top, rules.

Help text, messages and reports come from the message catalogs, so the language is
resolved from ``--lang`` / the locale *before* the commands are built. Exit codes:
0 nothing wrong, 1 warnings, 2 critical findings, 3 hostmedic itself failed,
64 the command line was wrong (sysexits' EX_USAGE).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import click
from rich.console import Console

from hostmedic import __version__
from hostmedic.errors import FactUnavailable, UsageError
from hostmedic.gather import CATEGORIES
from hostmedic.i18n import LANGUAGES, Translator, resolve_language

EXIT_INTERNAL = 3
EXIT_USAGE = 64
# Modules that add commands of their own area: each has ``register(cli, t)``.
COMMAND_MODULES: tuple[str, ...] = (
    "hostmedic.cli_fix",
    "hostmedic.cli_probe",
    "hostmedic.cli_logs",
)


def _language_from_argv(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg == "--lang" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--lang="):
            return arg.split("=", 1)[1]
    return None


def _monitor_options(no_capture: bool, no_tracer: bool) -> Any:
    from hostmedic.collectors.bandwidth import MonitorOptions

    return MonitorOptions(capture=not no_capture, connect_tracer=not no_tracer)


def _settings(config: str | None, cap: str | None, home_country: str | None) -> Any:
    from hostmedic.settings import build_settings, load_config

    return build_settings(load_config(config), cap=cap, home_country=home_country)


def _progress(
    t: Translator, enabled: bool
) -> tuple[Callable[[float], None] | None, Callable[[], None]]:
    """A transient progress bar on stderr (only when stderr is a terminal)."""
    if not enabled or not sys.stderr.isatty():
        return None, lambda: None
    from rich.progress import Progress

    bar = Progress(console=Console(stderr=True), transient=True)
    bar.start()
    task = bar.add_task(t("ui.progress.sampling"), total=1.0)
    return (lambda done: bar.update(task, completed=done)), bar.stop


def _lang_option(t: Translator) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--lang`` is read from argv before the commands are built; accepting it after the
    subcommand too lets people type ``hostmedic diagnose --lang zh_CN``."""
    return click.option(
        "--lang", "_lang", type=click.Choice(LANGUAGES), expose_value=False, help=t("help.opt.lang")
    )


def _sampling_options(t: Translator) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(
            [
                click.option(
                    "--duration",
                    type=click.FloatRange(0.5, 3600),
                    default=5.0,
                    show_default=True,
                    help=t("help.opt.duration"),
                ),
                click.option("--cap", metavar="RATE", help=t("help.opt.cap")),
                click.option("--home-country", metavar="CC", help=t("help.opt.home_country")),
                click.option("--config", metavar="FILE", help=t("help.opt.config")),
                click.option("--no-capture", is_flag=True, help=t("help.opt.no_capture")),
                click.option("--no-tracer", is_flag=True, help=t("help.opt.no_tracer")),
                click.option("--json", "as_json", is_flag=True, help=t("help.opt.json")),
                click.option("--save", metavar="FILE", help=t("help.opt.save")),
                click.option("--from", "from_file", metavar="FILE", help=t("help.opt.from")),
            ]
        ):
            f = option(f)
        return f

    return decorate


def _collect(
    t: Translator,
    categories: set[str],
    settings: Any,
    duration: float,
    options: Any,
    from_file: str | None,
    save: str | None,
    root: str | None = None,
) -> dict[str, Any]:
    """Facts by name: sampled now (with a progress bar), or read back with ``--from``;
    written with ``--save`` for a ticket or for later analysis. ``root``: the file-based
    checks read another machine's disk mounted there, and live checks are skipped."""
    from hostmedic.gather import GatherContext, gather, load_facts, save_facts

    if root is not None and not os.path.isdir(root):
        raise UsageError("error.bad_root", path=root)
    context = GatherContext(settings, duration, options, root=root or "/", live=root is None)

    if from_file:
        facts = {"settings": settings, **load_facts(from_file)}
    else:
        if os.geteuid() != 0:
            Console(stderr=True, highlight=False).print(
                t("ui.not_root"), style="yellow", markup=False
            )
        update, stop = _progress(t, True)
        try:
            facts = gather(categories, context, update)
        finally:
            stop()
    if save:
        save_facts(save, facts)
    return facts


def build_cli(t: Translator) -> click.Group:
    """The click command tree, with every help string in the operator's language."""

    @click.group(help=t("help.main"), context_settings={"help_option_names": ["-h", "--help"]})
    @click.option("--lang", type=click.Choice(LANGUAGES), help=t("help.opt.lang"))
    @click.option("--debug", is_flag=True, help=t("help.opt.debug"))
    @click.version_option(__version__, message=_version_message())
    @click.pass_context
    def cli(ctx: click.Context, lang: str | None, debug: bool) -> None:
        del lang  # already applied before the commands were built
        ctx.obj = {"debug": debug}
        logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING)

    @cli.command(help=t("help.diagnose"))
    @_lang_option(t)
    @_sampling_options(t)
    @click.option(
        "--only", "only", multiple=True, type=click.Choice(CATEGORIES), help=t("help.opt.only")
    )
    @click.option("-v", "--verbose", is_flag=True, help=t("help.opt.verbose"))
    @click.option("--mount", "mounts", multiple=True, metavar="PATH", help=t("help.opt.mount"))
    @click.option("--ping-gateway", is_flag=True, help=t("help.opt.ping_gateway"))
    @click.option("--root", metavar="DIR", help=t("help.opt.root"))
    def diagnose(
        duration: float,
        cap: str | None,
        home_country: str | None,
        config: str | None,
        no_capture: bool,
        no_tracer: bool,
        as_json: bool,
        save: str | None,
        from_file: str | None,
        only: tuple[str, ...],
        verbose: bool,
        mounts: tuple[str, ...],
        ping_gateway: bool,
        root: str | None,
    ) -> None:
        from hostmedic.engine import exit_code, registered_rules, run_rules
        from hostmedic.render.json_report import diagnose_document
        from hostmedic.render.terminal import print_findings

        settings = _settings(config, cap, home_country)
        health = replace(settings.health, mounts=mounts, ping_gateway=ping_gateway)
        settings = replace(settings, health=health)
        categories = set(only or CATEGORIES)
        console = Console(highlight=False)
        facts = _collect(
            t,
            categories,
            settings,
            duration,
            _monitor_options(no_capture, no_tracer),
            from_file,
            save,
            root,
        )
        rules = registered_rules(categories)
        if from_file:  # a bundle saved with --only: its other categories were never asked
            rules = [r for r in rules if any(n in facts for n in r.needs if n != "settings")]
        findings, errors = run_rules(rules, facts)
        code = exit_code(findings, errors)
        if as_json:
            bw = facts.get("bandwidth")
            click.echo(
                diagnose_document(
                    findings, errors, code, t, bw if not isinstance(bw, FactUnavailable) else None
                )
            )
        else:
            print_findings(console, findings, errors, t, verbose)
        sys.exit(code)

    @cli.command(help=t("help.bandwidth"))
    @_lang_option(t)
    @_sampling_options(t)
    @click.option(
        "--top",
        "rows",
        type=click.IntRange(1, 1000),
        default=10,
        show_default=True,
        help=t("help.opt.top"),
    )
    def bandwidth(
        duration: float,
        cap: str | None,
        home_country: str | None,
        config: str | None,
        no_capture: bool,
        no_tracer: bool,
        as_json: bool,
        save: str | None,
        from_file: str | None,
        rows: int,
    ) -> None:
        import json

        from hostmedic.render.bandwidth_view import print_bandwidth
        from hostmedic.render.json_report import bandwidth_to_dict

        settings = _settings(config, cap, home_country)
        options = _monitor_options(no_capture, no_tracer)
        collected = _collect(t, {"bandwidth"}, settings, duration, options, from_file, save)
        facts = collected.get("bandwidth") or FactUnavailable(
            "bandwidth", key="reason.not_collected"
        )
        if isinstance(facts, FactUnavailable):
            raise facts
        if as_json:
            click.echo(json.dumps(bandwidth_to_dict(facts, t), ensure_ascii=False, indent=2))
        else:
            print_bandwidth(Console(highlight=False), facts, t, rows)

    @cli.command(help=t("help.top"))
    @_lang_option(t)
    @click.option("--cap", metavar="RATE", help=t("help.opt.cap"))
    @click.option("--home-country", metavar="CC", help=t("help.opt.home_country"))
    @click.option("--config", metavar="FILE", help=t("help.opt.config"))
    @click.option("--no-capture", is_flag=True, help=t("help.opt.no_capture"))
    @click.option("--no-tracer", is_flag=True, help=t("help.opt.no_tracer"))
    def top(
        cap: str | None,
        home_country: str | None,
        config: str | None,
        no_capture: bool,
        no_tracer: bool,
    ) -> None:
        from hostmedic.gather import LiveSource
        from hostmedic.tui.top import run_top

        source = LiveSource(
            _settings(config, cap, home_country), _monitor_options(no_capture, no_tracer)
        )
        run_top(source, t, on_exit=source.close)

    @cli.command(help=t("help.rules"))
    @_lang_option(t)
    def rules() -> None:
        from hostmedic.engine import registered_rules

        console = Console(highlight=False)
        for r in registered_rules():
            console.print(f"[bold]{r.rule_id}[/bold]  ({r.category})", highlight=False)
            console.print(f"    {t('rule.' + r.rule_id)}", markup=False)
            console.print(
                f"    {t('ui.report.runbook')}: {r.runbook_ref}", markup=False, style="dim"
            )

    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(cli, t)
    _keep_example_layout(cli)
    return cli


def _keep_example_layout(command: click.Command) -> None:
    """Click rewraps help paragraphs; example blocks (indented lines) must keep their
    lines, which click's ``\\b`` paragraph marker asks for."""
    if command.help:
        command.help = "\n\n".join(
            "\b\n" + p
            if not p.startswith("\b") and any(line.startswith("  ") for line in p.splitlines())
            else p
            for p in command.help.split("\n\n")
        )
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _keep_example_layout(sub)


def _version_message() -> str:
    from hostmedic.collectors.geo import database_version

    return f"%(prog)s %(version)s\n{database_version()}"


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn every failure into a clear message and exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    t = Translator(resolve_language(_language_from_argv(args)))
    err = Console(stderr=True, highlight=False)
    if not sys.platform.startswith("linux"):
        err.print(t("error.not_linux", platform=sys.platform), markup=False)
        sys.exit(EXIT_INTERNAL)
    cli = build_cli(t)
    try:
        cli.main(args=args, prog_name="hostmedic", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except click.exceptions.Abort:
        sys.exit(130)
    except UsageError as exc:
        err.print(t(exc.key, **exc.params), markup=False, style="red")
        sys.exit(EXIT_USAGE)
    except FactUnavailable as exc:
        err.print(t(exc.key, **exc.params), markup=False, style="red")
        sys.exit(EXIT_INTERNAL)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # last line of defence: no traceback unless --debug
        if "--debug" in args:
            raise
        err.print(
            t("error.internal", detail=f"{type(exc).__name__}: {exc}"), markup=False, style="red"
        )
        sys.exit(EXIT_INTERNAL)

"""``hostmedic probe TARGET``: the outside-in tests of seed 004, from this machine.

Ping, TCP connects per ``--port``, the path (``--path``), HTTP fetches (``--url``) and
the system resolver vs ``--resolver`` run concurrently against the one target named;
``--save`` writes the observation as an evidence file, ``--evidence`` merges files made
elsewhere (another client, the peer, ``diagnose --only network --save`` on the target) and
shows everything side by side. Exit codes: 0 reachable from everywhere observed, 1 partly,
2 unreachable, 3 hostmedic failed, 64 bad command line.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import click
from rich.console import Console

from hostmedic.analysis.compare import (
    EXIT_CODES,
    PARTIAL,
    REACHABLE,
    UNREACHABLE,
    Reachability,
    dns_disagreements,
    page_differences,
    reachability,
)
from hostmedic.cli_verdict import print_verdict_part, verdict_json, verdict_options
from hostmedic.collectors.vantage import read_vantage
from hostmedic.errors import ParseError, UsageError
from hostmedic.facts.probe import ROLES, Observation, dump_evidence, load_evidence
from hostmedic.i18n import Translator
from hostmedic.probes.dns import split_resolver
from hostmedic.probes.runner import ProbePlan, is_address, run_probes

MAX_PORTS, MAX_URLS, MAX_RESOLVERS, MAX_EVIDENCE = 32, 5, 8, 32
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.?)+$")


def _check_target(target: str) -> str:
    if is_address(target) or _HOSTNAME.match(target):
        return target
    raise UsageError("error.bad_target", value=target)


def _check_urls(urls: tuple[str, ...]) -> tuple[str, ...]:
    if len(urls) > MAX_URLS:
        raise UsageError("error.too_many", option="--url", limit=MAX_URLS)
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError("error.bad_url", value=url)
    return tuple(dict.fromkeys(urls))


def _check_resolvers(resolvers: tuple[str, ...]) -> tuple[str, ...]:
    if len(resolvers) > MAX_RESOLVERS:
        raise UsageError("error.too_many", option="--resolver", limit=MAX_RESOLVERS)
    for resolver in resolvers:
        try:
            split_resolver(resolver)
        except ValueError as exc:
            raise UsageError("error.bad_resolver", value=resolver) from exc
    return tuple(dict.fromkeys(resolvers))


def read_evidence(path: str) -> Observation:
    """An observation from an evidence file or a diagnose bundle (UsageError if not)."""
    try:
        with open(path, encoding="utf-8") as f:
            return load_evidence(json.load(f))
    except OSError as exc:
        raise UsageError("error.cannot_read", path=path, detail=exc.strerror or str(exc)) from exc
    except (ValueError, ParseError) as exc:
        raise UsageError("error.bad_evidence", path=path, detail=str(exc)[:300]) from exc


def write_evidence(path: str, observation: Observation) -> None:
    """Write ``observation`` as a ``hostmedic.evidence/1`` file."""
    try:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(dump_evidence(observation), f, ensure_ascii=False)
    except OSError as exc:
        raise UsageError("error.cannot_write", path=path, detail=exc.strerror or str(exc)) from exc


def _observe(t: Translator, plan: ProbePlan, role: str, label: str) -> Observation:
    """Run the probes with a transient progress bar on stderr (when it is a terminal)."""
    vantage = read_vantage(role, label)
    if not sys.stderr.isatty():
        return run_probes(plan, vantage)
    from rich.progress import Progress

    bar = Progress(console=Console(stderr=True), transient=True)
    with bar:
        task = bar.add_task(t("ui.progress.probing", target=plan.target), total=1.0)
        return run_probes(plan, vantage, lambda done: bar.update(task, completed=done))


def _probe_options(t: Translator) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Every option of ``probe``, help text from the catalogs (``help.opt.probe.*``)."""

    def opt(*names: str, key: str, **kw: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return click.option(*names, help=t(f"help.opt.probe.{key}"), **kw)

    options = [
        opt(
            "--port",
            "ports",
            key="port",
            type=click.IntRange(1, 65535),
            multiple=True,
            metavar="PORT",
        ),
        opt("--url", "urls", key="url", multiple=True, metavar="URL"),
        opt("--resolver", "resolvers", key="resolver", multiple=True, metavar="ADDR[:PORT]"),
        opt("--path", "path", key="path", is_flag=True),
        opt(
            "--path-mode",
            key="path_mode",
            type=click.Choice(["icmp", "tcp", "both"]),
            default="icmp",
            show_default=True,
        ),
        opt("--path-port", key="path_port", type=click.IntRange(1, 65535), metavar="PORT"),
        opt("--cycles", key="cycles", type=click.IntRange(1, 100), default=10, show_default=True),
        opt(
            "--interval",
            key="interval",
            type=click.FloatRange(0.1, 10),
            default=1.0,
            show_default=True,
        ),
        opt("--max-ttl", key="max_ttl", type=click.IntRange(1, 64), default=30, show_default=True),
        opt("--count", key="count", type=click.IntRange(1, 100), default=5, show_default=True),
        opt("--no-ping", key="no_ping", is_flag=True),
        opt("--attempts", key="attempts", type=click.IntRange(1, 10), default=3, show_default=True),
        opt(
            "--timeout",
            key="timeout",
            type=click.FloatRange(0.2, 30),
            default=3.0,
            show_default=True,
        ),
        opt("-4", "ipv4", key="ipv4", is_flag=True),
        opt("-6", "ipv6", key="ipv6", is_flag=True),
        opt(
            "--vantage",
            key="vantage",
            type=click.Choice(ROLES),
            default="client",
            show_default=True,
        ),
        opt("--label", key="label", default="", metavar="TEXT"),
        opt("--save", key="save", metavar="FILE"),
        opt("--evidence", "evidence", key="evidence", multiple=True, metavar="FILE"),
        opt("--offline", key="offline", is_flag=True),
        opt("--json", "as_json", key="json", is_flag=True),
    ]

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


def _plan(target: str, o: dict[str, Any]) -> ProbePlan:
    """The probe plan from the validated options (UsageError on a bad value)."""
    if o["ipv4"] and o["ipv6"]:
        raise UsageError("error.both_families")
    ports = tuple(dict.fromkeys(o["ports"]))
    if len(ports) > MAX_PORTS:
        raise UsageError("error.too_many", option="--port", limit=MAX_PORTS)
    mode = o["path_mode"]
    return ProbePlan(
        target=_check_target(target),
        ports=ports,
        urls=_check_urls(o["urls"]),
        resolvers=_check_resolvers(o["resolvers"]),
        path_modes=(("icmp", "tcp") if mode == "both" else (mode,)) if o["path"] else (),
        path_port=o["path_port"],
        ping=not o["no_ping"],
        ping_count=o["count"],
        attempts=o["attempts"],
        timeout_s=o["timeout"],
        path_cycles=o["cycles"],
        path_interval_s=o["interval"],
        max_ttl=o["max_ttl"],
        family=4 if o["ipv4"] else (6 if o["ipv6"] else None),
    )


def overall(observations: list[Observation]) -> Reachability:
    """Combine the outside observations: reachable only if every one is."""
    outside = [reachability(o) for o in observations if o.target is not None]
    statuses = {r.status for r in outside}
    problems = tuple(p for r in outside for p in r.problems)
    if statuses <= {REACHABLE}:
        return Reachability(REACHABLE, ())
    if statuses == {UNREACHABLE}:
        return Reachability(UNREACHABLE, problems)
    return Reachability(PARTIAL, problems)


def register(cli: click.Group, t: Translator) -> None:
    """Add ``probe`` to the command tree."""
    from hostmedic.cli import _lang_option

    @cli.command(help=t("help.probe"))
    @click.argument("target")
    @_lang_option(t)
    @_probe_options(t)
    @verdict_options(t)
    def probe(target: str, **o: Any) -> None:
        from hostmedic.render import probe_view
        from hostmedic.render.probe_json import probe_document

        evidence_files = tuple(o["evidence"])
        if len(evidence_files) > MAX_EVIDENCE:
            raise UsageError("error.too_many", option="--evidence", limit=MAX_EVIDENCE)
        if o["offline"] and not evidence_files:
            raise UsageError("error.offline_needs_evidence")
        if o["offline"] and o["save"]:
            raise UsageError("error.offline_no_save")
        plan = _plan(target, o)
        evidence = [(path, read_evidence(path)) for path in evidence_files]
        own = None if o["offline"] else _observe(t, plan, o["vantage"], o["label"][:100])
        if own is not None and o["save"]:
            write_evidence(o["save"], own)
        everything = ([own] if own else []) + [obs for _p, obs in evidence]
        result = overall(everything)
        code = EXIT_CODES[result.status]
        dns, pages = dns_disagreements(everything), page_differences(everything)
        if o["as_json"]:
            doc = probe_document(own, evidence, result, code, dns, pages, t)
            doc.update(verdict_json(everything, o, t))
            click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        else:
            console = Console(highlight=False)
            if own is not None:
                probe_view.print_observation(console, own, t)
            if len(everything) > 1 or own is None:
                probe_view.print_side_by_side(console, everything, t)
            probe_view.print_comparisons(console, dns, pages, t)
            probe_view.print_status(console, result, t)
            print_verdict_part(console, everything, o, t)
        sys.exit(code)

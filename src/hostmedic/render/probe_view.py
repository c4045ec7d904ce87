"""``hostmedic probe`` for people: what this machine observed, then every observation side
by side (other clients, the peer, inside the target), then what the comparisons show.

Every string from the network (titles, headers, URLs, rule texts) goes through
:func:`sanitize`; labels come from the catalogs.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from hostmedic.analysis.compare import (
    DnsDisagreement,
    PageDifference,
    Problem,
    Reachability,
    http_ok,
    vantage_label,
)
from hostmedic.analysis.fingerprints import block_pages
from hostmedic.facts.probe import HttpResult, Observation, PathResult
from hostmedic.i18n import Translator
from hostmedic.render.probe_cells import cell_dns, cell_http, cell_ping, cell_port, inside_rows
from hostmedic.render.safe_text import sanitize

_STATUS_STYLE = {"reachable": "bold green", "partial": "bold yellow", "unreachable": "bold red"}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _section(console: Console, title: str) -> None:
    console.print(Text(title, style="bold underline"))


def print_observation(console: Console, obs: Observation, t: Translator) -> None:
    """One observation in full: ping, ports, HTTP, DNS and path."""
    target = obs.target
    where = sanitize(vantage_label(obs))
    if target is not None:
        address = target.address or t("ui.probe.unresolved", detail=target.resolve_error or "?")
        console.print(
            Text(
                t(
                    "ui.probe.header",
                    target=sanitize(target.name),
                    address=sanitize(address),
                    vantage=where,
                ),
                style="bold",
            )
        )
    if obs.ping is not None:
        console.print(Text(f"{t('ui.probe.ping')}: {cell_ping(obs, t)}"))
    if obs.ports:
        table = Table(title=t("ui.probe.ports"), title_justify="left", box=None)
        for col in ("port", "state", "attempts", "loss", "best_ms", "detail"):
            table.add_column(t(f"ui.probe.col.{col}"))
        for p in obs.ports:
            detail = next((a.detail for a in p.attempts if a.detail), "") or ""
            answered = sum(1 for a in p.attempts if a.outcome != "timeout")
            table.add_row(
                str(p.port),
                t(f"ui.probe.state.{p.state}"),
                f"{answered}/{len(p.attempts)}",
                f"{p.loss_pct:g}%",
                _ms(p.best_ms),
                sanitize(detail),
            )
        console.print(table)
    for fetch in obs.http:
        _print_http(console, fetch, t)
    if obs.dns:
        table = Table(title=t("ui.probe.dns"), title_justify="left", box=None)
        for col in ("name", "type", "resolver", "rcode", "answers"):
            table.add_column(t(f"ui.probe.col.{col}"))
        for a in obs.dns:
            shown = "system" if a.resolver == "system" else a.resolver
            table.add_row(
                sanitize(a.name),
                a.rtype,
                sanitize(shown),
                a.rcode,
                sanitize(", ".join(a.answers) or (a.error or "-")),
            )
        console.print(table)
    for path in obs.paths:
        _print_path(console, path, t)


def _print_http(console: Console, fetch: HttpResult, t: Translator) -> None:
    line = Text(f"{t('ui.probe.http')}: {sanitize(fetch.url)}  ")
    if fetch.error:
        line.append(t("ui.probe.http_error", detail=sanitize(fetch.error)), style="red")
        console.print(line)
        return
    line.append(f"{fetch.status}", style="green" if http_ok(fetch) else "red")
    if fetch.title:
        line.append(f"  «{sanitize(fetch.title)}»")
    line.append(f"  {fetch.body_length} B")
    console.print(line)
    for hop in fetch.redirects:
        console.print(
            Text(
                f"    {hop.status} {sanitize(hop.url)} → {sanitize(hop.location or '')}",
                style="dim",
            )
        )
    if fetch.redirects and fetch.final_url:
        console.print(Text(f"    {t('ui.probe.final_url')}: {sanitize(fetch.final_url)}"))
    if fetch.tls_verified is False:
        console.print(Text(f"    {t('ui.probe.tls_unverified')}", style="yellow"))
    kinds = {p.page_id: p for p in block_pages()}
    for fid in fetch.fingerprints:
        page = kinds.get(fid)
        kind = t(f"ui.probe.kind.{page.kind}") if page else fid
        vendor = f" ({page.vendor})" if page and page.vendor else ""
        console.print(
            Text(f"    {t('ui.probe.fingerprint')}: {fid} — {kind}{vendor}", style="bold red")
        )


def _print_path(console: Console, path: PathResult, t: Translator) -> None:
    title = t(
        "ui.probe.path",
        mode=path.mode,
        cycles=path.cycles,
        port=path.port if path.port is not None else "-",
    )
    if path.error:
        console.print(Text(f"{title}: {sanitize(path.error)}", style="yellow"))
        return
    table = Table(title=title, title_justify="left", box=None)
    for col in (
        "ttl",
        "host",
        "loss",
        "sent",
        "last_ms",
        "avg_ms",
        "best_ms",
        "worst_ms",
        "stdev_ms",
    ):
        table.add_column(t(f"ui.probe.col.{col}"), justify="right" if col != "host" else "left")
    for h in path.hops:
        host = h.address or "???"
        if h.unreachable:
            host += f" !{h.unreachable}"
        table.add_row(
            str(h.ttl),
            sanitize(host),
            f"{h.loss_pct:g}%",
            str(h.sent),
            _ms(h.last_ms),
            _ms(h.avg_ms),
            _ms(h.best_ms),
            _ms(h.worst_ms),
            _ms(h.stdev_ms),
        )
    console.print(table)
    if not path.reached:
        console.print(Text(t("ui.probe.not_reached"), style="yellow"))


def print_side_by_side(console: Console, observations: list[Observation], t: Translator) -> None:
    """Every observation in one table: a column per vantage point, a row per test."""
    table = Table(title=t("ui.probe.side_by_side"), title_justify="left", show_lines=False)
    table.add_column(t("ui.probe.col.test"))
    for obs in observations:
        table.add_column(sanitize(vantage_label(obs)))
    ports = sorted(
        {p.port for o in observations for p in o.ports}
        | {
            li.port
            for o in observations
            if o.inside
            for li in o.inside.listeners
            if li.protocol == "tcp" and li.scope != "loopback"
        }
    )
    table.add_row(t("ui.probe.ping"), *[cell_ping(o, t) for o in observations])
    for port in ports:
        table.add_row(
            t("ui.probe.row.port", port=port), *[cell_port(o, port, t) for o in observations]
        )
    paths = sorted({h.url for o in observations for h in o.http})
    for url in paths:
        table.add_row(sanitize(url), *[cell_http(o, url, t) for o in observations])
    names = sorted({(a.name, a.rtype) for o in observations for a in o.dns})
    for name, rtype in names:
        table.add_row(
            f"DNS {sanitize(name)} {rtype}", *[cell_dns(o, name, rtype) for o in observations]
        )
    for label, cells in inside_rows(observations, t):
        table.add_row(label, *cells)
    console.print(table)


def print_comparisons(
    console: Console,
    dns: list[DnsDisagreement],
    pages: list[PageDifference],
    t: Translator,
) -> None:
    """DNS answers that disagree and pages that differ (possible hijack or injection)."""
    for d in dns:
        console.print(
            Text(
                t(
                    "ui.probe.dns_differs",
                    name=sanitize(d.name),
                    rtype=d.rtype,
                    system=sanitize(", ".join(d.system) or "-"),
                    resolver=sanitize(d.resolver),
                    answers=sanitize(", ".join(d.answers) or d.rcode),
                    vantage=sanitize(d.vantage),
                ),
                style="bold red",
            )
        )
    for p in pages:
        console.print(
            Text(
                t(
                    "ui.probe.page_differs",
                    path=sanitize(p.path),
                    first=sanitize(p.first),
                    second=sanitize(p.second),
                ),
                style="yellow",
            )
        )
        for script in p.added:
            console.print(Text(f"    + {sanitize(script)}", style="red"))
        for script in p.removed:
            console.print(Text(f"    - {sanitize(script)}", style="dim"))


def problem_text(problem: Problem, t: Translator) -> str:
    """One failed test in the operator's language."""
    subject, value = sanitize(problem.subject), sanitize(problem.value)
    if problem.state in ("loss", "lost", "differs", "unresolved"):
        return t(f"ui.probe.problem.{problem.state}", subject=subject, value=value)
    if problem.state == "error":
        return f"{subject}: {t('ui.probe.http_error', detail=value)}"
    if problem.state == "status":
        return f"{subject}: {value}"
    return f"{subject}: {t('ui.probe.state.' + problem.state)}"


def print_status(console: Console, result: Reachability, t: Translator) -> None:
    """The closing line: reachable / partly / unreachable, and what failed."""
    console.print(Text(t(f"ui.probe.status.{result.status}"), style=_STATUS_STYLE[result.status]))
    for problem in result.problems:
        console.print(Text(f"    {t('ui.probe.test.' + problem.test)}: {problem_text(problem, t)}"))

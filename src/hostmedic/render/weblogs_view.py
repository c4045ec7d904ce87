"""The ``hostmedic logs`` report: what was read, the window's totals, then ranked tables
(clients, crawlers, URLs by bytes, URL bursts, hot-linking referers, status codes),
fitted to an 80-column console. Every cell is a rich ``Text`` of sanitized log data:
URLs and User-Agents are attacker-controlled."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.table import Table
from rich.text import Text

from hostmedic.facts.weblogs import WeblogFacts, percent
from hostmedic.i18n import Translator
from hostmedic.render.safe_text import sanitize
from hostmedic.render.units import human_bytes

PATH_WIDTH = 36


def _short(value: str, width: int = PATH_WIDTH) -> str:
    return value if len(value) <= width else value[: width - 1] + "…"


def _table(t: Translator, title: str, *headers: str) -> Table:
    table = Table(title=title, title_justify="left", pad_edge=False)
    for key in headers:
        numeric = key.startswith("ui.logs.col.num.")
        table.add_column(
            t(key), justify="right" if numeric else "left", overflow="ellipsis", no_wrap=True
        )
    return table


def _add(table: Table, cells: Iterable[object]) -> None:
    table.add_row(*(c if isinstance(c, Text) else Text(sanitize(c)) for c in cells))


def clock(facts: WeblogFacts, seconds: int) -> str:
    return facts.clock(seconds)


def _count(n: int) -> str:
    return f"{n:,}"


def sources_table(facts: WeblogFacts, t: Translator) -> Table:
    table = _table(
        t,
        t("ui.logs.sources"),
        "ui.logs.col.file",
        "ui.logs.col.format",
        "ui.logs.col.num.lines",
        "ui.logs.col.num.in_window",
        "ui.logs.col.num.malformed",
    )
    for s in facts.sources:
        if s.skipped_key:
            shown = Text(t("ui.logs.skipped", what=t(s.skipped_key)), style="dim")
            _add(table, (_short(s.path, 44), shown, "", "", ""))
            continue
        bad = s.malformed_lines + s.too_long_lines
        _add(
            table,
            (
                _short(s.path, 44),
                s.format_name + (" (gz)" if s.compressed else ""),
                _count(s.lines_total),
                _count(s.lines_in_window),
                Text(_count(bad), style="yellow" if bad else ""),
            ),
        )
    return table


def clients_table(facts: WeblogFacts, t: Translator) -> Table:
    table = _table(
        t,
        t("ui.logs.clients"),
        "ui.logs.col.address",
        "ui.logs.col.num.requests",
        "ui.logs.col.num.per_minute",
        "ui.logs.col.num.peak",
        "ui.logs.col.at",
        "ui.logs.col.num.sent",
        "ui.logs.col.crawler",
    )
    minutes = facts.window_s / 60
    for c in facts.clients:
        peak = _count(c.peak_minute_requests) if c.peak_minute_requests else f"<{facts.burst_floor}"
        _add(
            table,
            (
                c.ip,
                _count(c.requests),
                f"{c.requests / minutes:.1f}",
                peak,
                clock(facts, c.peak_minute_s)[5:16] if c.peak_minute_requests else "",
                human_bytes(c.bytes_sent),
                c.crawler,
            ),
        )
    return table


def crawlers_table(facts: WeblogFacts, t: Translator) -> Table:
    table = _table(
        t,
        t("ui.logs.crawlers"),
        "ui.logs.col.crawler",
        "ui.logs.col.num.requests",
        "ui.logs.col.num.share",
        "ui.logs.col.num.sent",
        "ui.logs.col.num.share",
        "ui.logs.col.num.addresses",
    )
    for c in facts.crawlers:
        _add(
            table,
            (
                c.name,
                _count(c.requests),
                f"{percent(c.requests, facts.requests)} %",
                human_bytes(c.bytes_sent),
                f"{percent(c.bytes_sent, facts.bytes_sent)} %",
                _count(c.distinct_ips),
            ),
        )
    return table


def paths_table(facts: WeblogFacts, t: Translator) -> Table:
    table = _table(
        t,
        t("ui.logs.paths_by_bytes"),
        "ui.logs.col.path",
        "ui.logs.col.kind",
        "ui.logs.col.num.requests",
        "ui.logs.col.num.sent",
        "ui.logs.col.num.share",
    )
    for p in facts.paths_by_bytes:
        style = "yellow" if p.kind == "download" else ""
        _add(
            table,
            (
                _short(p.path),
                Text(t("ui.logs.kind." + p.kind), style=style),
                _count(p.requests),
                human_bytes(p.bytes_sent),
                f"{percent(p.bytes_sent, facts.bytes_sent)} %",
            ),
        )
    return table


def bursts_table(facts: WeblogFacts, t: Translator) -> Table:
    table = _table(
        t,
        t("ui.logs.bursts"),
        "ui.logs.col.path",
        "ui.logs.col.num.peak",
        "ui.logs.col.at",
        "ui.logs.col.num.addresses",
        "ui.logs.col.top_address",
    )
    for b in facts.path_bursts:
        _add(
            table,
            (
                _short(b.path, 30),
                _count(b.requests),
                clock(facts, b.minute_s)[5:16],
                _count(b.distinct_ips),
                f"{b.top_ip} ({b.top_ip_requests})",
            ),
        )
    return table


def referers_table(facts: WeblogFacts, t: Translator) -> Table:
    table = _table(
        t,
        t("ui.logs.referers", hosts=", ".join(facts.own_hosts) or "?"),
        "ui.logs.col.host",
        "ui.logs.col.num.requests",
        "ui.logs.col.num.sent",
        "ui.logs.col.top_path",
    )
    for r in facts.referers:
        top = r.top_paths[0][0] if r.top_paths else ""
        _add(
            table, (_short(r.host, 30), _count(r.requests), human_bytes(r.bytes_sent), _short(top))
        )
    return table


def statuses_table(facts: WeblogFacts, t: Translator) -> Table:
    table = _table(
        t,
        t("ui.logs.statuses"),
        "ui.logs.col.status",
        "ui.logs.col.num.requests",
        "ui.logs.col.num.share",
        "ui.logs.col.num.peak",
        "ui.logs.col.at",
        "ui.logs.col.top_path",
    )
    for s in facts.statuses:
        style = "red" if s.status >= 500 else ("yellow" if s.status >= 400 else "")
        errors = s.status >= 400
        _add(
            table,
            (
                Text(str(s.status), style=style),
                _count(s.requests),
                f"{percent(s.requests, facts.requests)} %",
                _count(s.peak_minute_requests) if errors else "",
                clock(facts, s.peak_minute_s)[5:16] if errors else "",
                _short(s.top_paths[0][0], 28) if s.top_paths else "",
            ),
        )
    return table


def print_weblogs(console: Console, facts: WeblogFacts, t: Translator) -> None:
    """The summary lines and every non-empty table."""
    console.print(
        Text(
            t(
                "ui.logs.summary",
                files=len(facts.sources),
                lines=_count(sum(s.lines_total for s in facts.sources)),
                malformed=_count(facts.malformed_lines),
                window=facts.window_text(),
            ),
            style="bold",
        )
    )
    console.print(sources_table(facts, t))
    if not facts.requests:
        console.print(Text(t("ui.logs.no_requests"), style="yellow"))
        return
    console.print(
        Text(
            t(
                "ui.logs.totals",
                requests=_count(facts.requests),
                per_minute=f"{facts.requests / (facts.window_s / 60):.1f}",
                sent_bytes=human_bytes(facts.bytes_sent),
                ips=_count(facts.distinct_ips),
            )
        )
    )
    tables = (
        (facts.clients, clients_table),
        (facts.crawlers, crawlers_table),
        (facts.paths_by_bytes, paths_table),
        (facts.path_bursts, bursts_table),
        (facts.referers, referers_table),
        (facts.statuses, statuses_table),
    )
    for rows, build in tables:
        if rows:
            console.print(build(facts, t))

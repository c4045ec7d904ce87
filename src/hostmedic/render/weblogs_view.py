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


def _table(title: str, t: Translator, columns: str, rows: Iterable[Iterable[object]]) -> Table:
    """A table whose column keys are ``ui.logs.col.<name>`` (``num.*`` right-aligned),
    given space-separated; every cell sanitized."""
    table = Table(title=title, title_justify="left", pad_edge=False)
    for name in columns.split():
        table.add_column(
            t("ui.logs.col." + name),
            justify="right" if name.startswith("num.") else "left",
            overflow="ellipsis",
            no_wrap=True,
        )
    for cells in rows:
        table.add_row(*(c if isinstance(c, Text) else Text(sanitize(c)) for c in cells))
    return table


def _count(n: int) -> str:
    return f"{n:,}"


def _minute(facts: WeblogFacts, seconds: int, shown: bool = True) -> str:
    return facts.clock(seconds)[5:16] if shown else ""


def _share(part: int, whole: int) -> str:
    return f"{percent(part, whole)} %"


def sources_table(facts: WeblogFacts, t: Translator) -> Table:
    def rows() -> Iterable[tuple[object, ...]]:
        for s in facts.sources:
            if s.skipped_key:
                shown = Text(t("ui.logs.skipped", what=t(s.skipped_key)), style="dim")
                yield _short(s.path, 44), shown, "", "", ""
                continue
            bad = s.malformed_lines + s.too_long_lines
            kind = s.format_name + (" (gz)" if s.compressed else "")
            lines, in_window = _count(s.lines_total), _count(s.lines_in_window)
            yield (
                _short(s.path, 44),
                kind,
                lines,
                in_window,
                Text(_count(bad), style="yellow" if bad else ""),
            )

    columns = "file format num.lines num.in_window num.malformed"
    return _table(t("ui.logs.sources"), t, columns, rows())


def clients_table(facts: WeblogFacts, t: Translator) -> Table:
    minutes = facts.window_s / 60
    rows = (
        (
            c.ip,
            _count(c.requests),
            f"{c.requests / minutes:.1f}",
            _count(c.peak_minute_requests) if c.peak_minute_requests else f"<{facts.burst_floor}",
            _minute(facts, c.peak_minute_s, bool(c.peak_minute_requests)),
            human_bytes(c.bytes_sent),
            c.crawler,
        )
        for c in facts.clients
    )
    columns = "address num.requests num.per_minute num.peak at num.sent crawler"
    return _table(t("ui.logs.clients"), t, columns, rows)


def crawlers_table(facts: WeblogFacts, t: Translator) -> Table:
    rows = (
        (
            c.name,
            _count(c.requests),
            _share(c.requests, facts.requests),
            human_bytes(c.bytes_sent),
            _share(c.bytes_sent, facts.bytes_sent),
            _count(c.distinct_ips),
        )
        for c in facts.crawlers
    )
    columns = "crawler num.requests num.share num.sent num.share num.addresses"
    return _table(t("ui.logs.crawlers"), t, columns, rows)


def paths_table(facts: WeblogFacts, t: Translator) -> Table:
    rows = (
        (
            _short(p.path),
            Text(t("ui.logs.kind." + p.kind), style="yellow" if p.kind == "download" else ""),
            _count(p.requests),
            human_bytes(p.bytes_sent),
            _share(p.bytes_sent, facts.bytes_sent),
        )
        for p in facts.paths_by_bytes
    )
    columns = "path kind num.requests num.sent num.share"
    return _table(t("ui.logs.paths_by_bytes"), t, columns, rows)


def bursts_table(facts: WeblogFacts, t: Translator) -> Table:
    rows = (
        (
            _short(b.path, 30),
            _count(b.requests),
            _minute(facts, b.minute_s),
            _count(b.distinct_ips),
            f"{b.top_ip} ({b.top_ip_requests})",
        )
        for b in facts.path_bursts
    )
    columns = "path num.peak at num.addresses top_address"
    return _table(t("ui.logs.bursts"), t, columns, rows)


def referers_table(facts: WeblogFacts, t: Translator) -> Table:
    rows = (
        (
            _short(r.host, 30),
            _count(r.requests),
            human_bytes(r.bytes_sent),
            _short(r.top_paths[0][0] if r.top_paths else ""),
        )
        for r in facts.referers
    )
    title = t("ui.logs.referers", hosts=", ".join(facts.own_hosts) or "?")
    return _table(title, t, "host num.requests num.sent top_path", rows)


def statuses_table(facts: WeblogFacts, t: Translator) -> Table:
    def rows() -> Iterable[tuple[object, ...]]:
        for s in facts.statuses:
            style = "red" if s.status >= 500 else ("yellow" if s.status >= 400 else "")
            errors = s.status >= 400
            top = _short(s.top_paths[0][0], 28) if s.top_paths else ""
            peak = _count(s.peak_minute_requests) if errors else ""
            share = _share(s.requests, facts.requests)
            at = _minute(facts, s.peak_minute_s, errors)
            yield Text(str(s.status), style=style), _count(s.requests), share, peak, at, top

    columns = "status num.requests num.share num.peak at top_path"
    return _table(t("ui.logs.statuses"), t, columns, rows())


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

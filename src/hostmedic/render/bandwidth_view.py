"""Ranked tables for ``hostmedic bandwidth``: processes (nethogs), remote addresses and
flows (iftop), interfaces and the unattributed bucket — fitted to an 80-column console.

Every cell is a rich ``Text``: plain strings would be parsed as markup ("[kernel]",
"[::]:0", or a hostile process name such as "[link=…]")."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from hostmedic.analysis.verdict import judge
from hostmedic.facts.bandwidth import BandwidthFacts, format_endpoint
from hostmedic.i18n import Translator
from hostmedic.render.safe_text import sanitize
from hostmedic.render.units import human_bits_per_s, human_bytes

_VERDICT_STYLE = {"suspicious": "bold red", "cloud-agent": "yellow", "unknown": "yellow"}


def _rate(n_bytes: int, seconds: float) -> str:
    return human_bits_per_s(8 * n_bytes / seconds) if seconds > 0 else "-"


def _cell(value: object) -> Text:
    return value if isinstance(value, Text) else Text(sanitize(value))


def _table(t: Translator, title_key: str, *headers: str) -> Table:
    table = Table(title=t(title_key), title_justify="left", pad_edge=False)
    for h in headers:
        numeric = h.startswith("ui.col.num.")
        table.add_column(
            t(h), justify="right" if numeric else "left", overflow="ellipsis", no_wrap=True
        )
    return table


def _add(table: Table, *cells: object) -> None:
    table.add_row(*(_cell(c) for c in cells))


def _pid(pid: int | None) -> str:
    return str(pid) if pid is not None else "?"


def process_table(facts: BandwidthFacts, t: Translator, rows: int) -> Table:
    table = _table(
        t,
        "ui.bw.processes",
        "ui.col.pid",
        "ui.col.process",
        "ui.col.verdict",
        "ui.col.num.sent",
        "ui.col.num.received",
        "ui.col.num.rate_out",
        "ui.col.num.remotes",
    )
    for p in facts.processes[:rows]:
        verdict = judge(p, facts.duration_s).kind
        name = Text(sanitize(p.info.name if p.info else t("ui.bw.unknown_process")))
        container = facts.container(p.netns_inode)
        if container is not None:
            name.append(" @" + sanitize(container.label), style="cyan")
        _add(
            table,
            _pid(p.pid),
            name,
            Text(t("verdict." + verdict), style=_VERDICT_STYLE.get(verdict, "")),
            human_bytes(p.traffic.tx_bytes),
            human_bytes(p.traffic.rx_bytes),
            _rate(p.traffic.tx_bytes, facts.duration_s),
            str(len(p.remote_ips)),
        )
    return table


def container_table(facts: BandwidthFacts, t: Translator, rows: int) -> Table:
    """Traffic per container (network namespace attached to this host)."""
    table = _table(
        t,
        "ui.bw.containers",
        "ui.col.container",
        "ui.col.interface",
        "ui.col.num.sent",
        "ui.col.num.received",
        "ui.col.num.rate_out",
        "ui.col.pids",
    )
    for c in facts.containers[:rows]:
        _add(
            table,
            c.info.label,
            ",".join(c.info.host_interfaces),
            human_bytes(c.traffic.tx_bytes),
            human_bytes(c.traffic.rx_bytes),
            _rate(c.traffic.tx_bytes, facts.duration_s),
            ",".join(map(str, c.pids[:4])) or "?",
        )
    return table


def remote_table(facts: BandwidthFacts, t: Translator, rows: int) -> Table:
    table = _table(
        t,
        "ui.bw.remotes",
        "ui.col.remote",
        "ui.col.country",
        "ui.col.num.sent",
        "ui.col.num.received",
        "ui.col.pids",
    )
    for r in facts.remotes[:rows]:
        country = Text(
            (r.country or "?") + (" ⚑" if r.abroad else ""), style="yellow" if r.abroad else ""
        )
        _add(
            table,
            r.ip,
            country,
            human_bytes(r.traffic.tx_bytes),
            human_bytes(r.traffic.rx_bytes),
            ",".join(map(str, r.pids[:4])) or "?",
        )
    return table


def flow_table(facts: BandwidthFacts, t: Translator, rows: int) -> Table:
    table = _table(
        t,
        "ui.bw.flows",
        "ui.col.proto",
        "ui.col.local",
        "ui.col.remote",
        "ui.col.pid",
        "ui.col.num.sent",
        "ui.col.num.received",
    )
    for f in facts.flows[:rows]:
        k = f.key
        _add(
            table,
            k.protocol,
            format_endpoint(k.local_ip, k.local_port),
            format_endpoint(k.remote_ip, k.remote_port),
            _pid(k.pid),
            human_bytes(f.traffic.tx_bytes),
            human_bytes(f.traffic.rx_bytes),
        )
    return table


def interface_table(facts: BandwidthFacts, t: Translator) -> Table:
    """Interfaces that carried traffic (all of them if none did), then the unattributed row."""
    table = _table(
        t,
        "ui.bw.interfaces",
        "ui.col.interface",
        "ui.col.num.sent",
        "ui.col.num.received",
        "ui.col.num.rate_out",
        "ui.col.num.rate_in",
    )
    d = facts.duration_s
    busy = [i for i in facts.interfaces if not i.traffic.is_zero] or list(facts.interfaces)
    for i in busy:
        _add(
            table,
            i.name,
            human_bytes(i.traffic.tx_bytes),
            human_bytes(i.traffic.rx_bytes),
            _rate(i.traffic.tx_bytes, d),
            _rate(i.traffic.rx_bytes, d),
        )
    u = facts.unattributed
    _add(
        table,
        Text(t("ui.bw.unattributed"), style="dim"),
        human_bytes(u.tx_bytes),
        human_bytes(u.rx_bytes),
        _rate(u.tx_bytes, d),
        _rate(u.rx_bytes, d),
    )
    return table


def print_bandwidth(console: Console, facts: BandwidthFacts, t: Translator, rows: int) -> None:
    """Print the one-shot sample as tables (byte counts over the window, and mean rates)."""
    console.print(Text(t("ui.bw.window", seconds=f"{facts.duration_s:.1f}"), style="bold"))
    if facts.flows:
        tables = [process_table(facts, t, rows)]
        if facts.containers:
            tables.append(container_table(facts, t, rows))
        tables += [remote_table(facts, t, rows), flow_table(facts, t, rows)]
        for table in tables:
            console.print(table)
    else:
        console.print(Text(t("ui.bw.no_traffic")))
    console.print(interface_table(facts, t))
    for key, detail in facts.not_counted:
        console.print(
            Text(f"{t('ui.bw.not_counted')}: {t(key)} ({sanitize(detail)})", style="yellow")
        )

"""Ranked tables for ``hostmedic bandwidth``: processes (nethogs), remote addresses and
flows (iftop), interfaces and the unattributed bucket — fitted to an 80-column console."""

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


def _table(title: str, t: Translator, *headers: str) -> Table:
    table = Table(title=title, title_justify="left", expand=False, pad_edge=False)
    for h in headers:
        justify = "right" if h.startswith("ui.col.num.") else "left"
        table.add_column(t(h), justify=justify, overflow="ellipsis", no_wrap=True)
    return table


def print_bandwidth(console: Console, facts: BandwidthFacts, t: Translator, rows: int) -> None:
    """Print the one-shot sample as tables (byte counts over the window, and mean rates)."""
    d = facts.duration_s
    console.print(Text(t("ui.bw.window", seconds=f"{d:.1f}"), style="bold"))
    procs = _table(
        t("ui.bw.processes"),
        t,
        "ui.col.pid",
        "ui.col.process",
        "ui.col.verdict",
        "ui.col.num.sent",
        "ui.col.num.received",
        "ui.col.num.rate_out",
        "ui.col.num.remotes",
    )
    for p in facts.processes[:rows]:
        verdict = judge(p, d).kind
        name = p.info.name if p.info else t("ui.bw.unknown_process")
        procs.add_row(
            str(p.pid) if p.pid is not None else "?",
            sanitize(name),
            Text(t("verdict." + verdict), style=_VERDICT_STYLE.get(verdict, "")),
            human_bytes(p.traffic.tx_bytes),
            human_bytes(p.traffic.rx_bytes),
            _rate(p.traffic.tx_bytes, d),
            str(len(p.remote_ips)),
        )
    console.print(procs)
    remotes = _table(
        t("ui.bw.remotes"),
        t,
        "ui.col.remote",
        "ui.col.country",
        "ui.col.num.sent",
        "ui.col.num.received",
        "ui.col.pids",
    )
    for r in facts.remotes[:rows]:
        country = r.country or "?"
        flag = Text(country + (" ⚑" if r.abroad else ""), style="yellow" if r.abroad else "")
        remotes.add_row(
            r.ip,
            flag,
            human_bytes(r.traffic.tx_bytes),
            human_bytes(r.traffic.rx_bytes),
            ",".join(map(str, r.pids[:4])) or "?",
        )
    console.print(remotes)
    flows = _table(
        t("ui.bw.flows"),
        t,
        "ui.col.proto",
        "ui.col.local",
        "ui.col.remote",
        "ui.col.pid",
        "ui.col.num.sent",
        "ui.col.num.received",
    )
    for f in facts.flows[:rows]:
        k = f.key
        flows.add_row(
            k.protocol,
            format_endpoint(k.local_ip, k.local_port),
            format_endpoint(k.remote_ip, k.remote_port),
            str(k.pid) if k.pid is not None else "?",
            human_bytes(f.traffic.tx_bytes),
            human_bytes(f.traffic.rx_bytes),
        )
    console.print(flows)
    ifaces = _table(
        t("ui.bw.interfaces"),
        t,
        "ui.col.interface",
        "ui.col.num.sent",
        "ui.col.num.received",
        "ui.col.num.rate_out",
        "ui.col.num.rate_in",
    )
    for i in facts.interfaces:
        ifaces.add_row(
            sanitize(i.name),
            human_bytes(i.traffic.tx_bytes),
            human_bytes(i.traffic.rx_bytes),
            _rate(i.traffic.tx_bytes, d),
            _rate(i.traffic.rx_bytes, d),
        )
    u = facts.unattributed
    ifaces.add_row(
        Text(t("ui.bw.unattributed"), style="dim"),
        human_bytes(u.tx_bytes),
        human_bytes(u.rx_bytes),
        _rate(u.tx_bytes, d),
        _rate(u.rx_bytes, d),
    )
    console.print(ifaces)
    for key, detail in facts.not_counted:
        console.print(
            Text(f"{t('ui.bw.not_counted')}: {t(key)} ({sanitize(detail)})", style="yellow")
        )

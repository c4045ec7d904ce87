"""``hostmedic top``: iftop and nethogs in one live screen, sized for an 80×24 VNC console.

Two tables — processes and remote addresses — with iftop's 2 s / 10 s / 40 s averages,
the cumulative total and the peak, plus the verdict and the country. Keys: ``s`` cycles
the sort column, ``d`` the direction (total / out / in), ``/`` filters, ``f`` freezes the
display (sampling goes on), ``q`` quits. The data source is injected, so tests drive the
app with recorded facts through textual's pilot.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable, Footer, Input, Static

from hostmedic.analysis.verdict import judge
from hostmedic.facts.bandwidth import BandwidthFacts, ProcessUsage, Rates, RemoteUsage, Traffic
from hostmedic.i18n import Translator
from hostmedic.render.safe_text import sanitize
from hostmedic.render.units import human_bits_per_s, human_bytes

SORT_KEYS = ("2s", "10s", "40s", "cum", "peak")
DIRECTIONS = ("total", "out", "in")


class TrafficSource(Protocol):
    def sample(self) -> None: ...
    def facts(self) -> BandwidthFacts: ...


def _rate(rates: Rates, window: str, direction: str) -> float:
    tx = float(getattr(rates, f"tx_{window}_bytes_per_s"))
    rx = float(getattr(rates, f"rx_{window}_bytes_per_s"))
    return {"total": tx + rx, "out": tx, "in": rx}[direction]


def _bytes(traffic: Traffic, direction: str) -> int:
    return {"total": traffic.total_bytes, "out": traffic.tx_bytes, "in": traffic.rx_bytes}[
        direction
    ]


def sort_value(row: ProcessUsage | RemoteUsage, key: str, direction: str) -> float:
    """The number a row is ranked by for the chosen sort key and direction."""
    if key == "cum":
        return float(_bytes(row.traffic, direction))
    return _rate(row.rates, key if key != "peak" else "peak", direction)


def _cells(row: ProcessUsage | RemoteUsage, direction: str) -> list[Text]:
    rates = [human_bits_per_s(8 * _rate(row.rates, w, direction)) for w in ("2s", "10s", "40s")]
    values = [
        *rates,
        human_bytes(_bytes(row.traffic, direction)),
        human_bits_per_s(8 * _rate(row.rates, "peak", direction)),
    ]
    return [Text(v, justify="right") for v in values]


class TopApp(App[None]):
    """The live view; ``source`` samples and rolls up, ``interval_s`` is the refresh."""

    AUTO_FOCUS = "#processes"
    CSS = """
    Screen { layout: vertical; }
    #status { height: 1; background: $boost; }
    DataTable { height: 1fr; }
    #filter { display: none; }
    #filter.shown { display: block; }
    """

    def __init__(self, source: TrafficSource, t: Translator, interval_s: float = 1.0) -> None:
        super().__init__()
        self.source, self.t, self.interval_s = source, t, interval_s
        self.sort_key, self.direction, self.filter_text, self.frozen = "2s", "total", "", False
        self.last: BandwidthFacts | None = None
        self.title = "hostmedic top"
        self._bind_keys()

    def _bind_keys(self) -> None:
        t = self.t
        for key, action, label in (
            ("q", "quit", "ui.top.key.quit"),
            ("s", "cycle_sort", "ui.top.key.sort"),
            ("d", "cycle_direction", "ui.top.key.direction"),
            ("slash", "filter", "ui.top.key.filter"),
            ("f", "freeze", "ui.top.key.freeze"),
            ("escape", "clear_filter", "ui.top.key.clear"),
        ):
            self._bindings.bind(key, action, t(label))

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        yield Input(placeholder=self.t("ui.top.filter_placeholder"), id="filter")
        yield DataTable(id="processes", cursor_type="row", zebra_stripes=True)
        yield DataTable(id="remotes", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        t = self.t
        rate_cols = [
            t("ui.top.col.2s"),
            t("ui.top.col.10s"),
            t("ui.top.col.40s"),
            t("ui.top.col.cum"),
            t("ui.top.col.peak"),
        ]
        self.query_one("#processes", DataTable).add_columns(
            t("ui.col.pid"), t("ui.col.process"), t("ui.col.verdict"), *rate_cols
        )
        self.query_one("#remotes", DataTable).add_columns(
            t("ui.col.remote"), t("ui.col.country"), *rate_cols, t("ui.col.pids")
        )
        self.refresh_view()
        self.set_interval(self.interval_s, self.tick)

    def tick(self) -> None:
        self.source.sample()
        if not self.frozen:
            self.refresh_view()

    def _matches(self, *fields: object) -> bool:
        needle = self.filter_text.lower()
        return not needle or any(needle in str(f).lower() for f in fields)

    def refresh_view(self) -> None:
        """Redraw both tables from a fresh roll-up (sorted, filtered, escaped)."""
        facts = self.last = self.source.facts()
        t = self.t
        procs = self.query_one("#processes", DataTable)
        procs.clear()
        rows = sorted(facts.processes, key=lambda r: -sort_value(r, self.sort_key, self.direction))
        for p in rows:
            name = p.info.name if p.info else t("ui.bw.unknown_process")
            container = facts.container(p.netns_inode)
            label = container.label if container is not None else ""
            if not self._matches(p.pid, name, p.info.exe if p.info else "", label):
                continue
            if container is not None:
                name = f"{name}@{container.name}"  # the short id or machine name
            verdict = judge(p, facts.duration_s).kind
            style = "bold red" if verdict == "suspicious" else ""
            procs.add_row(
                Text(str(p.pid if p.pid is not None else "?")),
                Text(sanitize(name)[:16]),
                Text(t("verdict." + verdict), style=style),
                *_cells(p, self.direction),
            )
        remotes = self.query_one("#remotes", DataTable)
        remotes.clear()
        ranked = sorted(facts.remotes, key=lambda r: -sort_value(r, self.sort_key, self.direction))
        for r in ranked:
            if not self._matches(r.ip, r.country or "", *r.pids):
                continue
            country = Text(
                (r.country or "?") + ("!" if r.abroad else ""), style="yellow" if r.abroad else ""
            )
            remotes.add_row(
                Text(r.ip),
                country,
                *_cells(r, self.direction),
                Text(",".join(map(str, r.pids[:3]))),
            )
        self._update_status(facts)

    def _update_status(self, facts: BandwidthFacts) -> None:
        t = self.t
        total_tx = sum(i.rates.tx_2s_bytes_per_s for i in facts.interfaces)
        total_rx = sum(i.rates.rx_2s_bytes_per_s for i in facts.interfaces)
        status = t(
            "ui.top.status",
            out=human_bits_per_s(8 * total_tx),
            into=human_bits_per_s(8 * total_rx),
            sort=self.sort_key,
            direction=t("ui.top.direction." + self.direction),
        )
        if self.frozen:
            status += "  " + t("ui.top.frozen")
        if self.filter_text:
            status += "  /" + sanitize(self.filter_text)
        self.query_one("#status", Static).update(Text(status))

    def action_cycle_sort(self) -> None:
        self.sort_key = SORT_KEYS[(SORT_KEYS.index(self.sort_key) + 1) % len(SORT_KEYS)]
        self.refresh_view()

    def action_cycle_direction(self) -> None:
        self.direction = DIRECTIONS[(DIRECTIONS.index(self.direction) + 1) % len(DIRECTIONS)]
        self.refresh_view()

    def action_freeze(self) -> None:
        self.frozen = not self.frozen
        if self.last is not None:
            self._update_status(self.last)

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("shown")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value, self.filter_text = "", ""
        box.remove_class("shown")
        self.query_one("#processes", DataTable).focus()
        self.refresh_view()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.filter_text = event.value.strip()
        event.input.remove_class("shown")
        self.query_one("#processes", DataTable).focus()
        self.refresh_view()


def run_top(
    source: TrafficSource,
    t: Translator,
    interval_s: float = 1.0,
    on_exit: Callable[[], None] | None = None,
) -> None:
    """Run the app until the operator quits."""
    try:
        TopApp(source, t, interval_s).run()
    finally:
        if on_exit is not None:
            on_exit()

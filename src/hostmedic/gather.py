"""Collect the facts a run needs, once, for the categories asked for.

This is the only place that decides which collectors run; rules then get the facts by
name. A collector that cannot run leaves a :class:`FactUnavailable` under its fact name,
and the engine reports the dependent rules as skipped with that reason.
"""

from __future__ import annotations

import dataclasses
import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

from hostmedic.errors import FactUnavailable, UsageError
from hostmedic.facts.bandwidth import BandwidthFacts, ProcessUsage
from hostmedic.facts.bundle import dump_bundle, load_bundle
from hostmedic.facts.ftp import FtpFacts
from hostmedic.facts.health_types import HEALTH_FACT_TYPES
from hostmedic.facts.network import FirewallFacts, NetworkFacts
from hostmedic.facts.security import SECURITY_FACT_TYPES
from hostmedic.facts.weblogs import WeblogFacts
from hostmedic.settings import Settings

if TYPE_CHECKING:
    from hostmedic.collectors.bandwidth import MonitorOptions
    from hostmedic.collectors.geo import CountryLookup

Progress = Callable[[float], None]
T = TypeVar("T")


def home_country(settings: Settings, geo: CountryLookup) -> str | None:
    """``--home-country``/config, else the country of the server's own public address."""
    if settings.home_country:
        return settings.home_country
    import psutil

    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            country = geo.country_of(a.address.split("%")[0])
            if country:
                return country
    return None


def _with_packages(facts: BandwidthFacts, top_n: int) -> BandwidthFacts:
    """Fill in the owning package of the top processes' executables (a verdict clue)."""
    from hostmedic.collectors.packages import package_database_present, package_owners

    if not package_database_present():
        return facts
    top = [p for p in facts.processes[:top_n] if p.info and p.info.exe and not p.info.exe_deleted]
    owners = package_owners(sorted({p.info.exe for p in top if p.info and p.info.exe}))
    rows: list[ProcessUsage] = []
    for p in facts.processes:
        if p in top and p.info is not None and p.info.exe is not None:
            info = dataclasses.replace(p.info, package=owners.get(p.info.exe), package_checked=True)
            p = dataclasses.replace(p, info=info)
        rows.append(p)
    return dataclasses.replace(facts, processes=tuple(rows))


class LiveSource:
    """A started monitor plus the lookups its roll-up needs: what ``hostmedic top`` polls."""

    def __init__(self, settings: Settings, options: MonitorOptions) -> None:
        from hostmedic.collectors.bandwidth import BandwidthMonitor
        from hostmedic.collectors.geo import CountryLookup, parse_overrides

        self._geo = CountryLookup(parse_overrides(settings.geo_overrides))
        self._home = home_country(settings, self._geo)
        self._monitor = BandwidthMonitor(options)
        self._monitor.start()

    def sample(self) -> None:
        self._monitor.sample()

    def facts(self) -> BandwidthFacts:
        return self._monitor.facts(self._geo.country_of, self._home)

    def close(self) -> None:
        self._monitor.close()


@dataclass(frozen=True, slots=True)
class GatherContext:
    """What every source may use: the settings, the sampling window, and where the
    machine's files are (``root`` is ``/`` live, another disk's mount point with
    ``--root``; ``live`` is False then, and sources skip process and socket checks)."""

    settings: Settings
    duration_s: float
    options: MonitorOptions
    root: str = "/"
    live: bool = True
    _readings: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    def once(self, name: str, read: Callable[[], T]) -> T:
        """``read()`` the first time any source asks for ``name`` during this gather, the
        same result (or the same FactUnavailable) afterwards: two categories needing one
        reading (the firewall, for ftp and for network) see one snapshot, read once."""
        if name not in self._readings:
            try:
                self._readings[name] = read()
            except FactUnavailable as exc:
                self._readings[name] = exc
        held = self._readings[name]
        if isinstance(held, FactUnavailable):
            raise held
        return cast(T, held)


class Collection(Protocol):
    """One category's collection in progress: ``tick`` is called every sampling interval
    while the window is open, ``finish`` returns the facts by name (a value, or the
    :class:`FactUnavailable` that explains why not), ``close`` releases what it holds."""

    wants_window: bool

    def tick(self) -> None: ...

    def finish(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class Instant:
    """A collection whose facts were read at once (no sampling window needed)."""

    wants_window = False

    def __init__(self, facts: dict[str, Any]) -> None:
        self._facts = facts

    def tick(self) -> None:
        return None

    def finish(self) -> dict[str, Any]:
        return self._facts

    def close(self) -> None:
        return None


class _BandwidthCollection:
    """The bandwidth monitor, sampled every tick of the window."""

    wants_window = True

    def __init__(self, ctx: GatherContext) -> None:
        self._settings = ctx.settings
        self._source = LiveSource(ctx.settings, ctx.options)

    def tick(self) -> None:
        self._source.sample()

    def finish(self) -> dict[str, Any]:
        self._source.sample()
        return {"bandwidth": _with_packages(self._source.facts(), self._settings.top_n)}

    def close(self) -> None:
        self._source.close()


def bandwidth_source(ctx: GatherContext) -> Collection:
    """The ``bandwidth`` category: the monitor, sampled over the window (live only)."""
    if not ctx.live:
        return Instant({"bandwidth": FactUnavailable("not live", key="reason.not_live")})
    return _BandwidthCollection(ctx)


# Category → ``module:function`` that starts its collection, imported only when the
# category runs (so ``--help`` and ``--only`` do not load every collector). A category's
# rules live in ``hostmedic.rules.<category>``; adding a category is one line here.
SOURCES: dict[str, str] = {
    "bandwidth": "hostmedic.gather:bandwidth_source",
    "ftp": "hostmedic.collectors.ftp:ftp_source",
    "health": "hostmedic.collectors.health.source:health_source",
    "security": "hostmedic.collectors.security:security_source",
    "network": "hostmedic.collectors.network:network_source",
    "weblogs": "hostmedic.collectors.weblogs:weblogs_source",
}
CATEGORIES = tuple(SOURCES)


def _start(name: str, ctx: GatherContext) -> Collection:
    module, function = SOURCES[name].split(":")
    start: Callable[[GatherContext], Collection] = getattr(
        importlib.import_module(module), function
    )
    return start(ctx)


FACT_TYPES: dict[str, type] = {
    "bandwidth": BandwidthFacts,
    **HEALTH_FACT_TYPES,
    **SECURITY_FACT_TYPES,
    "ftp": FtpFacts,
    "firewall": FirewallFacts,
    "network": NetworkFacts,
    "weblogs": WeblogFacts,
}


def save_facts(path: str, facts: dict[str, Any]) -> None:
    """Write the collected facts (not the settings) as a JSON bundle."""
    import json

    try:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(
                dump_bundle({k: v for k, v in facts.items() if k in FACT_TYPES}),
                f,
                ensure_ascii=False,
            )
    except OSError as exc:
        raise UsageError("error.cannot_write", path=path, detail=exc.strerror or str(exc)) from exc


def load_facts(path: str) -> dict[str, Any]:
    """Read a bundle written by :func:`save_facts` (``--from``)."""
    import json

    try:
        with open(path, encoding="utf-8") as f:
            return load_bundle(json.load(f), FACT_TYPES)
    except OSError as exc:
        raise UsageError("error.cannot_read", path=path, detail=exc.strerror or str(exc)) from exc
    except ValueError as exc:  # bad JSON, or a ParseError (a ValueError) from the bundle
        raise UsageError("error.bad_bundle", path=path, detail=str(exc)) from exc


def gather(
    categories: set[str], ctx: GatherContext, progress: Progress | None = None
) -> dict[str, Any]:
    """Facts by name for the rules of the given categories.

    Every selected source starts first, then one shared sampling window runs (only if a
    source wants one, so ``--only`` of instant checks returns at once), then each source
    finishes. A source that cannot start leaves its FactUnavailable under its category.
    """
    facts: dict[str, Any] = {"settings": ctx.settings}
    running: dict[str, Collection] = {}
    try:
        for name in CATEGORIES:
            if name not in categories:
                continue
            try:
                running[name] = _start(name, ctx)
            except FactUnavailable as exc:
                facts[name] = exc
        if any(c.wants_window for c in running.values()):
            _run_window(list(running.values()), ctx, progress)
        for name, collection in running.items():
            try:
                facts.update(collection.finish())
            except FactUnavailable as exc:
                facts[name] = exc
    finally:
        for collection in running.values():
            collection.close()
    return facts


def _run_window(running: list[Collection], ctx: GatherContext, progress: Progress | None) -> None:
    start = time.monotonic()
    deadline = start + ctx.duration_s
    while (now := time.monotonic()) < deadline:
        time.sleep(min(ctx.options.interval_s, deadline - now))
        for collection in running:
            if collection.wants_window:
                collection.tick()
        if progress is not None:
            progress(min((time.monotonic() - start) / ctx.duration_s, 1.0))

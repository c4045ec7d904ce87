"""The gather loop: sources start, share one window only when one wants it, and a source
that cannot work leaves its reason under its category instead of stopping the others."""

from typing import Any

import pytest

from hostmedic import gather as gather_module
from hostmedic.collectors.bandwidth import MonitorOptions
from hostmedic.errors import FactUnavailable
from hostmedic.gather import GatherContext, Instant, gather
from hostmedic.settings import Settings


class Windowed:
    wants_window = True

    def __init__(self) -> None:
        self.ticks = 0
        self.closed = False

    def tick(self) -> None:
        self.ticks += 1

    def finish(self) -> dict[str, Any]:
        return {"windowed": self.ticks}

    def close(self) -> None:
        self.closed = True


WINDOWED = Windowed()


def instant_source(ctx: GatherContext) -> Any:
    return Instant({"instant": ctx.root})


def windowed_source(ctx: GatherContext) -> Any:
    return WINDOWED


def broken_source(ctx: GatherContext) -> Any:
    raise FactUnavailable("no such thing", key="reason.generic")


@pytest.fixture
def sources(monkeypatch):
    WINDOWED.ticks, WINDOWED.closed = 0, False
    table = {name: f"{__name__}:{name}_source" for name in ("instant", "windowed", "broken")}
    monkeypatch.setattr(gather_module, "SOURCES", table)
    monkeypatch.setattr(gather_module, "CATEGORIES", tuple(table))
    return WINDOWED


def _ctx(duration_s: float) -> GatherContext:
    return GatherContext(Settings(), duration_s, MonitorOptions(interval_s=0.05), root="/mnt")


def test_instant_sources_need_no_window(sources):
    facts = gather({"instant", "broken"}, _ctx(3600))
    assert facts["instant"] == "/mnt"
    assert isinstance(facts["broken"], FactUnavailable)
    assert sources.ticks == 0


def test_windowed_source_is_ticked_and_closed(sources):
    seen: list[float] = []
    facts = gather({"instant", "windowed"}, _ctx(0.2), seen.append)
    assert facts["windowed"] >= 2 and sources.closed
    assert seen[-1] == 1.0


def test_a_reading_two_sources_need_is_made_once_and_shared():
    """The firewall, read for ftp and for network, is one snapshot (and one failure)."""
    ctx = _ctx(0)
    calls: list[str] = []

    def read() -> dict[str, int]:
        calls.append("read")
        return {"rules": 3}

    first, second = ctx.once("firewall", read), ctx.once("firewall", read)
    assert first is second and calls == ["read"]

    def refused() -> None:
        calls.append("refused")
        raise FactUnavailable("nft: permission denied", key="reason.generic")

    for _ in range(2):
        with pytest.raises(FactUnavailable, match="permission denied"):
            ctx.once("ruleset", refused)
    assert calls == ["read", "refused"]
    assert _ctx(0).once("firewall", read) == {"rules": 3} and len(calls) == 3  # per gather

"""The live view, driven by textual's pilot with recorded facts (no machine access)."""

import asyncio

from hostmedic.facts.bandwidth import (
    BandwidthFacts,
    InterfaceUsage,
    ProcessInfo,
    ProcessUsage,
    Rates,
    RemoteUsage,
    Traffic,
)
from hostmedic.i18n import Translator
from hostmedic.tui.top import TopApp


def facts() -> BandwidthFacts:
    evil = ProcessInfo(66, "x\x1b[2Jminer", "/tmp/m", True, ("/tmp/m",), 0, "root", 1, 1, None)
    web = ProcessInfo(10, "nginx", "/usr/sbin/nginx", False, ("nginx",), 33, "www-data", 1, 1, None)
    procs = (
        ProcessUsage(
            10,
            web,
            Traffic(5_000_000, 10_000, 4000, 100),
            Rates(tx_2s_bytes_per_s=1e6, tx_40s_bytes_per_s=9e5),
            ("198.18.1.2",),
            1,
            1,
        ),
        ProcessUsage(
            66,
            evil,
            Traffic(900_000, 0, 9000, 0),
            Rates(tx_2s_bytes_per_s=2e6, tx_40s_bytes_per_s=1e5),
            ("198.18.2.2",),
            1,
            1,
        ),
    )
    remotes = (
        RemoteUsage(
            "198.18.1.2",
            Traffic(5_000_000, 10_000),
            Rates(tx_2s_bytes_per_s=1e6),
            (10,),
            "CN",
            False,
        ),
        RemoteUsage(
            "198.18.2.2", Traffic(900_000, 0), Rates(tx_2s_bytes_per_s=2e6), (66,), "US", True
        ),
    )
    iface = (InterfaceUsage("eth0", Traffic(5_900_000, 10_000), Rates(tx_2s_bytes_per_s=3e6)),)
    return BandwidthFacts(10.0, (), procs, remotes, iface, Traffic(), home_country="CN")


class FakeSource:
    def __init__(self):
        self.samples = 0

    def sample(self):
        self.samples += 1

    def facts(self):
        return facts()


def first_column(app, table_id):
    table = app.query_one(table_id)
    return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]


def test_sorting_filtering_freezing_and_quitting():
    async def scenario():
        source = FakeSource()
        app = TopApp(source, Translator("en"), interval_s=0.05)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.2)
            assert source.samples >= 1
            assert first_column(app, "#processes") == ["66", "10"]  # 2 s rate: miner first
            table = app.query_one("#processes")
            name = str(table.get_row_at(0)[1])
            assert "\x1b" not in name and "\\x1b" in name
            await pilot.press("s", "s")  # 2s -> 10s -> 40s
            assert app.sort_key == "40s"
            assert first_column(app, "#processes") == ["10", "66"]
            await pilot.press("slash", *"nginx", "enter")
            assert first_column(app, "#processes") == ["10"]
            assert first_column(app, "#remotes") == []
            await pilot.press("escape")
            assert len(first_column(app, "#processes")) == 2
            await pilot.press("f")
            assert app.frozen
            await pilot.press("d")
            assert app.direction == "out"
            await pilot.press("q")
        assert not app.is_running

    asyncio.run(scenario())


def test_renders_in_every_language_at_80x24():
    async def scenario(lang):
        app = TopApp(FakeSource(), Translator(lang), interval_s=1)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.1)
            assert app.query_one("#remotes").row_count == 2

    for lang in ("en", "zh_CN", "ja", "ko"):
        asyncio.run(scenario(lang))

"""Write the scenario fact bundles (run once by hand; the JSON files are committed).

`compromised.json`: a saturated 5 Mbit/s server where a deleted /tmp binary named like a
kernel thread floods many addresses abroad, next to a busy nginx, a genuine Tencent Cloud
agent and traffic whose process could not be named. `healthy.json`: a quiet web server.
"""

import json
from pathlib import Path

from hostmedic.facts.bandwidth import (
    BandwidthFacts,
    FlowKey,
    FlowUsage,
    InterfaceUsage,
    ProcessInfo,
    ProcessUsage,
    Rates,
    RemoteUsage,
    Traffic,
)
from hostmedic.facts.bundle import dump_bundle

T0 = 1795000000.0
HERE = Path(__file__).parent / "bundles"


def proc(pid, name, exe, deleted=False, package=None, cmd=None, user="root"):
    return ProcessInfo(
        pid,
        name,
        exe,
        deleted,
        tuple(cmd or [exe]),
        0,
        user,
        1,
        4026531840,
        "/system.slice/x.service",
        package,
        True,
    )


def compromised() -> BandwidthFacts:
    miner = proc(4242, "kworkerds", "/tmp/.x/kworkerds", deleted=True, cmd=["[kworkerds]"])
    nginx = proc(812, "nginx", "/usr/sbin/nginx", package="nginx-light", user="www-data")
    agent = proc(1290, "YDService", "/usr/local/qcloud/YunJing/YDEyes/YDService")
    victims = tuple(f"45.{i}.7.9" for i in range(60))
    procs = (
        ProcessUsage(
            4242,
            miner,
            Traffic(22_000_000, 40_000, 290_000, 600),
            Rates(tx_2s_bytes_per_s=4.4e6, tx_peak_bytes_per_s=6.2e5),
            victims,
            60,
            4026531840,
        ),
        ProcessUsage(
            812,
            nginx,
            Traffic(9_000_000, 400_000, 6500, 5200),
            Rates(tx_2s_bytes_per_s=1.8e5),
            ("203.0.113.10", "198.51.100.7"),
            2,
            4026531840,
        ),
        ProcessUsage(
            1290,
            agent,
            Traffic(5_500_000, 90_000, 4000, 1500),
            Rates(),
            ("169.254.0.55",),
            1,
            4026531840,
        ),
        ProcessUsage(
            None,
            None,
            Traffic(4_200_000, 30_000, 3000, 700),
            Rates(),
            ("198.51.100.99",),
            1,
            4026531840,
        ),
    )
    remotes = (
        RemoteUsage(
            "45.0.7.9", Traffic(8_000_000, 10_000, 100_000, 100), Rates(), (4242,), "US", True
        ),
        RemoteUsage("203.0.113.10", Traffic(6_000_000, 200_000), Rates(), (812,), "CN", False),
        RemoteUsage("169.254.0.55", Traffic(2_500_000, 90_000), Rates(), (1290,), None, None),
    )
    flows = (
        FlowUsage(
            FlowKey(4242, 4026531840, "udp", "10.0.0.5", 40001, "45.0.7.9", 80, "eth0"),
            Traffic(8_000_000, 10_000, 100_000, 100),
        ),
        FlowUsage(
            FlowKey(812, 4026531840, "tcp", "10.0.0.5", 443, "203.0.113.10", 51000, "eth0"),
            Traffic(6_000_000, 200_000, 4300, 3000),
        ),
    )
    eth0 = InterfaceUsage(
        "eth0",
        Traffic(35_500_000, 600_000, 300_000, 8000),
        Rates(tx_peak_bytes_per_s=640_000, rx_peak_bytes_per_s=20_000),
        None,
        Traffic(800_000, 40_000),
    )
    return BandwidthFacts(
        60.0,
        flows,
        procs,
        remotes,
        (eth0,),
        Traffic(800_000, 40_000),
        (("uncounted.connect_pids", "the kernel refused to load the BPF program (EPERM)"),),
        "CN",
        0,
        T0,
    )


def healthy() -> BandwidthFacts:
    nginx = proc(812, "nginx", "/usr/sbin/nginx", package="nginx-light", user="www-data")
    procs = (
        ProcessUsage(
            812,
            nginx,
            Traffic(300_000, 40_000, 300, 250),
            Rates(),
            ("203.0.113.10",),
            1,
            4026531840,
        ),
    )
    remotes = (RemoteUsage("203.0.113.10", Traffic(300_000, 40_000), Rates(), (812,), "CN", False),)
    eth0 = InterfaceUsage(
        "eth0",
        Traffic(301_000, 40_500, 310, 260),
        Rates(tx_peak_bytes_per_s=60_000, rx_peak_bytes_per_s=8_000),
        1000,
    )
    return BandwidthFacts(5.0, (), procs, remotes, (eth0,), Traffic(1000, 500), (), "CN", 0, T0)


if __name__ == "__main__":
    for name, facts in (("compromised", compromised()), ("healthy", healthy())):
        (HERE / f"{name}.json").write_text(
            json.dumps(dump_bundle({"bandwidth": facts}), indent=1) + "\n"
        )

"""Write the scenario fact bundles (run once by hand; the JSON files are committed).

`compromised.json`: a saturated 5 Mbit/s server where a deleted /tmp binary named like a
kernel thread floods many addresses abroad, next to a busy nginx, a genuine Tencent Cloud
agent and traffic whose process could not be named. `healthy.json`: a quiet web server.
`containers.json`: a Docker host where one container's process sprays UDP and another
container serves web traffic, next to the host's own sshd.
"""

import json
from pathlib import Path

from hostmedic.facts.bandwidth import (
    BandwidthFacts,
    ContainerInfo,
    ContainerUsage,
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


def proc(pid, name, exe, deleted=False, package=None, cmd=None, user="root", netns=4026531840):
    return ProcessInfo(
        pid,
        name,
        exe,
        deleted,
        tuple(cmd or [exe]),
        0,
        user,
        1,
        netns,
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


HOST_NS, SPRAY_NS, WEB_NS = 4026531840, 4026532301, 4026532302
DOCKER_ID = "3f2a1b4c5d6e"


def containers() -> BandwidthFacts:
    spray = proc(7001, "python3", "/usr/bin/python3", netns=SPRAY_NS, cmd=["python3", "/app/x.py"])
    web = proc(7100, "nginx", "/usr/sbin/nginx", netns=WEB_NS, user="www-data")
    sshd = proc(650, "sshd", "/usr/sbin/sshd", package="openssh-server")
    spray_info = ContainerInfo(
        SPRAY_NS,
        f"docker:{DOCKER_ID}",
        "docker",
        DOCKER_ID,
        f"/system.slice/docker-{DOCKER_ID}{'0' * 52}.scope",
        None,
        ("veth3a1",),
    )
    web_info = ContainerInfo(
        WEB_NS, "podman:9e8d7c6b5a4f", "podman", "9e8d7c6b5a4f", None, None, ("veth7c2",)
    )
    targets = tuple(f"198.51.100.{i}" for i in range(1, 80))
    procs = (
        ProcessUsage(
            7001, spray, Traffic(18_000_000, 0, 150_000, 0), Rates(tx_2s_bytes_per_s=3.6e6),
            targets, 79, SPRAY_NS,
        ),
        ProcessUsage(
            7100, web, Traffic(4_000_000, 300_000, 3000, 2600), Rates(), ("203.0.113.10",), 1,
            WEB_NS,
        ),
        ProcessUsage(
            650, sshd, Traffic(60_000, 30_000, 400, 400), Rates(), ("203.0.113.20",), 1, HOST_NS
        ),
    )  # fmt: skip
    remotes = (
        RemoteUsage("198.51.100.1", Traffic(230_000, 0, 1900, 0), Rates(), (7001,), "US", True),
        RemoteUsage("203.0.113.10", Traffic(4_000_000, 300_000), Rates(), (7100,), "CN", False),
    )
    flows = (
        FlowUsage(
            FlowKey(7001, SPRAY_NS, "udp", "172.17.0.2", 40001, "198.51.100.1", 53, "veth3a1"),
            Traffic(230_000, 0, 1900, 0),
        ),
        FlowUsage(
            FlowKey(7100, WEB_NS, "tcp", "10.88.0.5", 80, "203.0.113.10", 51000, "veth7c2"),
            Traffic(4_000_000, 300_000, 3000, 2600),
        ),
    )
    eth0 = InterfaceUsage(
        "eth0", Traffic(22_100_000, 330_000, 153_400, 3000), Rates(), None, Traffic(40_000, 0)
    )
    usage = (
        ContainerUsage(spray_info, Traffic(18_000_000, 0, 150_000, 0), Rates(), (7001,), 79),
        ContainerUsage(web_info, Traffic(4_000_000, 300_000, 3000, 2600), Rates(), (7100,), 1),
    )
    return BandwidthFacts(
        30.0, flows, procs, remotes, (eth0,), Traffic(40_000, 0), (), "CN", 0, T0, usage, HOST_NS
    )


if __name__ == "__main__":
    bundles = (("compromised", compromised()), ("healthy", healthy()), ("containers", containers()))
    for name, facts in bundles:
        (HERE / f"{name}.json").write_text(
            json.dumps(dump_bundle({"bandwidth": facts}), indent=1) + "\n"
        )

"""Process verdicts (seeds 000–003 step 5, seed 004 trojans) from hand-made facts."""

import pytest

from hostmedic.analysis.verdict import judge
from hostmedic.facts.bandwidth import ProcessInfo, ProcessUsage, Rates, Traffic


def usage(
    name="nginx",
    exe="/usr/sbin/nginx",
    *,
    deleted=False,
    cmdline=None,
    package="nginx",
    checked=True,
    remotes=("198.18.0.2",),
    traffic=Traffic(10_000_000, 100_000, 7000, 2000),
    pid=1234,
):
    info = ProcessInfo(
        pid,
        name,
        exe,
        deleted,
        tuple(cmdline or [exe or name]),
        0,
        "root",
        1,
        1,
        "/system.slice/x.service",
        package,
        checked,
    )
    return ProcessUsage(pid, info, traffic, Rates(), tuple(remotes), len(remotes), 1)


def clue_keys(v):
    return [c.key for c in v.clues]


def test_packaged_server_is_business():
    v = judge(usage(), 5.0)
    assert v.kind == "business" and clue_keys(v) == ["clue.normal_process"]


def test_unpackaged_business_binary_stays_business_with_a_weak_clue():
    v = judge(usage("app", "/opt/app/bin/app", package=None), 5.0)
    assert v.kind == "business" and "clue.no_package" in clue_keys(v)


@pytest.mark.parametrize(
    "exe,clue",
    [
        ("/tmp/.x/miner", "clue.exe_in_temp"),
        ("/dev/shm/k", "clue.exe_in_temp"),
        ("/usr/bin/.sshd", "clue.trojan_path"),
        ("/usr/bin/bsd-port/getty", "clue.trojan_path"),
    ],
)
def test_dropped_payload_paths_are_suspicious(exe, clue):
    v = judge(usage("x", exe, package=None), 5.0)
    assert v.kind == "suspicious" and clue in clue_keys(v)


def test_deleted_executable_is_suspicious():
    v = judge(usage("x", "/var/lib/x", deleted=True), 5.0)
    assert v.kind == "suspicious" and "clue.exe_deleted" in clue_keys(v)


def test_kernel_thread_imitation():
    v = judge(usage("kworker/0:2", "/var/lib/.k/kw", cmdline=["[kworker/0:2]"]), 5.0)
    assert "clue.imitates_kernel_thread" in clue_keys(v)


def test_system_name_from_elsewhere_is_imitation():
    v = judge(usage("sshd", "/home/u/.cache/sshd"), 5.0)
    assert v.kind == "suspicious" and "clue.imitates_system_binary" in clue_keys(v)


def test_genuine_sshd_is_system():
    assert judge(usage("sshd", "/usr/sbin/sshd", package="openssh-server"), 5.0).kind == "system"


def test_genuine_cloud_agent_and_its_imitation():
    real = judge(
        usage("YDService", "/usr/local/qcloud/YunJing/YDEyes/YDService", package=None), 5.0
    )
    assert real.kind == "cloud-agent" and real.vendor == "Tencent Cloud"
    fake = judge(usage("YDService", "/var/tmp/YDService", package=None), 5.0)
    assert fake.kind == "suspicious" and "clue.imitates_cloud_agent" in clue_keys(fake)


def test_flood_shape_and_many_destinations():
    flood = usage("python3", "/usr/bin/python3.11", traffic=Traffic(64 * 50_000, 0, 50_000, 0))
    assert "clue.flood_shape" in clue_keys(judge(flood, 5.0))
    scan = usage(
        "python3", "/usr/bin/python3.11", remotes=tuple(f"198.18.1.{i}" for i in range(60))
    )
    assert "clue.many_destinations" in clue_keys(judge(scan, 5.0))


def test_unknown_owner_and_kernel():
    row = ProcessUsage(None, None, Traffic(1, 1, 1, 1), Rates(), (), 1, 1)
    assert judge(row, 1.0).kind == "unknown"
    kernel = usage("[kernel]", None, pid=0)
    assert judge(kernel, 1.0).kind == "system"


def test_cloud_agents_with_names_longer_than_comm_are_recognised():
    monitor = usage(
        "AliYunDunMonito",
        "/usr/local/aegis/aegis_client/aegis_11_91/AliYunDunMonitor",
        package=None,
    )
    assert judge(monitor, 5.0).kind == "cloud-agent"
    cms = usage("CmsGoAgent-Work", "/usr/local/cloudmonitor/bin/CmsGoAgent-Worker", package=None)
    assert judge(cms, 5.0).vendor == "Alibaba Cloud"
    yunjing = usage("YDLive", "/var/lib/qcloud/YunJing/YDLive/YDLive", package=None)
    assert judge(yunjing, 5.0).vendor == "Tencent Cloud"

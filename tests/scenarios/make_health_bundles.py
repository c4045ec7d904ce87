"""Write the health scenario bundles (run by hand; the JSON files are committed).

`health_sick.json`: a 2-core web server in trouble — a /tmp miner and an endless loop
at full CPU, a fork storm, zombies, memory pressure with swapping and an OOM kill, a
full disk with a fast-growing log, a deleted log still open, a MariaDB at its
connection limit with lock waits, a data disk hiding files, a busy mount and a lossy
gateway. `health_healthy.json`: the same server on a quiet day. The unit tests of the
rules build on the same facts (`sick()` / `healthy()`).
"""

import dataclasses
import json
from pathlib import Path

from hostmedic.facts.bandwidth import ProcessInfo
from hostmedic.facts.bundle import dump_bundle
from hostmedic.facts.health import (
    CpuFacts,
    MemoryFacts,
    MemoryUser,
    OomEvent,
    OomFacts,
    ParentCount,
    ProcessCpu,
    RssGrowth,
    ThreadCpu,
)
from hostmedic.facts.health_storage import (
    BusyFacts,
    BusyMount,
    DatabaseFacts,
    DatabaseServer,
    DeletedFacts,
    DeletedOpenFile,
    DiskFacts,
    FilesystemUsage,
    HiddenDir,
    HiddenFacts,
    Holder,
    LockWait,
    LogFile,
    LogHits,
    PingFacts,
)

T0 = 1795000000.0
GIB = 1024**3
MIB = 1024**2
HERE = Path(__file__).parent / "bundles"


def info(pid, name, exe, user="root", package=None, deleted=False):
    return ProcessInfo(
        pid, name, exe, deleted, (exe,), 0, user, 1, 4026531840, "/", package, package is not None
    )


def _cpu(sick: bool) -> CpuFacts:
    miner = ProcessCpu(
        4242,
        1,
        "kdevtmpfsi",
        "R",
        2,
        98.0,
        0.0,
        30 * MIB,
        info(4242, "kdevtmpfsi", "/tmp/kdevtmpfsi", deleted=True),
        (ThreadCpu(4242, "kdevtmpfsi", 97.5, 4.0),),
    )
    php = ProcessCpu(
        812,
        800,
        "php-fpm8.2",
        "R",
        1,
        95.0,
        0.0,
        90 * MIB,
        info(812, "php-fpm8.2", "/usr/sbin/php-fpm8.2", "www-data", "php8.2-fpm"),
        (ThreadCpu(812, "php-fpm8.2", 95.0, 4.0),),
    )
    calm = ProcessCpu(
        812,
        800,
        "php-fpm8.2",
        "S",
        1,
        3.0,
        0.0,
        90 * MIB,
        info(812, "php-fpm8.2", "/usr/sbin/php-fpm8.2", "www-data", "php8.2-fpm"),
    )
    spawner = ParentCount(977, "backup.sh", "/usr/bin/bash", "root", 640, (5001, 5002, 5003))
    zombie_parent = ParentCount(1500, "worker", "/opt/app/worker", "app", 230, (6001, 6002))
    return CpuFacts(
        window_s=5.0,
        cores=2,
        load_1=9.5 if sick else 0.3,
        load_5=8.1 if sick else 0.2,
        load_15=4.0 if sick else 0.1,
        busy_percent=99.0 if sick else 6.0,
        user_percent=90.0 if sick else 4.0,
        system_percent=9.0 if sick else 2.0,
        iowait_percent=0.5,
        steal_percent=14.0 if sick else 0.2,
        top=(miner, php) if sick else (calm,),
        forks_per_s=1500.0 if sick else 3.0,
        processes_start=180,
        processes_end=820 if sick else 181,
        tasks_end=900 if sick else 260,
        blocked_tasks=0,
        pid_max=4194304,
        threads_max=94000,
        spawners=(spawner,) if sick else (),
        zombie_parents=(zombie_parent,) if sick else (),
        zombies_total=230 if sick else 0,
        read_at=T0,
    )


def _memory(sick: bool) -> MemoryFacts:
    return MemoryFacts(
        total_bytes=2 * GIB,
        available_bytes=60 * MIB if sick else 1400 * MIB,
        swap_total_bytes=1 * GIB,
        swap_free_bytes=100 * MIB if sick else 1 * GIB,
        swap_in_pages_per_s=800.0 if sick else 0.0,
        swap_out_pages_per_s=1200.0 if sick else 0.0,
        psi_some_avg10=45.0 if sick else 0.0,
        psi_full_avg10=22.0 if sick else 0.0,
        top_rss=(MemoryUser(4100, "java", 1200 * MIB),),
        growing=(RssGrowth(4100, "java", "/usr/bin/java", "tomcat", 900 * MIB, 1100 * MIB, 5.0),)
        if sick
        else (),
        read_at=T0,
    )


def _oom(sick: bool) -> OomFacts:
    line = (
        "Out of memory: Killed process 4100 (java) total-vm:5048576kB, anon-rss:3993600kB, "
        "file-rss:0kB, shmem-rss:0kB, UID:110 pgtables:8008kB oom_score_adj:0"
    )
    event = OomEvent(
        4100, "java", 3993600 * 1024, 110, "CONSTRAINT_NONE", "/", "php-fpm8.2", T0 - 1800, line
    )
    old = dataclasses.replace(event, at=T0 - 5 * 86400)
    return OomFacts((old, event) if sick else (old,), "/dev/kmsg", 900, T0)


def _disk(sick: bool) -> DiskFacts:
    root = FilesystemUsage(
        "/",
        "/dev/vda1",
        "ext4",
        40 * GIB,
        39 * GIB if sick else 12 * GIB,
        200 * MIB if sick else 26 * GIB,
        2_600_000,
        900_000,
    )
    data = FilesystemUsage(
        "/data",
        "/dev/vdb",
        "ext4",
        100 * GIB,
        30 * GIB,
        70 * GIB,
        6_553_600,
        12_000 if sick else 6_000_000,
    )
    log = LogFile(
        "/var/log/nginx/access.log",
        "/",
        21 * GIB if sick else 80 * MIB,
        T0 - 2,
        15 * MIB if sick else 4096,
        5.0,
    )
    return DiskFacts((root, data), (log,), ("/var/log",), 1800, False, T0)


def _deleted(sick: bool) -> DeletedFacts:
    big = DeletedOpenFile(812, "nginx", "www-data", 7, "/var/log/nginx/access.log.1", 6 * GIB, "/")
    small = DeletedOpenFile(900, "rsyslogd", "root", 9, "/var/log/syslog.1", 2 * MIB, "/")
    return DeletedFacts((big, small) if sick else (small,), 0, T0)


def _hidden(sick: bool) -> HiddenFacts:
    h = HiddenDir("/data", "/dev/vdb", "ext4", 3, 2, ("backup.tar", "db", "www"), 5 * GIB, False)
    return HiddenFacts((h,) if sick else (), 12, T0)


def _busy(sick: bool) -> BusyFacts:
    holders = (
        Holder("cwd", 2300, "bash", "admin", "/data/www"),
        Holder("fd", 3306, "mariadbd", "mysql", "/data/db/ibdata1"),
    )
    return BusyFacts(
        (BusyMount("/data", "/data", "/dev/vdb", "ext4", holders if sick else ()),), 0, T0
    )


def _databases(sick: bool) -> DatabaseFacts:
    waits = (
        LockWait("41", "web", "shop", 48.0, "37", "UPDATE orders SET state='paid' WHERE id=9"),
    )
    hits = (
        LogHits(
            "/var/log/mysql/error.log",
            1201,
            1305,
            57,
            "2026-11-23 10:00:01 0 [Warning] Too many connections",
        ),
    )
    mysql = DatabaseServer(
        "mysql",
        3306,
        "mariadbd",
        "/run/mysqld/mysqld.sock",
        True,
        None,
        "",
        151 if sick else 12,
        151,
        0,
        0,
        152 if sick else 20,
        waits if sick else (),
        hits if sick else (),
    )
    pg = DatabaseServer(
        "postgres",
        5432,
        "postgres",
        "/var/run/postgresql/.s.PGSQL.5432",
        False,
        "reason.health.db_refused",
        'FATAL:  role "root" does not exist',
        None,
        None,
        0,
        None,
        None,
        (),
        (),
    )
    return DatabaseFacts((mysql, pg) if sick else (mysql,), T0)


def _ping(sick: bool) -> PingFacts:
    return PingFacts(
        sent=25,
        received=17 if sick else 25,
        loss_percent=32.0 if sick else 0.0,
        rtt_min_ms=0.2,
        rtt_avg_ms=0.4,
        rtt_max_ms=1.1,
        summary="25 packets transmitted, 17 received, 32% packet loss, time 4816ms"
        if sick
        else "25 packets transmitted, 25 received, 0% packet loss, time 4816ms",
        gateway="198.18.0.1",
        interface="eth0",
        command="ping -n -q -c 25 -i 0.2 -W 1 198.18.0.1",
        read_at=T0,
    )


def facts(sick: bool) -> dict:
    return {
        "health_cpu": _cpu(sick),
        "health_memory": _memory(sick),
        "health_oom": _oom(sick),
        "health_disk": _disk(sick),
        "health_deleted": _deleted(sick),
        "health_hidden_mounts": _hidden(sick),
        "health_busy_mounts": _busy(sick),
        "health_databases": _databases(sick),
        "health_ping": _ping(sick),
    }


def sick() -> dict:
    return facts(True)


def healthy() -> dict:
    return facts(False)


if __name__ == "__main__":
    for name, built in (("health_sick", sick()), ("health_healthy", healthy())):
        (HERE / f"{name}.json").write_text(
            json.dumps(dump_bundle(built), ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )

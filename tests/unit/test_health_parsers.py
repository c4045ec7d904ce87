"""Parsers of the health collectors, on output recorded from this machine
(tests/fixtures/health/README.md) and on hostile input: garbage, truncated, non-UTF-8."""

import itertools
import json
import re
from pathlib import Path

import pytest

from hostmedic.collectors.health import mysql, postgres
from hostmedic.collectors.health.dblocal import parse_proc_net_unix, scan_log_tail, scan_log_tails
from hostmedic.collectors.health.kernel_log import (
    find_oom_events,
    parse_kernel_text,
    parse_kmsg_record,
)
from hostmedic.collectors.health.mountinfo import containing_mount, parse_mountinfo
from hostmedic.collectors.health.mounts import candidates, parse_underneath
from hostmedic.collectors.health.openfiles import parse_fdinfo_mnt_id, parse_maps_paths
from hostmedic.collectors.health.ping import parse_default_gateway, parse_ping
from hostmedic.collectors.health.procstat import (
    parse_loadavg,
    parse_meminfo,
    parse_pid_stat,
    parse_proc_stat,
    parse_psi,
    parse_vmstat,
)
from hostmedic.errors import ParseError

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "health"


def text(name: str) -> str:
    return (FIX / name).read_text("utf-8")


def test_proc_stat_recorded():
    cpu = parse_proc_stat(text("proc_stat.txt"))
    assert cpu.cores == 2 and cpu.forks > 0 and cpu.total > cpu.idle > 0


def test_pid_stat_recorded_and_hostile_comm():
    s = parse_pid_stat(text("pid_stat_self.txt"))
    assert (s.comm, s.state, s.threads) == ("cat", "R", 1)
    odd = parse_pid_stat("42 (a) b (c)) S 1 42 42 0 -1 0 0 0 0 0 7 3 1 2 20 0 5 0 999 0 12 0")
    assert (odd.comm, odd.ppid, odd.cpu_ticks, odd.children_ticks, odd.threads) == (
        "a) b (c)",
        1,
        10,
        3,
        5,
    )
    assert (odd.starttime, odd.rss_pages) == (999, 12)


@pytest.mark.parametrize("bad", ["", "garbage", "12 (x", "12 (x) S 1", "x (y) S a b c"])
def test_pid_stat_rejects(bad):
    with pytest.raises(ParseError):
        parse_pid_stat(bad)


@pytest.mark.parametrize("bad", ["", "cpu a b c\ncpu0 1\nprocesses 1", "cpu 1 2 3 4\n"])
def test_proc_stat_rejects(bad):
    with pytest.raises(ParseError):
        parse_proc_stat(bad)


def test_loadavg_meminfo_psi_vmstat_recorded():
    assert len(parse_loadavg(text("loadavg.txt"))) == 3
    mem = parse_meminfo(text("meminfo.txt"))
    assert mem["MemTotal"] > mem["MemAvailable"] > 0 and mem["MemTotal"] % 1024 == 0
    assert set(parse_psi(text("psi_memory.txt"))) == {"some", "full"}
    vm = parse_vmstat(text("vmstat.txt"))
    assert set(vm) == {"pswpin", "pswpout"} and all(v >= 0 for v in vm.values())


@pytest.mark.parametrize(
    "parser,bad",
    [
        (parse_loadavg, "x y z"),
        (parse_meminfo, "MemTotal: 5 kB\n"),
        (parse_psi, "some avg10=x"),
        (parse_psi, "\xff\xfe"),
    ],
)
def test_small_parsers_reject_garbage(parser, bad):
    with pytest.raises(ParseError):
        parser(bad)


def test_mountinfo_recorded_and_escapes():
    mounts = parse_mountinfo(text("mountinfo.txt"))
    root = next(m for m in mounts if m.mount_point == "/")
    assert root.fstype == "ext4" and mounts[0] != root  # the kernel lists /proc first here
    shm = [m for m in mounts if m.mount_point == "/dev/shm"]
    assert len(shm) == 2 and candidates(mounts).index("/dev/shm") < candidates(mounts).index("/dev")
    top = containing_mount(mounts, "/dev/shm/x")
    assert top is not None and top.parent_id in {m.mount_id for m in shm}  # the upper one
    m = parse_mountinfo("40 1 7:3 / /mnt/my\\040disk rw,relatime shared:9 - ext4 /dev/loop3 rw\n")[
        0
    ]
    assert (m.mount_point, m.major, m.minor, m.source) == ("/mnt/my disk", 7, 3, "/dev/loop3")
    assert containing_mount([*mounts, m], "/mnt/my disk/a/b") == m
    assert containing_mount(mounts, "/etc/passwd").mount_point == "/"


@pytest.mark.parametrize("bad", ["1 2 3", "x 1 8:1 / / rw - ext4 /dev/x rw", "1 2 8:1 / / rw ext4"])
def test_mountinfo_rejects_truncated(bad):
    with pytest.raises(ParseError):
        parse_mountinfo(bad)


def test_underneath_output_and_candidate_order():
    mounts = parse_mountinfo(
        "1 0 8:1 / / rw - ext4 /dev/vda rw\n"
        "2 1 7:0 / /mnt rw - ext4 /dev/loop0 rw\n"
        "3 2 7:1 / /mnt/sub rw - ext4 /dev/loop1 rw\n"
    )
    assert candidates(mounts) == [] or "/" not in candidates(mounts)
    out = json.dumps(
        [
            {
                "mount_point": "/mnt",
                "entries": 2,
                "files": 1,
                "sample": ["a", "b"],
                "hidden_bytes": 4096,
                "truncated": False,
            },
            {"mount_point": "/mnt/sub", "entries": 1, "files": 0, "sample": ["empty"]},
            {"mount_point": "/nope", "error": "Invalid argument"},
            "garbage",
        ]
    )
    hidden, checked = parse_underneath(out, mounts)
    assert checked == 2 and [h.mount_point for h in hidden] == ["/mnt"]
    assert hidden[0].source == "/dev/loop0" and hidden[0].hidden_bytes == 4096
    for bad in ("", "{", '{"a": 1}'):
        with pytest.raises(ParseError):
            parse_underneath(bad, mounts)


def test_kmsg_records_recorded():
    records = (FIX / "kmsg_records.bin").read_bytes().split(b"\x00")
    lines = [parse_kmsg_record(r) for r in records]
    assert lines[0].since_boot_s == 0.0 and lines[0].text.startswith("Linux version")
    assert all(b.since_boot_s >= a.since_boot_s for a, b in itertools.pairwise(lines))
    with pytest.raises(ParseError):
        parse_kmsg_record(b"no header here")
    assert parse_kmsg_record(b"6,1,5,-;caf\xff\n SUBSYSTEM=x").text == "caf\ufffd"


def test_oom_events_from_kernel_formats():
    lines = parse_kernel_text(text("kernel_oom.txt").splitlines())
    events = find_oom_events(lines, boot_epoch=1_000_000.0)
    assert [(e.victim_pid, e.victim_name) for e in events] == [
        (4100, "java"),
        (5151, "python3"),
        (3306, "mysqld"),
        (777, "(sd-pam)"),
    ]
    java, memcg, old, _ = events
    assert java.constraint == "CONSTRAINT_NONE" and java.invoked_by == "php-fpm8.2"
    assert java.anon_rss_bytes == 3993600 * 1024 and java.uid == 110
    assert java.at == pytest.approx(1_000_000 + 5123.0016)
    assert memcg.constraint == "CONSTRAINT_MEMCG" and memcg.memcg == "/hmH-demo"
    assert old.uid is None and old.invoked_by == "mysqld"  # v4.x lines: no UID field
    assert find_oom_events(parse_kernel_text(["garbage", "[x] y", "\x00\xff"]), None) == []


def test_journal_short_monotonic_lines():
    lines = parse_kernel_text(
        ["[ 5973.767947] host kernel: p1: left promiscuous mode", "-- No entries --"]
    )
    assert [(x.since_boot_s, x.text) for x in lines] == [(5973.767947, "p1: left promiscuous mode")]


def test_fdinfo_and_maps_recorded():
    assert parse_fdinfo_mnt_id(text("fdinfo.txt")) is not None
    assert parse_fdinfo_mnt_id("pos: 0\nmnt_id: x\n") is None
    maps = parse_maps_paths(text("maps.txt"))
    assert any(p.endswith(".so.6") or "libc" in p for _, _, p in maps)
    assert parse_maps_paths("garbage\n00-01 r-xp 0 zz:01 5 /x\n") == set()


def test_proc_net_unix_recorded():
    assert parse_proc_net_unix(text("net_unix.txt")) == {}
    paths = parse_proc_net_unix(text("net_unix_pg.txt"))
    assert list(paths.values()) == ["/tmp/hmH-db/pg/.s.PGSQL.55432"]  # only the listener


def test_default_gateway_recorded():
    assert parse_default_gateway(text("net_route.txt")) == ("192.0.2.1", "eth0")
    with pytest.raises(ParseError):
        parse_default_gateway("Iface\tDestination\n")


def test_ping_summaries():
    ok = parse_ping(text("ping_loopback.txt"))
    assert (ok.sent, ok.received, ok.loss_percent) == (5, 5, 0.0) and ok.rtt_avg_ms > 0
    lossy = parse_ping(
        "--- 198.18.0.1 ping statistics ---\n"
        "25 packets transmitted, 19 received, 24% packet loss, time 4816ms\n"
        "rtt min/avg/max/mdev = 0.041/0.070/0.101/0.017 ms\n"
    )
    assert (lossy.loss_percent, lossy.rtt_max_ms) == (24.0, 0.101)
    dead = parse_ping("3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2ms\n")
    assert dead.loss_percent == 100.0 and dead.rtt_avg_ms is None
    with pytest.raises(ParseError):
        parse_ping("ping: connect: Network is unreachable")


def test_mysql_outputs_recorded():
    status = mysql.parse_status(text("mysql_status.txt"))
    assert status["max_connections"] == "10" and status["max_used_connections"] == "3"
    blockers = {r[0]: r[1] for r in mysql.parse_rows(text("mysql_blockers.txt"))}
    waits = mysql.parse_lock_waits(text("mysql_row.txt"), blockers)
    assert [(w.session, w.user, w.blocked_by, w.query) for w in waits] == [
        ("4", "web", "3", "UPDATE d.t SET v=2 WHERE id=1")
    ]
    assert mysql.parse_rows("a\\tb\tNULL\n") == [["a\tb", ""]]
    with pytest.raises(ParseError):
        mysql.parse_status("one column only\n")
    assert mysql.parse_lock_waits("x\ty\n\n1\tnot-a-number\ta\tb\tc\n", {}) == []


def test_psql_outputs_recorded():
    assert postgres.parse_settings(text("psql_settings.txt")) == (
        6,
        1,
        5,
        "/tmp/hmH-db/pg/data",
        "log",
    )
    waits = postgres.parse_lock_waits(text("psql_lock_waits.txt"))
    assert [(w.session, w.blocked_by, w.waited_s) for w in waits] == [("18351", "18346", 2.0)]
    for bad in ("", "a\tb\n", "x\t1\t2\td\te\n"):
        with pytest.raises(ParseError):
            postgres.parse_settings(bad)


def test_log_tail_line_numbers(tmp_path):
    hits = scan_log_tail(str(FIX / "postgresql.log"), postgres.TOO_MANY, 1 << 20)
    assert hits is not None and (hits.first_line, hits.last_line, hits.count) == (9, 9, 1)
    big = tmp_path / "error.log"
    big.write_bytes(b"noise\n" * 5000 + b"\xff\xfe Too many connections\n" + b"ok\n")
    tail = scan_log_tail(str(big), mysql.TOO_MANY, 100)  # only the tail is read...
    assert tail is not None and tail.first_line == tail.last_line == 5001  # ...numbered in full
    assert scan_log_tail(str(tmp_path / "missing"), mysql.TOO_MANY, 100) is None
    assert scan_log_tail(str(FIX / "meminfo.txt"), re.compile("nope"), 100) is None
    logs = [str(tmp_path / "missing"), str(big), str(FIX / "meminfo.txt")]
    assert scan_log_tails(logs, mysql.TOO_MANY, 100) == (tail,)  # only logs with a match

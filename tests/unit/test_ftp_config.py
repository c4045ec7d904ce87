"""FTP server configuration, failed logins and bans, parsed from recorded real files
(tests/fixtures/ftp/README.md says where each comes from) and from hostile input."""

import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hostmedic.collectors import ftp_config, ftp_logs
from hostmedic.collectors.ftp import find_servers, read_config, read_ftp
from hostmedic.collectors.iptables_save import parse_iptables_save
from hostmedic.collectors.nft_json import parse_nft_json
from hostmedic.errors import FactUnavailable
from hostmedic.facts.netfilter import Ruleset

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FTP = FIXTURES / "ftp"


def test_debian_vsftpd_conf():
    c = ftp_config.parse_vsftpd((FTP / "debian-vsftpd.conf").read_text(), "/etc/vsftpd.conf")
    assert (c.control_port, c.ipv4, c.ipv6) == (21, True, True)  # listen_ipv6=YES: dual stack
    assert c.passive_enabled and c.passive_min_port is None  # no range: any port
    assert c.active_data_port == 20  # connect_from_port_20=YES
    assert c.max_clients is None and c.max_per_ip is None  # vsftpd.conf(5): 0 = unlimited
    assert c.idle_timeout_s == 300
    assert c.log_files == ("/var/log/vsftpd.log",)  # xferlog_enable=YES, vsftpd format
    assert "connect_from_port_20=YES (/etc/vsftpd.conf:60)" in c.source
    assert c.problems == ()


def test_vsftpd_settings_and_command_line_overrides():
    text = "listen=YES\npasv_min_port=30000\npasv_max_port=30100\nmax_clients=2\n"
    text += "max_per_ip=1\npasv_address=203.0.113.5\nlisten_port=2121\nbogus line\n"
    c = ftp_config.parse_vsftpd(text, "/x.conf", ["-omax_clients=5", "-olisten_port=21"])
    assert (c.passive_min_port, c.passive_max_port) == (30000, 30100)
    assert (c.max_clients, c.max_per_ip, c.control_port) == (5, 1, 21)
    assert c.passive_address == "203.0.113.5" and c.active_data_port is None
    assert c.problems == ("/x.conf:8: not a setting: bogus line",)


def test_vsftpd_empty_passive_range_is_a_problem_not_a_range():
    c = ftp_config.parse_vsftpd("pasv_min_port=40000\npasv_max_port=30000\n", "/x")
    assert c.passive_min_port is None and "min > max" in c.problems[0]


def test_debian_pure_ftpd_wrapper_directory_and_conf_file():
    files = {p.name: p.read_text() for p in (FTP / "debian-pure-ftpd-conf").iterdir()}
    c = ftp_config.parse_pure_ftpd(ftp_config.pure_ftpd_dir_pairs(files, "/etc/pure-ftpd/conf"))
    assert (c.control_port, c.max_clients, c.idle_timeout_s) == (21, 50, 900)  # pure-ftpd defaults
    text = (FTP / "debian-pure-ftpd.conf").read_text()
    c = ftp_config.parse_pure_ftpd(ftp_config.pure_ftpd_file_pairs(text, "/etc/pure-ftpd.conf"))
    assert (c.max_clients, c.max_per_ip, c.idle_timeout_s) == (50, 8, 900)
    assert "MaxClientsPerIP=8" in " ".join(c.source)


def test_pure_ftpd_command_line_wins():
    pairs = ftp_config.pure_ftpd_file_pairs("PassivePortRange 30000 35000\nBind ,21\n", "/f")
    argv = ["pure-ftpd", "-p", "40000:40010", "--bind=127.0.0.1,2121", "-c5", "-4"]
    c = ftp_config.parse_pure_ftpd(pairs + ftp_config.pure_ftpd_argv_pairs(argv))
    assert (c.passive_min_port, c.passive_max_port) == (40000, 40010)
    assert (c.listen_address, c.control_port, c.max_clients) == ("127.0.0.1", 2121, 5)
    assert (c.ipv4, c.ipv6) == (True, False)


def _proftpd(root: Path, main: str) -> ftp_config.FtpConfig:
    def read(pattern: str) -> dict[str, str]:
        target = root / pattern.lstrip("/")
        if target.is_dir():
            return {str(p): p.read_text() for p in sorted(target.iterdir()) if p.is_file()}
        return {str(target): target.read_text()} if target.is_file() else {}

    return ftp_config.parse_proftpd(main, "/etc/proftpd/proftpd.conf", read)


def test_debian_proftpd_conf_with_includes(tmp_path):
    etc = tmp_path / "etc" / "proftpd"
    (etc / "conf.d").mkdir(parents=True)
    shutil.copy(FTP / "debian-proftpd-modules.conf", etc / "modules.conf")
    (etc / "conf.d" / "passive.conf").write_text("PassivePorts 49152 49200\n")
    c = _proftpd(tmp_path, (FTP / "debian-proftpd.conf").read_text())
    assert (c.control_port, c.max_clients, c.idle_timeout_s) == (21, 30, 1200)
    assert (c.passive_min_port, c.passive_max_port) == (49152, 49200)
    assert c.log_files == ("/var/log/proftpd/proftpd.log",)
    assert any(s.startswith("PassivePorts=49152 49200 (") for s in c.source)


def test_proftpd_virtual_hosts_do_not_configure_the_main_server(tmp_path):
    text = "Port 2121\n<VirtualHost 203.0.113.1>\n  Port 21\n  MaxClients 1\n</VirtualHost>\n"
    text += "<Global>\n  MaxClients 10\n</Global>\nInclude /etc/proftpd/loop.conf\n"
    (tmp_path / "etc" / "proftpd").mkdir(parents=True)
    (tmp_path / "etc" / "proftpd" / "loop.conf").write_text("Include /etc/proftpd/loop.conf\n")
    c = _proftpd(tmp_path, text)
    assert (c.control_port, c.max_clients) == (2121, 10)
    assert any("Include not followed" in p for p in c.problems)  # a self-include ends


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=400))
def test_config_parsers_never_crash(text):
    ftp_config.parse_vsftpd(text, "/x")
    ftp_config.parse_pure_ftpd(ftp_config.pure_ftpd_file_pairs(text, "/x"))
    ftp_config.parse_pure_ftpd(ftp_config.pure_ftpd_argv_pairs(text.split()))
    ftp_config.parse_proftpd(text, "/x", lambda pattern: {})


def test_failed_logins_of_three_servers():
    text = (FTP / "fail2ban-testcase-logs.txt").read_text()
    rows = {r.ip: r for r in ftp_logs.parse_failed_logins(text, "/var/log/x", first_line=10)}
    assert {"64.106.46.98", "192.0.2.1", "58.254.172.161", "24.79.92.194"} <= set(rows)
    assert rows["67.227.224.66"].users == ("username",)  # ProFTPD, ::ffff: prefix removed
    assert rows["59.167.242.100"].users == ("root",)  # SECURITY VIOLATION: root login
    assert "1.2.3.44" not in rows  # fail2ban's injection case: a forged "host" in a user name
    vs = rows["64.106.46.98"]
    assert (vs.first_line, vs.last_line, vs.users) == (12, 12, ("anonymous",))


def test_read_tail_counts_the_lines_it_skips(tmp_path):
    log = tmp_path / "log"
    log.write_bytes(b"".join(b"line %d\n" % i for i in range(1, 1001)))
    text, first, cut = ftp_logs.read_tail(str(log), limit=100)
    assert cut and text.splitlines()[0] == f"line {first}" and text.endswith("line 1000\n")


def test_fail2ban_database_bans_of_ftp_jails_only():
    bans = ftp_logs.fail2ban_bans(str(FTP / "fail2ban.sqlite3"), now=2_000_000_000)
    assert {(b.ip, b.jail, b.until) for b in bans} == {
        ("203.0.113.7", "vsftpd", None),  # permanent
        ("2001:db8:77::7", "vsftpd", 4_000_000_600.0),
    }  # 203.0.113.8 expired; the sshd ban is not FTP's


def test_bans_in_the_firewall():
    chains, sets, _ = parse_nft_json((FIXTURES / "netfilter" / "fail2ban.json").read_text())
    v4, _ = parse_iptables_save((FIXTURES / "netfilter" / "iptables-save.txt").read_text())
    rs = Ruleset(tuple(chains + v4), tuple(sets), (), (), 0.0)
    found = {(b.ip, b.jail) for b in ftp_logs.bans_in_ruleset(rs)}
    assert found == {
        ("203.0.113.7", "vsftpd"),
        ("203.0.113.8", "vsftpd"),
        ("2001:db8:77::7", "vsftpd"),
    }


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "usr" / "sbin").mkdir(parents=True)
    (tmp_path / "etc").mkdir()
    (tmp_path / "usr" / "sbin" / "vsftpd").write_text("")
    shutil.copy(FTP / "debian-vsftpd.conf", tmp_path / "etc" / "vsftpd.conf")
    return tmp_path


def test_a_mounted_disk_is_read_under_root(tmp_path):
    root = _tree(tmp_path)
    (root / "var" / "log").mkdir(parents=True)
    (root / "var" / "log" / "vsftpd.log").write_text(
        'Fri Jan 19 12:20:33 2007 [pid 27202] [bob] FAIL LOGIN: Client "203.0.113.50"\n' * 3
    )
    (root / "var" / "lib" / "fail2ban").mkdir(parents=True)
    shutil.copy(FTP / "fail2ban.sqlite3", root / "var" / "lib" / "fail2ban")
    facts = read_ftp(str(root), live=False, ruleset=None)
    (server,) = facts.servers
    assert (server.kind, server.config_path, server.running) == (
        "vsftpd",
        "/etc/vsftpd.conf",
        False,
    )
    assert facts.machine_addresses is None and not facts.sockets_read
    assert [(f.ip, f.count, f.log_file) for f in facts.failed_logins] == [
        ("203.0.113.50", 3, "/var/log/vsftpd.log")
    ]
    assert {b.ip for b in facts.bans} == {"203.0.113.7", "2001:db8:77::7"}


def test_no_ftp_server_is_a_skip_reason(tmp_path):
    with pytest.raises(FactUnavailable) as caught:
        read_ftp(str(tmp_path), live=False, ruleset=None)
    assert caught.value.key == "reason.no_ftp_server"


def test_a_config_without_its_binary_is_a_leftover(tmp_path):
    root = _tree(tmp_path)
    (root / "usr" / "sbin" / "vsftpd").unlink()
    assert find_servers(str(root), live=False) == ([], [])


def test_unreadable_config_is_none(tmp_path):
    assert read_config("vsftpd", "/etc/missing.conf", str(tmp_path)) is None


def test_vsftpd_refusals_are_the_421s_it_served():
    text = (
        'Tue Nov 24 00:00:11 2026 [pid 19348] CONNECT: Client "127.0.0.1"\n'
        'Tue Nov 24 00:00:11 2026 [pid 19350] CONNECT: Client "127.0.0.1", '
        '"Connection refused: too many sessions."\n'
        'Tue Nov 24 00:00:12 2026 [pid 19351] CONNECT: Client "203.0.113.4", '
        '"Connection refused: too many sessions for this address."\n'
    )
    refused = ftp_logs.parse_refusals(text, "/var/log/vsftpd.log", first_line=7)
    assert refused is not None
    assert (refused.count, refused.per_address, refused.first_line, refused.last_line) == (
        2,
        1,
        8,
        9,
    )
    assert ftp_logs.parse_refusals("nothing here\n", "/x") is None

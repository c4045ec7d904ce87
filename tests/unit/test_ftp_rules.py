"""The FTP rules on built facts: each planted problem raises its finding with evidence and
severity, and its healthy counterpart raises nothing."""

from dataclasses import replace

import pytest

from hostmedic.collectors.iptables_save import parse_iptables_save
from hostmedic.engine import registered_rules, run_rules
from hostmedic.errors import FactUnavailable
from hostmedic.facts.ftp import (
    Ban,
    FailedLogins,
    FtpConfig,
    FtpFacts,
    FtpServer,
    Listener,
    Refusals,
)
from hostmedic.facts.netfilter import Ruleset
from hostmedic.model import Severity, Status

CONF = "/etc/vsftpd.conf"


def firewall(*rules: str, policy: str = "DROP", output: tuple[str, ...] = ()) -> Ruleset:
    text = f"*filter\n:INPUT {policy} [0:0]\n:OUTPUT ACCEPT [0:0]\n"
    text += "".join(f"-A INPUT {r}\n" for r in rules)
    text += "".join(f"-A OUTPUT {r}\n" for r in output) + "COMMIT\n"
    chains, _ = parse_iptables_save(text)
    return Ruleset(tuple(chains), (), ("iptables-save",), (), 100.0)


OPEN = ("-p tcp --dport 21 -j ACCEPT", "-p tcp --dport 30000:30100 -j ACCEPT")


def server(**config: object) -> FtpServer:
    settings = {"passive_min_port": 30000, "passive_max_port": 30100, "max_clients": 10}
    settings.update(config)
    return FtpServer(
        "vsftpd",
        CONF,
        "/usr/sbin/vsftpd",
        (4321,),
        True,
        FtpConfig(
            source=("pasv_min_port=30000 (/etc/vsftpd.conf:3)",),
            **settings,  # type: ignore[arg-type]
        ),
        (Listener("0.0.0.0", 21, 4321),),
        (("203.0.113.20", 2), ("203.0.113.21", 1)),
    )


def facts(*servers: FtpServer, **extra: object) -> FtpFacts:
    values = {
        "servers": servers or (server(),),
        "machine_addresses": ("127.0.0.1", "45.33.32.10"),
        "bans": (),
        "failed_logins": (),
        "live": True,
        "read_at": 100.0,
        "sockets_read": True,
    }
    values.update(extra)
    return FtpFacts(**values)  # type: ignore[arg-type]


def run(ftp: FtpFacts | FactUnavailable, rules: Ruleset | FactUnavailable = firewall(*OPEN)):
    findings, errors = run_rules(registered_rules(["ftp"]), {"ftp": ftp, "netfilter": rules})
    assert errors == []
    return findings


def failed(findings, rule_id=None):
    return [f for f in findings if f.status is Status.FAILED and rule_id in (None, f.rule_id)]


def test_healthy_server_raises_nothing():
    assert failed(run(facts())) == []


def test_closed_control_port_is_critical_and_names_the_deciding_rule():
    (f,) = failed(run(facts(), firewall(OPEN[1])))
    assert (f.rule_id, f.severity, f.params["port"]) == ("ftp.control_port", Severity.CRITICAL, 21)
    assert f.params["decided_by"] == "ip filter INPUT: policy drop"
    assert "pids=4321 listening=[0.0.0.0:21 pid 4321]" in f.evidence[0].excerpt
    assert f.evidence[1].excerpt.startswith("ip tcp dport 21 (new): drop")


def test_control_port_open_to_some_sources_only_is_info():
    (f,) = failed(run(facts(), firewall("-s 198.51.100.0/24 -p tcp --dport 21 -j ACCEPT", OPEN[1])))
    assert (f.title_key, f.severity) == ("finding.ftp.control_port.restricted.title", Severity.INFO)
    assert "198.51.100.0/24" in f.params["conditions"]


def test_a_server_configured_but_not_running_is_named():
    idle = replace(server(), pids=(), running=False, listeners=(), sessions_by_ip=())
    (f,) = failed(run(facts(idle), firewall()))  # a closed firewall does not matter then
    assert (f.title_key, f.severity) == (
        "finding.ftp.control_port.not_running.title",
        Severity.INFO,
    )


def test_a_loopback_only_server_is_not_checked_from_outside():
    local = replace(server(listen_address="127.0.0.1"), listeners=(Listener("127.0.0.1", 21, 1),))
    assert failed(run(facts(local), firewall())) == []


def test_partly_closed_passive_range_is_critical_with_the_closed_ports():
    (f,) = failed(run(facts(), firewall(OPEN[0], "-p tcp --dport 30000:30049 -j ACCEPT")))
    assert (f.rule_id, f.severity) == ("ftp.passive_ports", Severity.CRITICAL)
    assert (f.params["closed"], f.params["total"], f.params["ports"]) == (51, 101, "30050-30100")
    assert "pasv_min_port=30000 (/etc/vsftpd.conf:3)" in f.evidence[0].excerpt


def test_no_passive_range_behind_a_closed_firewall():
    loose = server(passive_min_port=None, passive_max_port=None)
    (f,) = failed(run(facts(loose), firewall(OPEN[0])))
    assert f.title_key == "finding.ftp.passive_ports.drop.any.title"
    assert (f.params["first_port"], f.params["last_port"]) == (32768, 60999)
    assert f.remedy_key == "remedy.ftp.passive_ports.any"


def test_no_passive_range_behind_an_open_firewall_is_fine():
    loose = server(passive_min_port=None, passive_max_port=None)
    assert failed(run(facts(loose), firewall(policy="ACCEPT"))) == []


def test_the_ftp_conntrack_helper_lets_related_data_connections_in():
    text = "*raw\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp --dport 21 -j CT --helper ftp\n"
    text += (
        "COMMIT\n*filter\n:INPUT DROP [0:0]\n-A INPUT -m conntrack --ctstate RELATED -j ACCEPT\n"
    )
    text += "-A INPUT -p tcp --dport 21 -j ACCEPT\nCOMMIT\n"
    chains, _ = parse_iptables_save(text)
    assert failed(run(facts(), Ruleset(tuple(chains), (), (), (), 1.0))) == []


def test_active_mode_blocked_outbound_is_a_warning():
    (f,) = failed(run(facts(), firewall(*OPEN, output=("-p tcp --sport 20 -j DROP",))))
    assert (f.rule_id, f.severity, f.params["data_port"]) == ("ftp.data_port", Severity.WARNING, 20)


def test_private_passive_address_that_is_not_ours_is_a_warning():
    (f,) = failed(run(facts(server(passive_address="10.9.9.9"))))
    assert (f.title_key, f.severity) == (
        "finding.ftp.passive_address.foreign.title",
        Severity.WARNING,
    )
    assert f.params["addresses"] == "45.33.32.10"


@pytest.mark.parametrize("address", ["45.33.32.10", "45.0.7.9", "ftp.example.com"])
def test_own_public_or_named_passive_address_passes(address):
    assert failed(run(facts(server(passive_address=address)))) == []


def test_only_private_addresses_and_no_passive_address_is_info():
    (f,) = failed(run(facts(machine_addresses=("127.0.0.1", "172.16.0.5", "fe80::1"))))
    assert (f.title_key, f.severity) == ("finding.ftp.passive_address.private.title", Severity.INFO)


def test_a_public_address_on_an_interface_passes():
    assert failed(run(facts(machine_addresses=("172.16.0.5", "45.0.7.9")))) == []


def test_client_limit_reached_is_the_421_finding():
    (f,) = failed(run(facts(server(max_clients=3))))
    assert (f.title_key, f.severity) == ("finding.ftp.max_clients.full.title", Severity.CRITICAL)
    assert (f.params["sessions"], f.params["limit"], f.params["setting"]) == (3, 3, "max_clients")
    assert f.evidence[1].excerpt == "sessions=3 by client: 203.0.113.20×2, 203.0.113.21×1"


def test_near_the_limit_is_a_warning_and_unlimited_passes():
    busy = replace(server(max_clients=5), sessions_by_ip=(("203.0.113.20", 4),))
    (f,) = failed(run(facts(busy)))
    assert (f.title_key, f.severity, f.params["percent"]) == (
        "finding.ftp.max_clients.near.title",
        Severity.WARNING,
        80,
    )
    assert failed(run(facts(server(max_clients=4)))) == []  # 75 %
    assert failed(run(facts(server(max_clients=None)))) == []


def test_per_address_limit():
    (f,) = failed(run(facts(server(max_per_ip=2))))
    assert (f.title_key, f.params["ip"], f.params["count"]) == (
        "finding.ftp.max_clients.per_ip.title",
        "203.0.113.20",
        2,
    )


def test_sessions_not_counted_skip_the_421_check():
    findings = run(facts(sockets_read=False))
    (f,) = [f for f in findings if f.rule_id == "ftp.max_clients"]
    assert (f.status, f.skip_reason) == (Status.SKIPPED, "reason.ftp_sessions_unknown")


def test_banned_client_with_its_failed_logins():
    ban = Ban("203.0.113.7", "vsftpd", "nft set inet f2b-table addr-set-vsftpd")
    fails = FailedLogins("203.0.113.7", 6, "/var/log/vsftpd.log", 10, 40, ("bob",))
    (f,) = failed(run(facts(bans=(ban,), failed_logins=(fails,))))
    assert (f.severity, f.params["ip"], f.params["failures"]) == (Severity.INFO, "203.0.113.7", 6)
    assert f.evidence[1].source == "/var/log/vsftpd.log lines 10-40"


def test_password_guessing_unbanned_is_a_warning_and_few_failures_are_not():
    many = FailedLogins("203.0.113.9", 25, "/var/log/vsftpd.log", 1, 99)
    few = FailedLogins("203.0.113.10", 3, "/var/log/vsftpd.log", 5, 6)
    (f,) = failed(run(facts(failed_logins=(many, few))))
    assert (f.title_key, f.severity) == (
        "finding.ftp.banned_clients.guessing.title",
        Severity.WARNING,
    )


def test_without_firewall_facts_the_firewall_rules_are_skipped_with_the_reason():
    why = FactUnavailable("Operation not permitted", key="reason.netfilter_needs_root")
    findings = run(facts(), why)
    skipped = {f.rule_id: f.skip_reason for f in findings if f.status is Status.SKIPPED}
    assert skipped == {
        "ftp.control_port": "reason.netfilter_needs_root",
        "ftp.passive_ports": "reason.netfilter_needs_root",
        "ftp.data_port": "reason.netfilter_needs_root",
    }


def test_refusals_in_the_log_are_reported_even_without_sockets():
    refused = Refusals("/var/log/vsftpd.log", 7, 2, 100, 180)
    config = replace(server().config, log_files=("/var/log/vsftpd.log",))
    findings = run(facts(replace(server(), config=config), refusals=(refused,), sockets_read=False))
    (f,) = failed(findings)
    assert (f.title_key, f.severity, f.params["refused"]) == (
        "finding.ftp.max_clients.refused.title",
        Severity.WARNING,
        7,
    )
    assert f.evidence[0].source == "/var/log/vsftpd.log lines 100-180"

"""Inside checks: the config/log parsers on literal recorded text, and every network rule
on built facts — each planted problem raises its finding, its healthy twin raises none."""

import pytest

from hostmedic.collectors.network import connect_targets, scope_of
from hostmedic.collectors.network_config import (
    parse_hosts_access,
    parse_ipv4_routes,
    parse_ipv6_routes,
    parse_resolv_conf,
)
from hostmedic.collectors.service_events import parse_failed_units, parse_kmsg_ooms, unit_of
from hostmedic.engine import registered_rules, run_rules
from hostmedic.errors import ParseError
from hostmedic.facts.network import (
    FirewallChain,
    FirewallFacts,
    FirewallMatch,
    FirewallRule,
    Gateway,
    HostsAccessEntry,
    Listener,
    LocalConnect,
    NetworkFacts,
    PartSkipped,
    ResolverConfig,
    ServiceEvent,
    Vantage,
)
from hostmedic.model import Severity, Status

# /proc/net/route and /proc/net/ipv6_route of the lab's target namespace (recorded)
ROUTE = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t017100CB\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t007100CB\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
"""
ROUTE6 = (
    "20010db8011300000000000000000000 40 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n"
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "20010db8011300000000000000000001 00000400 00000001 00000000 00000003     eth0\n"
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n"
)
KMSG = [
    "3,1041,86400000000,-;Out of memory: Killed process 4242 (nginx) total-vm:1048576kB, anon-rss:524288kB",
    "6,1042,86500000000,-;oom_reaper: reaped process 4242 (nginx), now anon-rss:0kB",
    "3,900,1000000,-;Out of memory: Killed process 17 (old) total-vm:1kB",
    "garbage without a semicolon",
]


def test_routes():
    assert parse_ipv4_routes(ROUTE) == (Gateway("ipv4", "203.0.113.1", "eth0", 0),)
    assert parse_ipv6_routes(ROUTE6) == (Gateway("ipv6", "2001:db8:113::1", "eth0", 1024),)
    with pytest.raises(ParseError):
        parse_ipv4_routes("h\neth0 00000000 zz 0003 0 0 0 00000000 0 0 0\n")


def test_hosts_access_with_continuations_comments_and_ipv6():
    text = (
        "# comment\nsshd: 198.51.100.0/24 \\\n  , [2001:db8::]/32 : deny\nALL: ALL\nnot an entry\n"
    )
    entries = parse_hosts_access(text, "/etc/hosts.allow")
    assert [(e.line_number, e.daemons, e.clients) for e in entries] == [
        (2, ("sshd",), ("198.51.100.0/24", "[2001:db8::]/32")),
        (4, ("ALL",), ("ALL",)),
    ]


def test_resolv_conf_and_stub():
    plain = parse_resolv_conf(
        "# x\nnameserver 198.51.100.53\nsearch lab.test\noptions ndots:2\n", "/etc/resolv.conf"
    )
    assert (plain.nameservers, plain.search, plain.stub) == (
        ("198.51.100.53",),
        ("lab.test",),
        False,
    )
    assert parse_resolv_conf("nameserver 127.0.0.53\noptions edns0\n", "x").stub


def test_kernel_oom_records_of_the_last_day():
    boot = 1_000_000.0
    events = parse_kmsg_ooms(KMSG, boot, now=boot + 86_600.0)
    assert [(e.name, e.pid) for e in events] == [("nginx", 4242)]
    assert events[0].at == boot + 86_400.0


def test_failed_units_and_cgroups():
    text = "● nginx.service loaded failed failed A high performance web server\nmysql.service loaded failed failed MySQL\n"
    assert [e.name for e in parse_failed_units(text)] == ["nginx.service", "mysql.service"]
    assert unit_of("0::/system.slice/nginx.service\n") == "nginx.service"
    assert unit_of("0::/user.slice/user-0.slice/session-3.scope\n") == "session-3.scope"
    assert unit_of("0::/\n") is None


def test_scopes_and_local_connect_targets():
    assert [scope_of(a) for a in ("127.0.0.1", "::1", "0.0.0.0", "::", "203.0.113.10")] == [
        "loopback",
        "loopback",
        "wildcard",
        "wildcard",
        "address",
    ]
    listeners = (
        Listener("tcp", "0.0.0.0", 80, "wildcard"),
        Listener("tcp", "::1", 5432, "loopback"),
        Listener("udp", "0.0.0.0", 53, "wildcard"),
    )
    own = ("203.0.113.10", "2001:db8:113::10")
    assert connect_targets(listeners, own) == [
        ("127.0.0.1", 80),
        ("203.0.113.10", 80),
        ("::1", 5432),
        ("2001:db8:113::10", 5432),
    ]


# --- rules -----------------------------------------------------------------------------------

VANTAGE = Vantage("srv", ("203.0.113.10",), "target", 1700000000.0)
NGINX = Listener(
    "tcp", "0.0.0.0", 80, "wildcard", 100, "nginx", "/usr/sbin/nginx", "www-data", "nginx.service"
)
OPEN_FIREWALL = FirewallFacts((), ("nft -j list ruleset",))


def facts(**changes) -> NetworkFacts:
    base = {
        "vantage": VANTAGE,
        "listeners": (NGINX,),
        "loopback": (
            LocalConnect("127.0.0.1", 80, "open", 0.1),
            LocalConnect("203.0.113.10", 80, "open", 0.1),
        ),
        "firewall": OPEN_FIREWALL,
        "gateways": (Gateway("ipv4", "203.0.113.1", "eth0"),),
        "resolvers": ResolverConfig("/etc/resolv.conf", ("203.0.113.53",)),
        "read_at": 1700000001.0,
    }
    return NetworkFacts(**{**base, **changes})


def run(network: NetworkFacts) -> dict[str, list]:
    findings, errors = run_rules(registered_rules({"network"}), {"network": network})
    assert errors == []
    out: dict[str, list] = {}
    for f in findings:
        if f.status is Status.FAILED and f.severity > Severity.INFO:
            out.setdefault(f.rule_id, []).append(f)
    return out


def test_a_healthy_server_raises_nothing():
    assert run(facts()) == {}


def test_service_bound_to_loopback_only():
    web = Listener("tcp", "127.0.0.1", 80, "loopback", 100, "nginx")
    got = run(facts(listeners=(web,), loopback=(LocalConnect("127.0.0.1", 80, "open", 0.1),)))
    (finding,) = got["network.loopback_only"]
    assert finding.severity is Severity.WARNING and finding.params["address"] == "127.0.0.1"
    assert "pid=100 process=nginx" in finding.evidence[0].excerpt
    # a database on loopback only is a choice, not a fault: informational
    db = Listener("tcp", "127.0.0.1", 3306, "loopback", 7, "mysqld")
    assert "network.loopback_only" not in run(facts(listeners=(NGINX, db)))


def test_listening_service_that_does_not_accept_from_inside():
    hung = (LocalConnect("127.0.0.1", 80, "timeout"), LocalConnect("203.0.113.10", 80, "timeout"))
    (finding,) = run(facts(loopback=hung))["network.loopback_test"]
    assert finding.severity is Severity.CRITICAL and finding.params["outcome"] == "timeout"
    assert "connect 127.0.0.1:80 -> timeout" in finding.evidence[1].excerpt
    # a service bound to one address rightly refuses the others
    bound = Listener("tcp", "203.0.113.10", 80, "address", 100, "nginx")
    refused = (
        LocalConnect("127.0.0.1", 80, "refused"),
        LocalConnect("203.0.113.10", 80, "open", 0.1),
    )
    assert run(facts(listeners=(bound,), loopback=refused)) == {}


def _firewall(*rules: FirewallRule, policy: str = "accept") -> FirewallFacts:
    chain = FirewallChain("nftables", "inet", "fw", "input", rules, "input", 0, policy)
    return FirewallFacts((chain,), ("nft -j list ruleset",))


def test_firewall_dropping_ping_and_a_listening_port():
    ping = FirewallRule(
        (
            FirewallMatch("l4proto", "==", ("icmp",)),
            FirewallMatch("icmp_type", "==", ("echo-request",)),
        ),
        "drop",
        "icmp type echo-request drop",
    )
    web = FirewallRule(
        (FirewallMatch("l4proto", "==", ("tcp",)), FirewallMatch("dport", "==", ("80",))),
        "reject",
        "tcp dport 80 reject",
    )
    got = run(facts(firewall=_firewall(ping, web)))
    assert (
        got["network.firewall_icmp"][0].title_key == "finding.network.firewall_icmp.blocked.title"
    )
    (port,) = got["network.firewall_ports"]
    assert (port.severity, port.params["verdict"], port.title_key) == (
        Severity.CRITICAL,
        "reject",
        "finding.network.firewall_ports.rule.title",
    )
    assert "tcp dport 80 reject" in port.evidence[1].excerpt


def test_default_drop_policy_names_the_policy():
    (port,) = run(facts(firewall=_firewall(policy="drop")))["network.firewall_ports"]
    assert port.title_key == "finding.network.firewall_ports.policy.title"
    assert "policy drop" in port.evidence[1].excerpt


def test_firewall_rule_for_some_sources_only_is_a_warning():
    some = FirewallRule(
        (FirewallMatch("saddr", "==", ("198.51.100.0/24",)),),
        "drop",
        "ip saddr 198.51.100.0/24 drop",
    )
    got = run(facts(firewall=_firewall(some)))
    assert got["network.firewall_icmp"][0].title_key == "finding.network.firewall_icmp.some.title"


def test_hosts_deny_entries():
    deny = HostsAccessEntry("/etc/hosts.deny", 3, ("vsftpd",), ("ALL",), "vsftpd: ALL")
    allow = HostsAccessEntry(
        "/etc/hosts.allow", 1, ("sshd",), ("198.51.100.0/24",), "sshd: 198.51.100.0/24"
    )
    (finding,) = run(facts(hosts_access=(deny, allow)))["network.hosts_deny"]
    assert finding.evidence[0].source == "/etc/hosts.deny:3"
    assert run(facts(hosts_access=(allow,))) == {}


def test_no_default_route_and_no_resolver():
    got = run(
        facts(gateways=(), resolvers=ResolverConfig("/etc/resolv.conf", ("127.0.0.53",), stub=True))
    )
    assert got["network.default_gateway"][0].severity is Severity.CRITICAL
    assert got["network.resolvers"][0].title_key == "finding.network.resolvers.stub.title"


def test_oom_kill_and_failed_unit():
    events = (
        ServiceEvent(
            "oom_kill", "nginx", 4242, 1700000000.0, "Out of memory: Killed process 4242 (nginx)"
        ),
        ServiceEvent("unit_failed", "mysql.service"),
    )
    got = run(facts(events=events))["network.service_crashes"]
    assert [f.title_key for f in got] == [
        "finding.network.service_crashes.oom_kill.title",
        "finding.network.service_crashes.unit_failed.title",
    ]


def test_missing_parts_skip_their_rules_with_the_reason():
    skipped = (PartSkipped("firewall", "reason.firewall_needs_root", "Operation not permitted"),)
    findings, _ = run_rules(
        registered_rules({"network"}), {"network": facts(firewall=None, skipped=skipped)}
    )
    reasons = {f.rule_id: f.skip_reason for f in findings if f.status is Status.SKIPPED}
    assert reasons == {
        "network.firewall_icmp": "reason.firewall_needs_root",
        "network.firewall_ports": "reason.firewall_needs_root",
    }


def test_local_connect_dropped_by_the_host_firewall_is_not_blamed_on_the_service():
    bound = Listener("tcp", "203.0.113.10", 9001, "address", 100, "nginx")
    drop = FirewallRule(
        (FirewallMatch("l4proto", "==", ("tcp",)), FirewallMatch("dport", "==", ("9001",))),
        "drop",
        "tcp dport 9001 drop",
    )
    got = run(
        facts(
            listeners=(bound,),
            loopback=(LocalConnect("203.0.113.10", 9001, "timeout"),),
            firewall=_firewall(drop),
        )
    )
    assert "network.loopback_test" not in got and "network.firewall_ports" in got

"""Security rules on built facts: thresholds, grouping, severities, and every finding
variant rendered in all four languages with no placeholder left unfilled."""

import re

import pytest

from hostmedic.engine import registered_rules, run_rules
from hostmedic.facts.bandwidth import ProcessInfo
from hostmedic.facts.security import (
    FailureGroup,
    FileLine,
    Listener,
    Login,
    LoginFacts,
    ProcessFacts,
    RunningProcess,
    ServiceFacts,
    ServiceProbe,
    SshFacts,
    SshSetting,
)
from hostmedic.i18n import LANGUAGES, Translator, catalog
from hostmedic.model import Finding, Severity, Status
from hostmedic.rules.security.admin_console import admin_console
from hostmedic.rules.security.brute_force import brute_force
from hostmedic.rules.security.redis_no_password import redis_no_password
from hostmedic.rules.security.ssh_empty_passwords import ssh_empty_passwords
from hostmedic.rules.security.ssh_root_login import ssh_root_login
from hostmedic.rules.security.suspicious_process import suspicious_process
from hostmedic.rules.security.unpackaged_listener import unpackaged_listener

T = 1795000000.0


def proc(pid, name, exe, *, deleted=False, package=None, checked=True, cmd=None):
    return ProcessInfo(
        pid, name, exe, deleted, tuple(cmd or [exe or ""]), 0, "root", 1, 1, None, package, checked
    )


def group(key, count, others, first=T - 3600):
    return FailureGroup(
        key,
        count,
        tuple(others[:5]),
        len(others),
        first,
        T,
        (f"/var/log/auth.log lines 1-{count}",),
    )


def logins(by_host=(), by_user=(), ok=()):
    return LoginFacts(tuple(ok), tuple(by_host), tuple(by_user), ("/var/log/auth.log",), 0, "CN", T)


def test_brute_force_thresholds_and_variants():
    quiet = logins(
        [group("198.51.100.1", 9, ["root"])],
        [group("root", 9, [f"198.51.100.{i}" for i in range(9)])],
    )
    assert list(brute_force(quiet)) == []
    facts = logins(
        [group(f"203.0.113.{i}", 50 - i, ["root", "admin"]) for i in range(7)],
        [group("root", 300, [f"203.0.113.{i}" for i in range(12)])],
        [Login("ubuntu", "203.0.113.3", T - 60, "password", "/var/log/auth.log:99", None)],
    )
    found = {f.title_key.split(".")[-2]: f for f in brute_force(facts)}
    assert (
        found["broke_in"].params["ip"] == "203.0.113.3"
        and found["broke_in"].severity is Severity.CRITICAL
    )
    assert (
        found["by_address"].params["addresses"] == 6
        and found["by_address"].severity is Severity.WARNING
    )
    assert len(found["by_address"].evidence) == 5  # the five busiest cited
    assert found["by_user"].params == {"user": "root", "addresses": 12, "failures": 300}


def test_a_login_before_the_failures_is_not_a_break_in():
    facts = logins(
        [group("203.0.113.9", 30, ["root"])],
        (),
        [Login("root", "203.0.113.9", T - 7200, "publickey", "a:1", None)],
    )
    assert [f.title_key.split(".")[-2] for f in brute_force(facts)] == ["by_address"]


def _processes(*infos, listeners=(), on_disk=()):
    return ProcessFacts(
        tuple(RunningProcess(i, i.pid in on_disk) for i in infos), tuple(listeners), (), 32768, T
    )


def test_suspicious_processes_group_by_program_and_memory_only_is_a_warning():
    facts = _processes(
        proc(10, "xmr", "/tmp/.x/xmr", deleted=True),
        proc(11, "xmr", "/tmp/.x/xmr", deleted=True),
        proc(20, "runc", "/memfd:runc_cloned:/proc/self/exe", deleted=True),
        proc(30, "sshd", "/usr/sbin/sshd", deleted=True, package="openssh-server"),  # upgraded
        proc(40, "nginx", "/usr/sbin/nginx", package="nginx"),
        proc(2, "kthreadd", None, checked=False, cmd=[]),
        on_disk={30},
    )
    found = list(suspicious_process(facts))
    assert [(f.params["pids"], f.severity) for f in found] == [
        ("10, 11", Severity.CRITICAL),
        ("20", Severity.WARNING),
    ]
    assert found[1].title_key == "finding.security.suspicious_process.memory.title"


def test_listener_severity_by_exposure_and_package():
    facts = _processes(
        proc(5, "app", "/opt/app/bin/app"),
        proc(6, "helper", "/opt/app/bin/helper"),
        proc(7, "nginx", "/usr/sbin/nginx", package="nginx"),
        proc(8, "x", "/dev/shm/x"),
        proc(9, "y", "/opt/y", checked=False),
        listeners=[
            Listener("tcp", "0.0.0.0", 8000, 5),
            Listener("tcp", "127.0.0.1", 9000, 6),
            Listener("tcp", "::", 80, 7),
            Listener("udp", "127.0.0.1", 5353, 8),
            Listener("tcp", "0.0.0.0", 7000, 9),
        ],
    )
    found = {f.params.get("pid"): f.severity for f in unpackaged_listener(facts)}
    assert found == {5: Severity.WARNING, 6: Severity.INFO, 8: Severity.CRITICAL}


def _ssh(*settings):
    return SshFacts(tuple(settings), (22,), (), (), T)


def _set(keyword, value, match=None):
    return SshSetting(
        keyword, value, FileLine("/etc/ssh/sshd_config", 1, f"{keyword} {value}"), match
    )


def test_ssh_root_login_global_and_in_match():
    facts = _ssh(
        _set("permitrootlogin", "no"),
        _set("passwordauthentication", "yes"),
        _set("permitrootlogin", "yes", "Address 198.51.100.0/24"),
        _set("permitemptypasswords", "yes", "User guest"),
    )
    (root,) = ssh_root_login(facts)
    assert root.title_key == "finding.security.ssh_root_login.match.title"
    assert root.remedy_key == "remedy.security.ssh_root_login.default"
    assert root.evidence[0].excerpt.startswith("[Match Address 198.51.100.0/24]")
    (empty,) = ssh_empty_passwords(facts)
    assert empty.params["match"] == "User guest" and empty.severity is Severity.CRITICAL
    keys_only = _ssh(
        _set("permitrootlogin", "yes"),
        _set("passwordauthentication", "no"),
        _set("kbdinteractiveauthentication", "no"),
    )
    assert list(ssh_root_login(keys_only)) == []


def _services(*probes, not_probed=()):
    return ServiceFacts(tuple(probes), tuple(not_probed), T)


def test_service_exposure_decides_severity():
    facts = _services(
        ServiceProbe(
            "redis", "127.0.0.1:6379", ("0.0.0.0",), 1, True, "+PONG", (("protected-mode", "no"),)
        ),
        ServiceProbe(
            "redis", "127.0.0.1:6380", ("0.0.0.0",), 2, True, "+PONG", (("protected-mode", "yes"),)
        ),
        ServiceProbe(
            "redis", "127.0.0.1:6381", ("127.0.0.1",), 3, False, "-NOAUTH Authentication required."
        ),
        ServiceProbe("phpmyadmin", "127.0.0.1:80", ("::",), 4, False, "GET /phpmyadmin/ → 200"),
        ServiceProbe("elasticsearch", "127.0.0.1:9200", ("127.0.0.1",), 5, True, "GET / → 200"),
        ServiceProbe("weblogic", "127.0.0.1:7001", ("127.0.0.1",), 6, False, "GET /console → 200"),
        not_probed=("redis 10.0.0.5:6379", "console 10.0.0.5:8080"),
    )
    redis = [(f.params.get("address"), f.severity) for f in redis_no_password(facts)]
    assert redis == [
        ("127.0.0.1:6379", Severity.CRITICAL),
        ("127.0.0.1:6380", Severity.WARNING),
        (None, Severity.INFO),
    ]
    consoles = [
        (f.params.get("service"), f.title_key.split(".")[-2], f.severity)
        for f in admin_console(facts)
    ]
    assert consoles == [
        ("phpmyadmin", "exposed", Severity.WARNING),
        ("elasticsearch", "open", Severity.WARNING),
        ("console", "not_probed", Severity.INFO),
    ]


# --- every variant, in every language ---------------------------------------------------

VARIANTS = {
    "uid0_account": ["default"],
    "empty_password": ["default"],
    "new_account": ["default"],
    "system_account_shell": ["default"],
    "brute_force": ["broke_in", "by_address", "by_user"],
    "login_abroad": ["default"],
    "suspicious_process": ["default", "memory", "uninspected"],
    "unpackaged_listener": ["default", "owner_unknown"],
    "hidden_process": ["unlisted", "mounted_over"],
    "trojan_files": ["default", "tools_dir"],
    "modified_binary": ["default", "script"],
    "ld_preload": ["default"],
    "startup_item": ["suspicious", "unpackaged"],
    "shell_hook": ["default"],
    "authorized_keys": ["redis", "recent"],
    "ssh_root_login": ["default", "match"],
    "ssh_empty_passwords": ["default", "match"],
    "ssh_exposure": ["default"],
    "redis_no_password": ["default", "attacked", "not_probed"],
    "mysql_weak_root": ["default", "not_probed"],
    "admin_console": ["open", "exposed", "not_probed"],
}


def test_variant_table_matches_the_rules_and_the_catalog():
    assert {r.rule_id for r in registered_rules(["security"])} == {
        f"security.{r}" for r in VARIANTS
    }
    titles = {k for k in catalog("en") if k.startswith("finding.security.")}
    assert titles == {f"finding.security.{r}.{v}.title" for r, vs in VARIANTS.items() for v in vs}


def _all_findings() -> list[Finding]:
    """Every finding of the committed compromised bundle plus the built facts above."""
    from pathlib import Path

    from hostmedic.gather import load_facts

    bundle = (
        Path(__file__).resolve().parents[1] / "scenarios" / "bundles" / "security_compromised.json"
    )
    findings, errors = run_rules(
        registered_rules(["security"]), {"settings": None, **load_facts(str(bundle))}
    )
    assert errors == []
    return [f for f in findings if f.status is Status.FAILED]


@pytest.mark.parametrize("language", LANGUAGES)
def test_findings_render_without_unfilled_placeholders(language):
    t = Translator(language)
    for f in _all_findings():
        for key in (f.title_key, f.remedy_key):
            assert key in catalog(language)
            text = t(key, **f.params)
            assert not re.search(r"\{[a-z_]+\}", text), (key, text)

"""The health rules on built facts: each problem raises its finding with the evidence
and severity the runbook calls for, and the healthy counterpart raises nothing."""

import dataclasses

import pytest

from hostmedic.engine import registered_rules, run_rules
from hostmedic.errors import UsageError
from hostmedic.facts.bandwidth import BandwidthFacts, ProcessUsage, Rates, Traffic
from hostmedic.i18n import catalog
from hostmedic.model import Severity, Status
from hostmedic.rules.health.cpu_top_consumer import classify
from hostmedic.settings import Settings, build_settings
from hostmedic.settings_health import build_health_settings
from tests.scenarios.make_health_bundles import healthy, sick

HEALTH = [r for r in registered_rules(["health"]) if r.rule_id != "health.cpu_bandwidth"]


def run(facts, settings=None):
    findings, errors = run_rules(HEALTH, {**facts, "settings": settings or Settings()})
    assert errors == []
    return findings


def failed(findings, rule_id):
    return [f for f in findings if f.rule_id == rule_id and f.status is Status.FAILED]


def test_healthy_server_raises_nothing():
    findings = run(healthy())
    assert [f for f in findings if f.status is not Status.PASSED] == []
    assert len(findings) == len(HEALTH)


@pytest.mark.parametrize(
    "rule_id,severity,title_part,evidence_part",
    [
        ("health.cpu_load", Severity.CRITICAL, "cpu_load", "load=9.5/8.1/4.0 cores=2"),
        ("health.cpu_steal", Severity.WARNING, "cpu_steal", "steal=14.0%"),
        ("health.runaway_thread", Severity.WARNING, "runaway", "tid 4242 kdevtmpfsi 98%"),
        ("health.fork_storm", Severity.CRITICAL, "fork_storm", "parent pid=977 name=backup.sh"),
        ("health.zombies", Severity.WARNING, "zombies", "parent pid=1500 name=worker"),
        ("health.memory_pressure", Severity.CRITICAL, "memory", "MemAvailable=62914560"),
        ("health.swap", Severity.CRITICAL, "swap", "swap_out_pages_per_s=1200.0"),
        ("health.oom_kill", Severity.CRITICAL, "oom_kill.system", "Killed process 4100 (java)"),
        ("health.memory_growth", Severity.WARNING, "memory_growth", "pid=4100 name=java"),
        ("health.disk_space", Severity.CRITICAL, "disk_space", "/ source=/dev/vda1"),
        ("health.disk_inodes", Severity.CRITICAL, "disk_inodes", "/data source=/dev/vdb"),
        ("health.log_growth", Severity.CRITICAL, "log_growth", "/var/log/nginx/access.log"),
        ("health.deleted_open", Severity.WARNING, "deleted_open", "pid=812 name=nginx"),
        ("health.db_connections", Severity.CRITICAL, "db_connections", "max_connections=151"),
        ("health.db_lock_waits", Severity.WARNING, "db_lock_waits", "blocked_by=37"),
        ("health.db_refusals", Severity.WARNING, "db_refusals", "error.log"),
        ("health.mount_hidden", Severity.WARNING, "mount_hidden", "e.g. backup.tar, db, www"),
        ("health.mount_busy", Severity.WARNING, "mount_busy", "cwd pid=2300 name=bash"),
        ("health.gateway_ping", Severity.CRITICAL, "gateway_ping", "32% packet loss"),
    ],
)
def test_sick_server_findings(rule_id, severity, title_part, evidence_part):
    found = failed(run(sick()), rule_id)
    assert found, rule_id
    top = max(found, key=lambda f: f.severity)
    assert top.severity == severity and title_part in top.title_key
    assert any(evidence_part in e.source + " " + e.excerpt for f in found for e in f.evidence)
    assert top.runbook_ref.startswith("004")
    for f in found:
        assert f.title_key in catalog("en") and (
            f.remedy_key is None or f.remedy_key in catalog("en")
        )


def test_cpu_consumers_are_judged():
    found = failed(run(sick()), "health.cpu_top_consumer")
    kinds = {f.params["pid"]: (f.params["kind"], f.severity) for f in found}
    assert kinds[4242] == ("suspicious", Severity.CRITICAL)
    assert kinds[812] == ("web", Severity.WARNING)
    miner = next(f for f in found if f.params["pid"] == 4242)
    assert {k for k, _ in miner.params["clues"]} >= {"clue.exe_deleted", "clue.exe_in_temp"}
    assert "exe=/tmp/kdevtmpfsi (deleted)" in miner.evidence[0].excerpt


def test_suspicious_process_is_flagged_even_when_the_cpu_is_not_full():
    facts = healthy()
    cpu = facts["health_cpu"]
    facts["health_cpu"] = dataclasses.replace(cpu, top=sick()["health_cpu"].top[:1])
    found = failed(run(facts), "health.cpu_top_consumer")
    assert [(f.params["kind"], f.severity) for f in found] == [("suspicious", Severity.CRITICAL)]


def test_kernel_threads_and_databases_are_classified():
    cpu = sick()["health_cpu"].top[1]
    assert classify(dataclasses.replace(cpu, pid=15, ppid=2, name="ksoftirqd/0"))[0] == "kernel"
    db = dataclasses.replace(cpu, name="mariadbd", info=None)
    assert classify(db)[0] in ("database", "unknown")


def test_old_and_cgroup_oom_kills():
    facts = healthy()  # one kill five days ago: outside the 24 h lookback
    assert failed(run(facts), "health.oom_kill") == []
    oom = sick()["health_oom"]
    memcg = dataclasses.replace(oom.events[-1], constraint="CONSTRAINT_MEMCG", memcg="/hmH-x")
    facts["health_oom"] = dataclasses.replace(oom, events=(memcg,))
    found = failed(run(facts), "health.oom_kill")
    assert [(f.title_key, f.severity) for f in found] == [
        ("finding.health.oom_kill.cgroup.title", Severity.WARNING)
    ]
    assert found[0].params["minutes_ago"] == 30


def test_unreachable_database_says_why_without_failing_the_run():
    found = failed(run(sick()), "health.db_connections")
    pg = next(f for f in found if f.params["kind"] == "postgres")
    assert pg.severity is Severity.INFO and 'role "root"' in pg.evidence[0].excerpt


def test_thresholds_come_from_the_config():
    settings = build_settings(
        {"health": {"load_per_core_warning": 50.0, "disk_used_warning_percent": 99.9}},
        cap=None,
        home_country=None,
    )
    facts = sick()
    facts["health_disk"] = dataclasses.replace(
        facts["health_disk"],
        filesystems=(
            dataclasses.replace(facts["health_disk"].filesystems[0], available_bytes=2 * 1024**3),
        ),
    )
    findings = run(facts, settings)
    assert failed(findings, "health.cpu_load") == []
    assert failed(findings, "health.disk_space") == []


@pytest.mark.parametrize(
    "table",
    [
        {"no_such": 1},
        {"cpu_full_percent": "high"},
        {"mounts": ["/x"]},
        {"top": True},
        {"ping_count": -1},
        {"zombies_per_parent_warning": 2.5},
    ],
)
def test_bad_health_settings_are_usage_errors(table):
    with pytest.raises(UsageError):
        build_health_settings(table)


def test_cpu_and_bandwidth_cross_reference():
    cpu = sick()["health_cpu"]
    miner = cpu.top[0]
    row = ProcessUsage(
        4242, miner.info, Traffic(9_000_000, 1000, 9000, 10), Rates(), ("45.0.7.9",), 1
    )
    bw = BandwidthFacts(5.0, (), (row,), (), (), Traffic(), read_at=cpu.read_at)
    rule = next(r for r in registered_rules(["health"]) if r.rule_id == "health.cpu_bandwidth")
    findings, errors = run_rules(
        [rule], {"health_cpu": cpu, "bandwidth": bw, "settings": Settings()}
    )
    assert errors == [] and [(f.params["pid"], f.severity) for f in findings] == [
        (4242, Severity.CRITICAL)
    ]
    assert len(findings[0].evidence) == 2
    quiet, _ = run_rules(
        [rule], {"health_cpu": healthy()["health_cpu"], "bandwidth": bw, "settings": Settings()}
    )
    assert [f.status for f in quiet] == [Status.PASSED]


def test_every_dynamic_health_key_exists():
    english = catalog("en")
    kinds = ("suspicious", "cloud-agent", "kernel", "web", "database", "system", "business")
    wanted = [f"finding.health.cpu_top_consumer.{k}.title" for k in (*kinds, "spread")]
    wanted += [f"remedy.health.cpu_top_consumer.{k}" for k in (*kinds, "spread")]
    wanted += [f"finding.health.oom_kill.{s}.title" for s in ("system", "cgroup")]
    wanted += [f"remedy.health.oom_kill.{s}" for s in ("system", "cgroup")]
    wanted += [f"remedy.health.db_connections.{k}" for k in ("mysql", "postgres", "unreachable")]
    wanted += [f"remedy.health.cpu_load.{k}" for k in ("io", "cpu")]
    assert [k for k in wanted if k not in english] == []

"""Rule: the kernel's OOM killer has not killed anything recently.

Seed 004 "启动机器，看能否登陆 → 应用程序导致内存溢出或泄露; 如果无法查看故障现场，可以查询
系统日志": the kernel log keeps who was killed, when, how big it was and whether a
memory cgroup's limit (a container, a systemd MemoryMax) or the whole machine ran out.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.health import OomEvent, OomFacts
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.health.common import failed
from hostmedic.settings import Settings

RULE = "health.oom_kill"


def _scope(e: OomEvent) -> str:
    return "cgroup" if (e.constraint or "").endswith("MEMCG") else "system"


@rule(RULE, category="health", runbook_ref="004 §启动机器能否登陆 (内存溢出; 查询系统日志)")
def oom_kill(health_oom: OomFacts, settings: Settings) -> Iterator[Finding]:
    """No OOM kill in the last ``oom_lookback_hours`` (events without a time count)."""
    since = health_oom.read_at - settings.health.oom_lookback_hours * 3600
    recent = [e for e in health_oom.events if e.at is None or e.at >= since]
    groups: dict[tuple[str, str], list[OomEvent]] = {}
    for e in recent:
        groups.setdefault((e.victim_name, _scope(e)), []).append(e)
    for (name, scope), events in groups.items():
        last = events[-1]
        ago = (health_oom.read_at - last.at) / 60 if last.at is not None else None
        yield failed(
            RULE,
            Severity.CRITICAL if scope == "system" else Severity.WARNING,
            f"finding.health.oom_kill.{scope}.title",
            {
                "name": name,
                "pid": last.victim_pid,
                "count": len(events),
                "minutes_ago": round(ago) if ago is not None else "?",
                "anon_rss_bytes": last.anon_rss_bytes or 0,
                "memcg": last.memcg or "/",
                "invoked_by": last.invoked_by or "?",
            },
            tuple(
                Evidence(
                    health_oom.source,
                    f"at={e.at:.0f} {e.line}" if e.at else e.line,
                    health_oom.read_at,
                )
                for e in events[-3:]
            ),
            f"remedy.health.oom_kill.{scope}",
        )

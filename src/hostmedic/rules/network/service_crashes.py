"""Rule: no service was OOM-killed or failed recently.

Seed 004 §解决办法 "查看服务器是否处于运行状态" and the restart checklist ("应用程序导致内存溢出
或泄露"): a web server or database the kernel killed for memory, or that systemd marks
failed, refuses every client until restarted.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.network import NetworkFacts
from hostmedic.model import Evidence, Finding, Severity, Status
from hostmedic.rules.network.common import require


@rule(
    "network.service_crashes",
    category="network",
    runbook_ref="004 §解决办法 (查看服务器是否处于运行状态); 1-A.1-A",
)
def service_crashes(network: NetworkFacts) -> Iterator[Finding]:
    """No OOM kill in the last 24 h and no failed systemd unit."""
    require(network, "events")
    for event in network.events:
        source = "/dev/kmsg" if event.kind == "oom_kill" else "systemctl list-units --state=failed"
        yield Finding(
            rule_id="network.service_crashes",
            severity=Severity.WARNING,
            status=Status.FAILED,
            title_key=f"finding.network.service_crashes.{event.kind}.title",
            params={"name": event.name, "pid": event.pid if event.pid is not None else "?"},
            evidence=(Evidence(source, event.detail, event.at or network.read_at),),
            remedy_key=f"remedy.network.service_crashes.{event.kind}",
        )

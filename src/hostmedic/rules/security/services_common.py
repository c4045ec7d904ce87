"""Shared by the service rules: exposure, evidence, and the listeners left unprobed."""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.facts.security import ServiceFacts, ServiceProbe
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.security.common import failed, is_loopback


def exposed(probe: ServiceProbe) -> bool:
    """Listening on an address other machines can reach (not only loopback)."""
    return any(not is_loopback(ip) for ip in probe.bind)


def probe_evidence(probe: ServiceProbe, read_at: float) -> Evidence:
    """Where it was probed, what it listens on, what it answered (and its config)."""
    config = "; ".join(f"{k}={v}" for k, v in probe.config)
    excerpt = (
        f"probed {probe.address} (pid {probe.pid or '?'}, listening on {', '.join(probe.bind)}): "
        f"{probe.detail}{f'; {config}' if config else ''}"
    )
    return Evidence(f"{probe.service} {probe.address}", excerpt, read_at)


def not_probed(rule_id: str, facts: ServiceFacts, services: tuple[str, ...]) -> Iterator[Finding]:
    """An info finding per candidate listener bound to a non-loopback address only."""
    for item in facts.not_probed:
        service, _, where = item.partition(" ")
        if service in services:
            yield failed(
                rule_id,
                Severity.INFO,
                {"service": service, "where": where},
                [Evidence("sock_diag", item, facts.read_at)],
                "not_probed",
            )

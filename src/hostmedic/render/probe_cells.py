"""One cell of the side-by-side table: what one observation says about one test.

A client's cell shows its probe result; an inside observation (a ``diagnose --save``
file, or a probe made on the target) shows what the target itself says about the same
thing — who listens on the port, whether the local connect opens, and what the host
firewall does with that packet — so "every client fails but the 127.0.0.1 test passes"
is one glance.
"""

from __future__ import annotations

from hostmedic.analysis.firewall import ACCEPT, echo_request, evaluate, tcp_to
from hostmedic.facts.network import NetworkFacts
from hostmedic.facts.probe import Observation
from hostmedic.i18n import Translator
from hostmedic.render.safe_text import sanitize


def cell_ping(obs: Observation, t: Translator) -> str:
    """Loss and average latency; for an inside observation, what the firewall does."""
    p = obs.ping
    if p is not None:
        if p.error and not p.sent:
            return t("ui.probe.ping_error", detail=sanitize(p.error))
        text = t("ui.probe.ping_cell", loss=f"{p.loss_pct:g}", received=p.received, sent=p.sent)
        if p.avg_ms is not None:
            text += f", avg {p.avg_ms:.2f} ms"
        errors = "; ".join(
            f"{e.kind}/{e.reason or e.code} from {e.from_address} ×{e.count}" for e in p.errors
        )
        return text + (f" ({sanitize(errors)})" if errors else "")
    if obs.inside is not None and obs.inside.firewall is not None:
        decision = evaluate(obs.inside.firewall, echo_request())
        return t("ui.probe.inside_firewall", verdict=decision.verdict) + _why(decision.rule)
    return "-"


def _why(rule: str | None) -> str:
    return f" ({sanitize(rule)})" if rule else ""


def _inside_port(inside: NetworkFacts, port: int, t: Translator) -> str:
    parts = []
    listening = [li for li in inside.listeners if li.protocol == "tcp" and li.port == port]
    if listening:
        parts += [
            t(
                "ui.probe.inside_listen",
                address=sanitize(li.address),
                process=sanitize(li.process or "?"),
            )
            for li in listening
        ]
    elif inside.skip_reason("listeners") is None:
        parts.append(t("ui.probe.inside_not_listening"))
    for c in inside.loopback:
        if c.port == port:
            parts.append(
                t(
                    "ui.probe.inside_connect",
                    address=sanitize(c.address),
                    outcome=t(f"ui.probe.state.{c.outcome}"),
                )
            )
    if inside.firewall is not None:
        family = (
            "ipv6"
            if any(":" in li.address for li in listening)
            and not any(":" not in li.address for li in listening)
            else "ipv4"
        )
        decision = evaluate(inside.firewall, tcp_to(port, family))
        parts.append(
            t("ui.probe.inside_firewall", verdict=decision.verdict)
            + (_why(decision.rule) if decision.verdict != ACCEPT else "")
        )
    return "; ".join(parts) or "-"


def cell_port(obs: Observation, port: int, t: Translator) -> str:
    """The port test's state and loss, or the inside view of that port."""
    result = next((p for p in obs.ports if p.port == port), None)
    if result is not None:
        text = t(f"ui.probe.state.{result.state}")
        lost = t("ui.probe.lost_cell", value=f"{result.loss_pct:g}")
        return text + (f" ({lost})" if result.loss_pct else "")
    if obs.inside is not None:
        return _inside_port(obs.inside, port, t)
    return "-"


def cell_http(obs: Observation, url: str, t: Translator) -> str:
    """Status, title and fingerprints of one URL."""
    fetch = next((h for h in obs.http if h.url == url), None)
    if fetch is None:
        return "-"
    if fetch.error:
        return t("ui.probe.http_error", detail=sanitize(fetch.error))
    text = f"{fetch.status}"
    if fetch.redirects:
        text += f" ← {len(fetch.redirects)}×{fetch.redirects[0].status}"
    if fetch.title:
        text += f" «{sanitize(fetch.title[:40])}»"
    if fetch.fingerprints:
        text += f" [{', '.join(fetch.fingerprints)}]"
    return text


def cell_dns(obs: Observation, name: str, rtype: str) -> str:
    """Every resolver's answer for one name and type."""
    answers = [a for a in obs.dns if a.name == name and a.rtype == rtype]
    return (
        "; ".join(
            f"{'system' if a.resolver == 'system' else sanitize(a.resolver)}: "
            + sanitize(", ".join(a.answers) or a.rcode)
            for a in answers
        )
        or "-"
    )


def inside_rows(observations: list[Observation], t: Translator) -> list[tuple[str, list[str]]]:
    """Rows only an inside observation fills: gateway, resolvers, service deaths."""
    if not any(o.inside for o in observations):
        return []

    def gateway(o: Observation) -> str:
        if o.inside is None:
            return "-"
        gws = [f"{g.gateway or '-'} ({g.interface})" for g in o.inside.gateways]
        return sanitize(", ".join(gws)) or t("ui.probe.none")

    def resolvers(o: Observation) -> str:
        r = o.inside.resolvers if o.inside else None
        if r is None:
            return "-"
        return sanitize(", ".join(r.upstream if r.stub else r.nameservers)) or t("ui.probe.none")

    def events(o: Observation) -> str:
        if o.inside is None:
            return "-"
        return sanitize(", ".join(f"{e.kind} {e.name}" for e in o.inside.events)) or t(
            "ui.probe.none"
        )

    return [
        (t("ui.probe.row.gateway"), [gateway(o) for o in observations]),
        (t("ui.probe.row.resolvers"), [resolvers(o) for o in observations]),
        (t("ui.probe.row.events"), [events(o) for o in observations]),
    ]

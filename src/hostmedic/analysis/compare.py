"""Compare observations: one probe's overall result, DNS answers that disagree, and pages
that differ between two ways of fetching them. Pure.

Seed 004 §本地 DNS 劫持 and §运营商网络策略: a hijacking resolver answers differently from a
resolver the operator trusts; an on-path injector adds scripts to a page that the server
itself (fetched from inside, or over another path) serves without them.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from urllib.parse import urlsplit

from hostmedic.facts.network import OPEN
from hostmedic.facts.probe import HttpResult, Observation

REACHABLE, PARTIAL, UNREACHABLE = "reachable", "partial", "unreachable"
EXIT_CODES = {REACHABLE: 0, PARTIAL: 1, UNREACHABLE: 2}


@dataclass(frozen=True, slots=True)
class Problem:
    """One failed or lossy test: ``test`` (ping / port / http / dns / target), its
    ``subject`` (port number, URL, name…), ``state`` (a TCP outcome, ``loss``, ``lost``,
    ``status``, ``error``, ``differs``, ``unresolved``) and a ``value`` (percent, detail)."""

    test: str
    subject: str
    state: str
    value: str = ""


@dataclass(frozen=True, slots=True)
class Reachability:
    """Overall result of one or more observations: ``status`` and what failed."""

    status: str
    problems: tuple[Problem, ...]


@dataclass(frozen=True, slots=True)
class DnsDisagreement:
    """The system resolver and ``resolver`` answer ``name``/``rtype`` differently."""

    vantage: str
    name: str
    rtype: str
    system: tuple[str, ...]
    resolver: str
    answers: tuple[str, ...]
    rcode: str


@dataclass(frozen=True, slots=True)
class PageDifference:
    """Two fetches of the same path whose bodies differ; ``added`` are scripts only the
    first has (injected, if the second is the server's own view), ``removed`` the reverse."""

    path: str
    first: str
    second: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    first_title: str | None
    second_title: str | None


def vantage_label(obs: Observation) -> str:
    """``hostname (role)`` plus the operator's label, for tables and comparisons."""
    label = f"{obs.vantage.hostname} ({obs.vantage.role})"
    return f"{label} {obs.vantage.label}" if obs.vantage.label else label


def http_ok(h: HttpResult) -> bool:
    """A response that is the site's own: a status below 400 and no block fingerprint."""
    return h.status is not None and h.status < 400 and not h.fingerprints


def reachability(obs: Observation) -> Reachability:
    """reachable: every test passed without loss; unreachable: none passed; else partial."""
    ok, problems = 0, []
    if obs.target is not None:
        if obs.target.address is None:
            problem = Problem(
                "target", obs.target.name, "unresolved", obs.target.resolve_error or ""
            )
            return Reachability(UNREACHABLE, (problem,))
        ok += obs.target.name != obs.target.address  # the name resolved: a test passed
    if obs.ping is not None and obs.ping.sent:
        if obs.ping.received:
            ok += 1
        if obs.ping.received < obs.ping.sent:
            problems.append(Problem("ping", obs.ping.address, "loss", f"{obs.ping.loss_pct:g}"))
    for port in obs.ports:
        if port.state == OPEN:
            ok += 1
            if port.loss_pct:
                problems.append(Problem("port", str(port.port), "lost", f"{port.loss_pct:g}"))
        else:
            problems.append(Problem("port", str(port.port), port.state))
    for fetch in obs.http:
        if http_ok(fetch):
            ok += 1
        elif fetch.error:
            problems.append(Problem("http", fetch.url, "error", fetch.error))
        else:
            shown = f"{fetch.status} {' '.join(fetch.fingerprints)}".strip()
            problems.append(Problem("http", fetch.url, "status", shown))
    problems += [
        Problem("dns", f"{d.name} {d.rtype}", "differs", d.resolver)
        for d in dns_disagreements([obs])
    ]
    if not problems:
        return Reachability(REACHABLE, ())
    return Reachability(PARTIAL if ok else UNREACHABLE, tuple(problems))


def dns_disagreements(observations: list[Observation]) -> list[DnsDisagreement]:
    """Per observation: every resolver whose answer set differs from the system's."""
    found = []
    for obs in observations:
        system = {(a.name, a.rtype): a for a in obs.dns if a.resolver == "system"}
        for a in obs.dns:
            base = system.get((a.name, a.rtype))
            if a.resolver == "system" or base is None or a.rcode in ("TIMEOUT", "ERROR"):
                continue
            if set(a.answers) != set(base.answers):
                found.append(
                    DnsDisagreement(
                        vantage_label(obs),
                        a.name,
                        a.rtype,
                        base.answers,
                        a.resolver,
                        a.answers,
                        a.rcode,
                    )
                )
    return found


def _path(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def page_differences(observations: list[Observation]) -> list[PageDifference]:
    """Fetches of the same path (any host, any vantage) whose bodies differ."""
    fetched = [
        (f"{vantage_label(o)} {h.url}", h)
        for o in observations
        for h in o.http
        if h.body_sha256 is not None
    ]
    out = []
    for (name_a, a), (name_b, b) in combinations(fetched, 2):
        if _path(a.url) != _path(b.url) or a.body_sha256 == b.body_sha256:
            continue
        out.append(
            PageDifference(
                path=_path(a.url),
                first=name_a,
                second=name_b,
                added=tuple(s for s in a.scripts if s not in b.scripts),
                removed=tuple(s for s in b.scripts if s not in a.scripts),
                first_title=a.title,
                second_title=b.title,
            )
        )
    return out

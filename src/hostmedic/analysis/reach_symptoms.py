"""The seed's client symptoms, read off one vantage's observations.

Seed 004's factor tables name the symptoms a client sees: ping loss, ping fails, all ports
fail, some ports fail, abnormal redirect, injected ads, the domain fails while the IP works,
some URLs fail. :func:`symptoms_of` reduces a :class:`Vantage` to exactly those, plus the
helpers every predicate and cause score shares (the reason type, path geometry, DNS
comparison). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from hostmedic.analysis.reach_observations import (
    OPEN,
    PAGE_ADS,
    TIMEOUT,
    Dns,
    Http,
    Observations,
    Path,
    Port,
    Vantage,
)
from hostmedic.probes.runner import is_address

BLOCK_PAGES = ("icp_filing", "waf_block", "ddos_block", "green_net_block", "isp_block")


@dataclass(frozen=True, slots=True)
class Reason:
    """One piece of evidence for (weight > 0) or against (weight < 0) an answer or a cause:
    a catalog key and its parameters (rendered in the operator's language)."""

    key: str
    params: tuple[tuple[str, str], ...] = ()
    weight: float = 0.0

    @property
    def param_dict(self) -> dict[str, str]:
        return dict(self.params)


def why(key: str, weight: float = 0.0, **params: object) -> Reason:
    """A :class:`Reason` with key ``verdict.reach.why.<key>``."""
    return Reason(f"verdict.reach.why.{key}", tuple((k, str(v)) for k, v in params.items()), weight)


@dataclass(frozen=True, slots=True)
class Symptoms:
    """The seed's symptoms as seen from one vantage."""

    ping: str  # "ok" | "loss" | "dead" | "unknown"
    failing_ports: tuple[Port, ...]
    open_ports: tuple[Port, ...]
    failing_http: tuple[Http, ...]
    passing_http: tuple[Http, ...]
    injected: tuple[Http, ...]
    block_pages: tuple[Http, ...]
    offsite_redirects: tuple[Http, ...]

    @property
    def ports_known(self) -> bool:
        return bool(self.failing_ports or self.open_ports)

    @property
    def all_ports_fail(self) -> bool:
        return bool(self.failing_ports) and not self.open_ports

    @property
    def some_ports_fail(self) -> bool:
        return bool(self.failing_ports) and bool(self.open_ports)

    @property
    def any(self) -> bool:
        return bool(
            self.ping in ("loss", "dead")
            or self.failing_ports
            or self.failing_http
            or self.injected
            or self.block_pages
            or self.offsite_redirects
        )

    @property
    def everything_fails(self) -> bool:
        """Ping dead and every port tested fails (the shape of a host cut off)."""
        return self.ping == "dead" and (self.all_ports_fail or not self.ports_known)

    def failing_checks(self) -> set[str]:
        """Names of the checks that failed, comparable across vantages. Where ping shows
        partial loss, a port that timed out is loss too, not a verdict on the port (a few
        connects under loss fail at random)."""
        lossy = self.ping == "loss"
        out = {f"port:{p.port}" for p in self.failing_ports if not (lossy and p.state == TIMEOUT)}
        out |= {f"url:{urlsplit(h.url).path or '/'}" for h in self.failing_http}
        if self.ping in ("loss", "dead"):
            out.add("ping")
        return out

    def passing_checks(self) -> set[str]:
        out = {f"port:{p.port}" for p in self.open_ports}
        out |= {f"url:{urlsplit(h.url).path or '/'}" for h in self.passing_http}
        if self.ping == "ok":
            out.add("ping")
        return out


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _offsite(h: Http) -> bool:
    """The redirect chain left the site: a host that is neither the URL's host nor a
    www./bare variant of it."""
    own = host_of(h.url).removeprefix("www.")
    return any(r.lower().removeprefix("www.") != own for r in h.redirect_hosts if r)


def symptoms_of(v: Vantage | None) -> Symptoms:
    """Reduce one vantage's raw results to the seed's symptoms."""
    if v is None:
        return Symptoms("unknown", (), (), (), (), (), (), ())
    if v.ping is None:
        ping = "unknown"
    elif v.ping.ok:
        ping = "ok"
    else:
        ping = "dead" if v.ping.dead else "loss"
    return Symptoms(
        ping=ping,
        failing_ports=tuple(p for p in v.ports if p.state != OPEN),
        open_ports=tuple(p for p in v.ports if p.state == OPEN),
        failing_http=tuple(h for h in v.http if not h.ok),
        passing_http=tuple(h for h in v.http if h.ok),
        injected=tuple(h for h in v.http if PAGE_ADS in h.fingerprints),
        block_pages=tuple(h for h in v.http if set(h.fingerprints) & set(BLOCK_PAGES)),
        offsite_redirects=tuple(h for h in v.http if _offsite(h)),
    )


def peers_of(obs: Observations) -> list[Vantage]:
    """The other vantages that answer "do all sources fail?": of the primary's kind
    (other clients for public access, other servers of the VPC for private access)."""
    role = "peer" if obs.access == "private" else "client"
    return [v for v in obs.others if v.role == role]


def dns_mismatch(v: Vantage | None, target: str) -> Dns | None:
    """A name the vantage's own resolver answers differently from every other resolver
    asked (or, with no other resolver, without the target address the operator named)."""
    if v is None:
        return None
    for d in v.dns:
        system = set(d.answers.get("system", ()))
        if not system:
            continue
        others = [set(a) for r, a in d.answers.items() if r != "system" and a]
        if others and all(not (system & o) for o in others):
            return d
        if not others and is_address(target) and target not in system:
            return d
    return None


def icmp_path(v: Vantage | None) -> Path | None:
    if v is None:
        return None
    return next((p for p in v.paths if p.mode == "icmp"), None)


def tcp_path(v: Vantage | None, port: int) -> Path | None:
    if v is None:
        return None
    return next((p for p in v.paths if p.mode == "tcp" and p.port == port), None)


def routers_before_target(path: Path) -> int:
    """How many routers answered before the target (the path's last hop is the target
    itself when it was reached)."""
    answering = path.answering()
    return len(answering) - (1 if path.reached and answering else 0)


def loss_onset(path: Path) -> int | None:
    """The TTL from which every later hop loses packets (None: no persistent loss).

    Loss at one router that later hops do not show is ICMP rate limiting on that router,
    not loss on the path (the MTR reading rule)."""
    onset = None
    for hop in path.hops:
        lossy = hop.loss_pct > 0.0
        if lossy and onset is None:
            onset = hop.ttl
        elif not lossy:
            onset = None
    return onset

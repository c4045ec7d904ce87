"""What a probe observed from one vantage point (seed 004 §ECS 访问异常, outside-in tests).

``hostmedic probe TARGET`` produces one :class:`Observation`: who looked (vantage), what
was looked at (target), and the results of each test the seed's checklists ask for —
ping (丢包/不通), TCP connects per port ("telnet 端口"), the path (MTR / traceroute), HTTP
fetches (status, redirects, block-page fingerprints, injected scripts) and DNS answers of
the system resolver vs resolvers the operator named (hijack). Observations made elsewhere
(another client, the peer in the VPC, inside the target) travel as *evidence files* and
are merged, which is how the decision tree answers "do all clients fail?" and "does the
127.0.0.1 test inside pass?".

Evidence file = ``{"schema": "hostmedic.evidence/1", "observation": {...}}`` (the
dataclasses below through :func:`hostmedic.facts.bundle.to_jsonable`). A
``hostmedic.facts/1`` bundle written by ``diagnose --save`` is accepted too: its
``network`` fact becomes an observation with only :attr:`Observation.inside` set.

Loss-awareness: a single probe never decides. Pings count sent/received; each TCP port is
tried several times and :attr:`PortResult.state` summarizes the attempts (any handshake
→ ``open``); the path keeps per-hop loss over many cycles.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hostmedic.errors import ParseError
from hostmedic.facts.bundle import BUNDLE_SCHEMA, from_jsonable, load_bundle, to_jsonable
from hostmedic.facts.network import (
    ERROR,
    OPEN,
    REFUSED,
    TCP_OUTCOMES,
    TIMEOUT,
    UNREACHABLE,
    NetworkFacts,
    Vantage,
)

EVIDENCE_SCHEMA = "hostmedic.evidence/1"
ROLES = ("client", "peer", "target")
__all__ = [
    "ERROR",
    "EVIDENCE_SCHEMA",
    "OPEN",
    "REFUSED",
    "ROLES",
    "TCP_OUTCOMES",
    "TIMEOUT",
    "UNREACHABLE",
    "DnsAnswer",
    "Hop",
    "HttpHop",
    "HttpResult",
    "IcmpError",
    "Observation",
    "PathResult",
    "PingResult",
    "PortResult",
    "TargetName",
    "TcpAttempt",
    "Vantage",
    "dump_evidence",
    "load_evidence",
    "summarize_attempts",
]


@dataclass(frozen=True, slots=True)
class TargetName:
    """The target as the operator named it, and what the system resolver made of it.

    ``addresses``: every address the system resolver returned (the IP itself when an IP
    was given); ``address``: the one the probes used (None: nothing to probe).
    """

    name: str
    addresses: tuple[str, ...]
    address: str | None
    resolve_error: str | None = None


@dataclass(frozen=True, slots=True)
class IcmpError:
    """ICMP errors received instead of echo replies, grouped by kind, code and sender.

    ``kind``: ``unreachable`` or ``ttl_exceeded`` (or ``other``); ``reason`` names the
    code (``net``, ``host``, ``port``, ``protocol``, ``admin_prohibited``, ``frag_needed``,
    ``no_route``, ``address``…). ``from_address`` is who sent it: a router on the path, or
    a firewall answering for the target.
    """

    kind: str
    code: int
    reason: str
    from_address: str
    count: int


@dataclass(frozen=True, slots=True)
class PingResult:
    """ICMP echo to ``address`` (seed: "ping 目标服务器 IP").

    ``rtts_ms`` has one entry per echo sent, None where no reply came. Latency fields are
    None when nothing came back. ``method`` is ``dgram`` (unprivileged ICMP socket) or
    ``raw``; ``error`` says why no ping could be sent at all (then ``sent`` is 0).
    """

    address: str
    sent: int
    received: int
    loss_pct: float
    min_ms: float | None = None
    avg_ms: float | None = None
    max_ms: float | None = None
    mdev_ms: float | None = None
    rtts_ms: tuple[float | None, ...] = ()
    errors: tuple[IcmpError, ...] = ()
    method: str = ""
    error: str | None = None


@dataclass(frozen=True, slots=True)
class TcpAttempt:
    """One TCP connect: ``outcome`` in :data:`TCP_OUTCOMES`, ``connect_ms`` (time to the
    handshake, or to the refusal/error), ``detail`` (errno name, e.g. ``EHOSTUNREACH``)."""

    outcome: str
    connect_ms: float | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class PortResult:
    """Several connects to one TCP port (seed: "telnet 端口"), summarized.

    ``state`` = ``open`` if any attempt opened (the service is up; failed attempts are
    loss), else ``refused`` if any was refused, else ``unreachable`` if any got an ICMP
    unreachable, else ``timeout`` if all timed out, else ``error``. ``loss_pct`` is the
    share of attempts that got no answer at all.
    """

    address: str
    port: int
    attempts: tuple[TcpAttempt, ...]
    state: str
    loss_pct: float
    best_ms: float | None = None
    avg_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Hop:
    """One TTL of the path, over every cycle (mtr's report columns).

    ``address`` is who answered most often (None: nobody — mtr's ``???``); ``addresses``
    lists every responder at this TTL (load balancing). ``loss_pct`` = 100·(sent-received)/
    sent. ``reached`` marks the hop where the target itself answered; ``unreachable``
    names the ICMP unreachable reason when this hop answered with one (``admin_prohibited``
    from a filtering router: the path ends here).
    """

    ttl: int
    address: str | None
    sent: int
    received: int
    loss_pct: float
    last_ms: float | None = None
    avg_ms: float | None = None
    best_ms: float | None = None
    worst_ms: float | None = None
    stdev_ms: float | None = None
    addresses: tuple[str, ...] = ()
    reached: bool = False
    unreachable: str | None = None


@dataclass(frozen=True, slots=True)
class PathResult:
    """The MTR-style path to ``destination`` (seed: "MTR 链路测试", tracert/traceroute).

    ``mode``: ``icmp`` (echo requests with rising TTL) or ``tcp`` (SYNs to ``port``).
    ``reached``: the destination answered at some TTL. ``error``: why no path could be
    traced (e.g. raw sockets need root); ``hops`` is then empty.
    """

    mode: str
    destination: str
    cycles: int
    hops: tuple[Hop, ...]
    reached: bool
    port: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class HttpHop:
    """One response in a redirect chain: its URL, status and where it sent us."""

    url: str
    status: int
    location: str | None = None
    host: str = ""


@dataclass(frozen=True, slots=True)
class HttpResult:
    """One HTTP(S) fetch of ``url``, following at most 5 redirects (a browser follows).

    ``status`` and ``headers`` are those of the final response; ``redirects`` are the
    responses before it (host changes show where a block or filing page took us).
    ``headers`` keeps a diagnostic subset (server, content-type, location, via, cache and
    WAF headers). The body itself is not kept: ``body_sha256``/``body_length`` identify
    it, ``title`` and ``scripts`` (external script URLs and ``inline:<sha256/12>`` of
    inline scripts) let two fetches of the same page be compared for injected code.
    ``fingerprints`` are ids from ``data/block_pages.toml`` that matched. ``address`` is
    the address the first request connected to. ``tls_verified`` is None for plain HTTP,
    False when the certificate failed verification (the page was then fetched anyway).
    ``error``: why no response came (timeout, refused, TLS failure…).
    """

    url: str
    status: int | None = None
    final_url: str | None = None
    redirects: tuple[HttpHop, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    body_sha256: str | None = None
    body_length: int = 0
    body_truncated: bool = False
    title: str | None = None
    scripts: tuple[str, ...] = ()
    fingerprints: tuple[str, ...] = ()
    address: str | None = None
    tls_verified: bool | None = None
    elapsed_ms: float | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class DnsAnswer:
    """The answer of one resolver for one name and record type.

    ``resolver`` is ``system`` (getaddrinfo: /etc/hosts, resolv.conf, nsswitch) or the
    address the operator gave with ``--resolver``. ``rcode``: NOERROR, NXDOMAIN,
    SERVFAIL, REFUSED…, or ``TIMEOUT`` / ``ERROR`` when no answer came. ``answers`` are
    the addresses (A/AAAA), sorted.
    """

    name: str
    resolver: str
    rtype: str
    answers: tuple[str, ...]
    rcode: str
    elapsed_ms: float | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    """Everything one vantage point observed. Outside-in fields are empty for an inside
    observation (a diagnose bundle), and ``inside`` is None for a probe from a client."""

    vantage: Vantage
    target: TargetName | None = None
    ping: PingResult | None = None
    ports: tuple[PortResult, ...] = ()
    paths: tuple[PathResult, ...] = ()
    http: tuple[HttpResult, ...] = ()
    dns: tuple[DnsAnswer, ...] = ()
    inside: NetworkFacts | None = None
    finished_at: float = 0.0


def summarize_attempts(address: str, port: int, attempts: tuple[TcpAttempt, ...]) -> PortResult:
    """Fold several connects into one :class:`PortResult` (see its docstring for the
    precedence: one handshake proves the service is up; loss is counted, not decisive)."""
    outcomes = [a.outcome for a in attempts]
    state = next((s for s in (OPEN, REFUSED, UNREACHABLE) if s in outcomes), None)
    if state is None:
        state = TIMEOUT if outcomes and all(o == TIMEOUT for o in outcomes) else ERROR
    if not outcomes:
        state = ERROR
    opened = [a.connect_ms for a in attempts if a.outcome == OPEN and a.connect_ms is not None]
    lost = sum(1 for o in outcomes if o == TIMEOUT)
    return PortResult(
        address=address,
        port=port,
        attempts=attempts,
        state=state,
        loss_pct=round(100.0 * lost / len(outcomes), 1) if outcomes else 0.0,
        best_ms=min(opened) if opened else None,
        avg_ms=round(sum(opened) / len(opened), 3) if opened else None,
    )


def dump_evidence(observation: Observation) -> dict[str, Any]:
    """The evidence-file document for one observation."""
    return {"schema": EVIDENCE_SCHEMA, "observation": to_jsonable(observation)}


def load_evidence(document: Any) -> Observation:
    """An observation from an evidence document, or from a ``diagnose --save`` bundle
    (its ``network`` fact). Raises :class:`ParseError` on anything else."""
    if not isinstance(document, dict):
        raise ParseError("evidence: not a JSON object")
    schema = document.get("schema")
    if schema == EVIDENCE_SCHEMA:
        return from_jsonable(Observation, document.get("observation"), "$.observation")
    if schema == BUNDLE_SCHEMA:
        facts = load_bundle(document, {"network": NetworkFacts})
        inside = facts.get("network")
        if not isinstance(inside, NetworkFacts):
            raise ParseError("facts bundle has no network facts (run diagnose --only network)")
        return Observation(vantage=inside.vantage, inside=inside, finished_at=inside.read_at)
    raise ParseError(f"not a {EVIDENCE_SCHEMA} or {BUNDLE_SCHEMA} document")

"""The named predicates that answer the questions of seed 004's trees.

Each question node of ``data/reachability_trees.toml`` names one predicate (``ask``). A
predicate reads the merged :class:`Observations` and returns an :class:`Answer`: yes, no,
or unknown — and when unknown, the test that would decide it (a ``hostmedic`` command line
for a given vantage, or the seed's console instruction). Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from hostmedic.analysis.reach_observations import Http, Inside, Observations, Vantage
from hostmedic.analysis.reach_symptoms import (
    Reason,
    dns_mismatch,
    icmp_path,
    peers_of,
    routers_before_target,
    symptoms_of,
    tcp_path,
    why,
)

WILDCARDS = ("0.0.0.0", "::", "*", "[::]")


@dataclass(frozen=True, slots=True)
class Answer:
    """A predicate's answer: ``value`` None means the evidence is missing, and ``test``
    (key ``verdict.reach.test.*`` with its command line) says what would decide it."""

    value: bool | None
    reasons: tuple[Reason, ...] = ()
    test: Reason | None = None


def test(key: str, **params: object) -> Reason:
    """A "run this to decide" message: key ``verdict.reach.test.<key>``."""
    return Reason(f"verdict.reach.test.{key}", tuple((k, str(v)) for k, v in params.items()))


def port_flags(obs: Observations) -> str:
    """``--port`` options repeating the primary's port tests (for suggested commands)."""
    ports = [p.port for p in obs.primary.ports] if obs.primary else []
    return "".join(f" --port {p}" for p in ports)


def tcp_path_command(target: str, port: int) -> str:
    """The seed's "tracetcp": the path toward one port, TCP SYNs with rising TTL."""
    return f"hostmedic probe {target} --port {port} --path --path-mode tcp --path-port {port}"


def _probe_command(obs: Observations, extra: str = "") -> str:
    urls = obs.primary.http if obs.primary else ()
    url = "".join(f" --url {h.url}" for h in urls)
    return f"hostmedic probe {obs.target}{port_flags(obs)}{url}{extra}"


def all_sources_fail(obs: Observations) -> Answer:
    """1 / 2.1: does every other vantage fail the same way as this one?"""
    mine = symptoms_of(obs.primary).failing_checks()
    reasons: list[Reason] = []
    compared = False
    for v in peers_of(obs):
        s = symptoms_of(v)
        works = mine & s.passing_checks()
        fails = mine & s.failing_checks()
        if works:
            reasons.append(why("other_vantage_works", 1, vantage=v.name, checks=_names(works)))
            return Answer(False, tuple(reasons))
        if fails:
            compared = True
            reasons.append(why("other_vantage_fails", 1, vantage=v.name, checks=_names(fails)))
    if compared:
        return Answer(True, tuple(reasons))
    return Answer(None, tuple(reasons), test("other_vantage", command=_probe_command(obs)))


def _names(checks: set[str]) -> str:
    return ", ".join(sorted(checks))


def _inside_test(obs: Observations) -> Reason:
    return test("inside", command="hostmedic diagnose --only network --save inside.json")


def failing_ports(obs: Observations) -> list[int]:
    """Ports the primary (or, failing that, every peer) found closed."""
    ports = [p.port for p in symptoms_of(obs.primary).failing_ports]
    if not ports:
        for v in peers_of(obs):
            ports += [p.port for p in symptoms_of(v).failing_ports if p.port not in ports]
    return ports


def listener_reaches_clients(inside: Inside, port: int) -> bool | None:
    """True when a listener on ``port`` is bound to an address clients can reach, False
    when the port has only loopback listeners or none, None when listeners are unknown."""
    if not inside.listeners and not inside.loopback:
        return None
    bound = [lst.address for lst in inside.listeners if lst.port == port]
    return any(a in WILDCARDS or not a.startswith(("127.", "::1")) for a in bound)


def inside_access_ok(obs: Observations) -> Answer:
    """1-A.1 / 2.1-A.1: does the service answer inside the target, on an address clients use?"""
    inside = obs.target_inside
    if inside is None:
        return Answer(None, (), _inside_test(obs))
    reasons: list[Reason] = [why("inside_recorded", 1, host=inside.host)]
    ok = True
    for port in failing_ports(obs):
        loop = inside.loopback.get(port)
        own = inside.own_address.get(port)
        reach = listener_reaches_clients(inside, port)
        bound = ",".join(sorted({lst.address for lst in inside.listeners if lst.port == port}))
        if loop is False and own is not True:
            reasons.append(why("inside_connect_fails", -1, port=port))
            ok = False
        elif reach is False:
            reasons.append(
                why(
                    "listener_loopback_only" if bound else "no_listener", -1, port=port, bound=bound
                )
            )
            ok = False
        elif own is False:
            reasons.append(why("inside_own_address_fails", -1, port=port))
            ok = False
        else:
            reasons.append(why("inside_connect_works", 1, port=port, bound=bound or "?"))
    page = inside_page_ok(obs)
    if page.value is False:
        return Answer(False, tuple(reasons) + page.reasons)
    return Answer(ok, tuple(reasons))


def _reference_pages(obs: Observations) -> list[Http]:
    """The site as fetched on the target itself (the seed's 127.0.0.1 comparison)."""
    return [h for v in obs.from_target for h in v.http]


def inside_page_ok(obs: Observations) -> Answer:
    """1.1-A.1 / 1.1-B.1-A.1: does the page fetched inside the target come back clean
    (no error, no ads, no redirect away, no block page)?"""
    pages = _reference_pages(obs)
    if not pages:
        return Answer(None, (), test("inside_page", command=_inside_page_command(obs)))
    s = symptoms_of(Vantage("inside", "target", obs.target, http=tuple(pages)))
    bad = s.failing_http + s.injected + s.offsite_redirects
    if bad:
        return Answer(False, (why("inside_page_bad", -1, url=bad[0].url, status=bad[0].status),))
    return Answer(True, (why("inside_page_clean", 1, url=pages[0].url),))


def _inside_page_command(obs: Observations) -> str:
    """The site fetched on the target itself: the seed's 127.0.0.1 comparison."""
    urls = obs.primary.http if obs.primary else ()
    path = urlsplit(urls[0].url).path if urls else "/"
    return (
        f"hostmedic probe 127.0.0.1 --vantage target --url http://127.0.0.1{path or '/'}"
        " --save inside-page.json"
    )


def ports_ok(obs: Observations) -> Answer:
    """1-B.1: does the port test from the source pass?"""
    s = symptoms_of(obs.primary)
    if not s.ports_known:
        return Answer(None, (), test("ports", command=_probe_command(obs, " --port PORT")))
    if s.failing_ports:
        p = s.failing_ports[0]
        return Answer(False, (why("port_fails", 1, port=p.port, state=p.state),))
    lossy = [p for p in s.open_ports if p.loss_pct > 0]
    if lossy:  # the seed's "abnormal" covers a port that opens only now and then
        p = lossy[0]
        return Answer(False, (why("port_lossy", 1, port=p.port, loss=round(p.loss_pct)),))
    return Answer(True, (why("ports_open", 1, ports=",".join(str(p.port) for p in s.open_ports)),))


def ping_ok(obs: Observations) -> Answer:
    """3.1: does the client's ping of the target pass (no loss)?"""
    v = obs.primary
    if v is None or v.ping is None:
        return Answer(None, (), test("ping", command=f"hostmedic probe {obs.target}"))
    p = v.ping
    if p.ok:
        return Answer(True, (why("ping_ok", 1, sent=p.sent, received=p.received),))
    return Answer(False, (why("ping_bad", 1, loss=round(p.loss_pct), sent=p.sent),))


def _ping_of(vantages: tuple[Vantage, ...], address: str | None) -> Vantage | None:
    """The probe among ``vantages`` that pinged ``address``."""
    if address is None:
        return None
    return next((v for v in vantages if v.target == address and v.ping is not None), None)


def source_gateway_ok(obs: Observations) -> Answer:
    """1-B.1-B.1: does the source's ping of its own gateway pass?"""
    probe = _ping_of(obs.controls, obs.source_gateway)
    if probe is not None and probe.ping is not None:
        g = probe.ping
        reason = why("gateway_ping", 1, gateway=probe.target, loss=round(g.loss_pct))
        return Answer(g.ok, (reason,))
    path = icmp_path(obs.primary)
    if path is not None and path.hops:
        first = path.hops[0]
        reason = why("first_hop", 1, address=first.address or "*", loss=round(first.loss_pct))
        return Answer(first.address is not None and first.loss_pct == 0.0, (reason,))
    gateway = obs.source_gateway or "GATEWAY"
    command = f"hostmedic probe {gateway} --save source-gateway.json"
    return Answer(None, (), test("source_gateway", command=command))


def target_gateway_ok(obs: Observations) -> Answer:
    """1-B.1-B.1-B.1: does the source's ping of the *target's* gateway pass?"""
    gateway = obs.target_gateway
    probe = _ping_of(obs.controls, gateway)
    if probe is not None and probe.ping is not None:
        reason = why("gateway_ping", 1, gateway=probe.target, loss=round(probe.ping.loss_pct))
        return Answer(probe.ping.ok, (reason,))
    if gateway is None:
        return Answer(None, (), test("target_gateway_unknown"))
    command = f"hostmedic probe {gateway} --save target-gateway.json"
    return Answer(None, (), test("target_gateway", command=command))


NO_URL = Answer(False, (why("no_url", 0),))  # the seed: not a URL problem → go on to 2


def ads_injected(obs: Observations) -> Answer:
    """1.1: was the page the client got injected with ads / foreign scripts?"""
    v = obs.primary
    if v is None or not v.http:
        return NO_URL
    s = symptoms_of(v)
    if s.injected:
        return Answer(True, (why("ads_fingerprint", 1, url=s.injected[0].url),))
    references = [p for p in _comparable(obs) if p.body_sha256]
    known = {script for page in references for script in page.scripts}
    for h in v.http:
        extra = sorted(set(h.scripts) - known)
        if extra and references and h.body_sha256 not in {p.body_sha256 for p in references}:
            return Answer(True, (why("foreign_scripts", 1, url=h.url, scripts=", ".join(extra)),))
    return Answer(False, (why("no_ads", 1),))


def _comparable(obs: Observations) -> list[Http]:
    """Fetches of the site made another way (inside the target, from other vantages)."""
    out = _reference_pages(obs)
    for v in obs.others:
        out += [h for h in v.http if h.status is not None and 200 <= h.status < 300]
    return out


def abnormal_redirect(obs: Observations) -> Answer:
    """1.1-B.1: was the client sent somewhere else (a block / notice page, another site)?"""
    v = obs.primary
    if v is None or not v.http:
        return NO_URL
    s = symptoms_of(v)
    if s.block_pages:
        h = s.block_pages[0]
        return Answer(True, (why("block_page", 1, url=h.url, page=",".join(h.fingerprints)),))
    if s.offsite_redirects:
        h = s.offsite_redirects[0]
        hosts = " → ".join(h.redirect_hosts)
        return Answer(True, (why("offsite_redirect", 1, url=h.url, hosts=hosts),))
    hijack = dns_mismatch(v, obs.target)
    refs = {p.body_sha256 for p in _comparable(obs) if p.body_sha256}
    differs = [h for h in v.http if h.body_sha256 and refs and h.body_sha256 not in refs]
    if hijack is not None and differs:
        return Answer(True, (why("other_site_served", 1, url=differs[0].url, name=hijack.name),))
    return Answer(False, (why("no_redirect", 1),))


def target_blocks_client(obs: Observations) -> Answer:
    """3.1-B.1: does the target (its security group, host firewall or application) block
    this client's access to the port?"""
    reasons: list[Reason] = []
    inside = obs.target_inside
    ports = failing_ports(obs)
    fw = inside.firewall if inside else None
    if fw is not None and fw.read:
        hit = [p for p in ports if p in fw.blocked_ports] or (
            list(fw.blocked_sources) + list(fw.denied_services)
        )
        if hit or fw.drops_all_inbound:
            reasons.append(why("host_firewall_blocks", 1, what=", ".join(map(str, hit)) or "*"))
            return Answer(True, tuple(reasons))
    if obs.console.get("security_group") == "blocks":
        return Answer(True, (why("console_sg_blocks", 1),))
    if obs.console.get("lb_whitelist") == "excludes_client":
        return Answer(True, (why("console_lb_excludes", 1),))
    if _app_denies(obs):
        return Answer(True, (why("app_denies", 1, status=_app_denies(obs)),))
    path_answer = _blocked_where(obs, ports)
    if path_answer is not None:
        return path_answer
    if obs.console.get("security_group") == "allows" and fw is not None and fw.read:
        return Answer(False, (why("console_sg_allows", 1), why("host_firewall_clean", 1)))
    command = tcp_path_command(obs.target, ports[0] if ports else 80)
    return Answer(
        None, tuple(reasons), test("target_blocks", port=",".join(map(str, ports)), command=command)
    )


def _app_denies(obs: Observations) -> int | None:
    """An HTTP 401/403 this client gets while another vantage or the inside fetch gets
    the page: the application itself refuses this source."""
    for h in obs.primary.http if obs.primary else ():
        if h.status in (401, 403) and not h.fingerprints and _comparable(obs):
            return h.status
    return None


def _blocked_where(obs: Observations, ports: list[int]) -> Answer | None:
    """The TCP-mode path to a failing port against the ICMP path: stopping at the last
    router before the target means the block is at the target's edge; stopping earlier,
    in the network between (the seed's tracetcp test)."""
    icmp = icmp_path(obs.primary)
    if icmp is None or not icmp.reached:
        return None
    routers = routers_before_target(icmp)
    for port in ports:
        tcp = tcp_path(obs.primary, port)
        if tcp is None or tcp.reached:
            continue
        got = len(tcp.answering())
        reason = why("tcp_path_stops", 1, port=port, hops=got, routers=routers)
        return Answer(got >= routers, (reason,))
    return None


PREDICATES: dict[str, Callable[[Observations], Answer]] = {
    "all_sources_fail": all_sources_fail,
    "inside_access_ok": inside_access_ok,
    "inside_page_ok": inside_page_ok,
    "ports_ok": ports_ok,
    "ping_ok": ping_ok,
    "source_gateway_ok": source_gateway_ok,
    "target_gateway_ok": target_gateway_ok,
    "ads_injected": ads_injected,
    "abnormal_redirect": abnormal_redirect,
    "target_blocks_client": target_blocks_client,
}

"""From probe evidence (``facts.probe.Observation``) to the walker's :class:`Observations`.

Sorts the merged observations by who made them and what they looked at: this vantage's
probe of the target (the primary), other vantages' probes of the same target, this
vantage's probes of other addresses (controls: its gateway, the target's gateway, another
site), probes made on the target itself (the inside page), and inside facts of the target
and of the source (``diagnose --only network``). Reduces the target's bandwidth facts to
"saturated / flooding". Pure: it reads values, never the machine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from hostmedic.analysis import reach_observations as ro
from hostmedic.analysis.fingerprints import kind_of
from hostmedic.analysis.reach_firewall import firewall_summary
from hostmedic.facts.bandwidth import BandwidthFacts
from hostmedic.facts.network import NetworkFacts
from hostmedic.facts.probe import HttpResult, Observation, PathResult, PingResult, PortResult
from hostmedic.probes.runner import is_address

LOOPBACK_PREFIXES = ("127.", "::1")
_PAGE_KINDS = {  # block-page kinds (data/block_pages.toml) → what the tree asks about
    "icp_filing": ro.PAGE_ICP,
    "waf_block": ro.PAGE_WAF,
    "ddos_block": ro.PAGE_DDOS,
    "green_net": ro.PAGE_GREEN_NET,
    "isp_block": ro.PAGE_ISP,
    "injection": ro.PAGE_ADS,
}
SATURATED_SHARE = 0.90  # the bandwidth runbook's critical share (rules/bandwidth/saturation)


def page_kind(fingerprint_id: str) -> str | None:
    """The tree's page kind of a block-page fingerprint id (``icp.aliyun`` → icp_filing)."""
    return _PAGE_KINDS.get(kind_of(fingerprint_id) or "")


def _ping(p: PingResult | None) -> ro.Ping | None:
    if p is None:
        return None
    error = p.error or ""
    blocked = "EPERM" in error or "not permitted" in error
    return ro.Ping(p.address, p.sent, p.received, p.avg_ms, local_block=blocked)


def _port(p: PortResult) -> ro.Port:
    state = p.state
    if state == ro.ERROR and any((a.detail or "") == "EPERM" for a in p.attempts):
        state = ro.LOCAL_BLOCK
    return ro.Port(p.port, state, p.best_ms, p.loss_pct)


def _http(h: HttpResult) -> ro.Http:
    hosts = [r.host or (urlsplit(r.url).hostname or "") for r in h.redirects]
    if h.redirects and h.final_url:
        hosts.append(urlsplit(h.final_url).hostname or "")
    kinds = tuple(dict.fromkeys(k for k in map(page_kind, h.fingerprints) if k))
    return ro.Http(
        url=h.url,
        status=h.status,
        error=h.error,
        final_url=h.final_url,
        redirect_hosts=tuple(hosts),
        fingerprints=kinds,
        body_sha256=h.body_sha256,
        scripts=h.scripts,
        by_address=is_address(urlsplit(h.url).hostname or ""),
    )


def _path(p: PathResult) -> ro.Path:
    hops = tuple(ro.Hop(h.ttl, h.address, h.loss_pct) for h in p.hops)
    return ro.Path(p.destination, p.mode, hops, p.reached, p.port)


def _target_of(o: Observation) -> str:
    if o.target is None:
        return ""
    return o.target.address or o.target.name


def _vantage(o: Observation) -> ro.Vantage:
    dns: dict[str, dict[str, tuple[str, ...]]] = {}
    for d in o.dns:  # A and AAAA answers of one resolver, together
        answers = dns.setdefault(d.name, {})
        answers[d.resolver] = tuple(sorted({*answers.get(d.resolver, ()), *d.answers}))
    addresses = o.target.addresses if o.target else ()
    return ro.Vantage(
        name=o.vantage.label or o.vantage.hostname,
        role=o.vantage.role,
        target=_target_of(o),
        addresses=tuple(addresses),
        ping=_ping(o.ping),
        ports=tuple(_port(p) for p in o.ports),
        http=tuple(_http(h) for h in o.http),
        paths=tuple(_path(p) for p in o.paths if not p.error),
        dns=tuple(ro.Dns(name, answers) for name, answers in dns.items()),
        read_at=o.finished_at,
    )


def _inside(
    facts: NetworkFacts,
    ports: Sequence[int],
    sources: Sequence[str],
    destinations: Sequence[str] = (),
) -> ro.Inside:
    loopback: dict[int, bool] = {}
    own: dict[int, bool] = {}
    for c in facts.loopback:
        table = loopback if c.address.startswith(LOOPBACK_PREFIXES) else own
        table[c.port] = table.get(c.port, False) or c.outcome == ro.OPEN
    gateway = next((g.gateway for g in facts.gateways if g.gateway), None)
    return ro.Inside(
        host=facts.vantage.hostname,
        addresses=facts.vantage.addresses,
        listeners=tuple(
            ro.Listener(lst.port, lst.address, lst.process)
            for lst in facts.listeners
            if lst.protocol == "tcp"
        ),
        loopback=loopback,
        own_address=own,
        firewall=firewall_summary(facts, ports, sources, destinations),
        gateway=gateway,
        read_at=facts.read_at,
    )


def _same_host(a: Observation, b: Observation) -> bool:
    """Made on the same machine: the vantages share an address (hostnames are not unique:
    containers and namespaces share their host's name); the name only when an address list
    is missing."""
    if a.vantage.addresses and b.vantage.addresses:
        return bool(set(a.vantage.addresses) & set(b.vantage.addresses))
    return bool(a.vantage.hostname) and a.vantage.hostname == b.vantage.hostname


def _load(facts: BandwidthFacts | None, cap: float | None) -> ro.Load | None:
    """The bandwidth runbook's answer: is a link saturated, is the host flooding out?"""
    if facts is None:
        return None
    from hostmedic.analysis.verdict import SUSPICIOUS, judge

    best: tuple[float, str, bool] | None = None
    for row in facts.interfaces:
        capacity = cap or (row.link_speed_mbit * 1e6 if row.link_speed_mbit else None)
        if not capacity:
            continue
        tx, rx = row.rates.tx_peak_bytes_per_s, row.rates.rx_peak_bytes_per_s
        share = 8 * max(tx, rx) / capacity
        if best is None or share > best[0]:
            best = (share, row.name, rx > tx)
    flooders = [
        p
        for p in facts.processes[:5]
        if (v := judge(p, facts.duration_s)).kind == SUSPICIOUS
        and any(c.key in ("clue.flood_shape", "clue.many_destinations") for c in v.clues)
    ]
    excerpt = ""
    if flooders:
        p = flooders[0]
        excerpt = f"pid={p.pid} name={p.info.name if p.info else '?'} tx_bytes={p.traffic.tx_bytes}"
        excerpt += f" remotes={len(p.remote_ips)}"
    if best is None:
        return ro.Load(None, outbound_flood=bool(flooders), excerpt=excerpt)
    share, name, inbound = best
    saturated = share >= SATURATED_SHARE
    if not excerpt:
        excerpt = f"{name} peak={100 * share:.0f}% of {cap or 'link speed'}"
    return ro.Load(
        saturated,
        peak_share_pct=100 * share,
        interface=name,
        outbound_flood=bool(flooders),
        inbound_flood=saturated and inbound,
        excerpt=excerpt,
    )


def observations_from(
    evidence: Sequence[Observation],
    *,
    access: str | None = None,
    console: Mapping[str, str] | None = None,
    bandwidth: BandwidthFacts | None = None,
    cap: float | None = None,
) -> ro.Observations:
    """Merge observations into the walker's view; ``evidence[0]`` (or the first outside-in
    observation) is the vantage the verdict is about."""
    outside = [o for o in evidence if o.target is not None and o.vantage.role != "target"]
    primary = outside[0] if outside else None
    target = _target_of(primary) if primary else ""
    # The target's other addresses (its VPC address next to the public one), when its
    # inside facts are merged: a peer probing the private address probes the same host.
    aliases = {target}
    for o in evidence:
        if o.inside is not None and o.vantage.role == "target" and target in o.vantage.addresses:
            aliases |= set(o.vantage.addresses)
    same_target = [o for o in outside if _target_of(o) in aliases or _names_match(o, primary)]
    # A vantage of the other kind merged into this verdict probes the same server by its
    # other address: a peer in the VPC uses the private one, a client the public one.
    if primary is not None:
        same_target += [
            o
            for o in outside
            if o not in same_target
            and o.vantage.role != primary.vantage.role
            and not _same_host(o, primary)
        ]
    mine_too = [o for o in outside if primary is not None and _same_host(o, primary)]
    mine = _vantage(primary) if primary else None
    failing = [p.port for p in (mine.ports if mine else ()) if p.state != ro.OPEN]
    target_inside = source_inside = None
    for o in evidence:
        if o.inside is None:
            continue
        if primary is not None and _same_host(o, primary):
            source_inside = _inside(o.inside, failing, [], [target])
        elif o.vantage.role == "target" or target in o.vantage.addresses:
            sources = primary.vantage.addresses if primary else ()
            target_inside = _inside(o.inside, failing, sources)
    if access is None:
        access = "private" if primary is not None and primary.vantage.role == "peer" else "public"
    return ro.Observations(
        target=target,
        access=access,
        primary=mine,
        others=tuple(_vantage(o) for o in same_target if o not in mine_too),
        controls=tuple(_vantage(o) for o in mine_too if o not in same_target),
        target_inside=target_inside,
        source_inside=source_inside,
        load=_load(bandwidth, cap),
        console=dict(console or {}),
        target_gateway=target_inside.gateway if target_inside else None,
        source_gateway=source_inside.gateway if source_inside else _first_hop(mine),
        from_target=tuple(
            _vantage(o) for o in evidence if o.vantage.role == "target" and o.target is not None
        ),
    )


def _first_hop(v: ro.Vantage | None) -> str | None:
    """The first router of this vantage's path: its gateway, when nothing better is known."""
    path = next((p for p in v.paths if p.mode == "icmp"), None) if v else None
    return path.hops[0].address if path and path.hops else None


def _names_match(o: Observation, primary: Observation | None) -> bool:
    """The same target named the same way (a name resolving differently elsewhere)."""
    if primary is None or o.target is None or primary.target is None:
        return False
    return o.target.name == primary.target.name

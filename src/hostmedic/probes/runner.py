"""Run every probe asked for against one target, concurrently, into one Observation.

The target name is resolved first (the system resolver, bounded by the timeout), then
ping, the port tests, the path traces, the HTTP fetches and the DNS comparisons run at
the same time on a thread pool: each probe bounds itself by the timeouts given, so the
whole run takes about as long as its slowest probe. Only the target's address, the URLs'
hosts and the resolvers the operator named are ever sent a packet.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from hostmedic.facts.network import Vantage
from hostmedic.facts.probe import (
    DnsAnswer,
    HttpResult,
    Observation,
    PathResult,
    PingResult,
    PortResult,
    TargetName,
)
from hostmedic.probes import dns, http, path, ping, tcp

Progress = Callable[[float], None]


@dataclass(frozen=True, slots=True)
class ProbePlan:
    """What to probe and how hard. ``family``: 4 or 6 to force one, None for any
    (IPv4 preferred). ``path_modes``: () or any of ``icmp``/``tcp``."""

    target: str
    ports: tuple[int, ...] = ()
    urls: tuple[str, ...] = ()
    resolvers: tuple[str, ...] = ()
    path_modes: tuple[str, ...] = ()
    path_port: int | None = None
    ping: bool = True
    ping_count: int = 5
    attempts: int = 3
    timeout_s: float = 3.0
    path_cycles: int = 10
    path_interval_s: float = 1.0
    max_ttl: int = 30
    family: int | None = None


def is_address(text: str) -> bool:
    """Whether ``text`` is an IP literal (no resolution needed)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def resolve_target(plan: ProbePlan) -> tuple[TargetName, tuple[DnsAnswer, ...]]:
    """The target's addresses via the system resolver, and the answers that gave them."""
    if is_address(plan.target):
        address = str(ipaddress.ip_address(plan.target))
        return TargetName(plan.target, (address,), address), ()
    types = {4: ("A",), 6: ("AAAA",)}.get(plan.family or 0, ("A", "AAAA"))
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        answers = tuple(
            pool.map(lambda t: dns.system_lookup(plan.target, t, plan.timeout_s), types)
        )
    addresses = tuple(a for answer in answers for a in answer.answers)
    if not addresses:
        error = next((a.error or a.rcode for a in answers if a.rcode != "NOERROR"), "no address")
        return TargetName(plan.target, (), None, resolve_error=error), answers
    return TargetName(plan.target, addresses, addresses[0]), answers


def _names_to_compare(plan: ProbePlan) -> list[str]:
    names = [] if is_address(plan.target) else [plan.target]
    for url in plan.urls:
        host = urlsplit(url).hostname
        if host and not is_address(host) and host not in names:
            names.append(host)
    return names


def _tasks(plan: ProbePlan, target: TargetName) -> list[tuple[str, Callable[[], Any]]]:
    """(kind, job) pairs; each job bounds its own time by the plan's timeouts."""
    jobs: list[tuple[str, Callable[[], Any]]] = []
    address = target.address
    t = plan.timeout_s
    if address is not None:
        if plan.ping:
            jobs.append(("ping", lambda: ping.ping(address, plan.ping_count, 0.2, t)))
        if plan.ports:
            jobs.append(("ports", lambda: tcp.probe_ports(address, plan.ports, plan.attempts, t)))
        port = plan.path_port or (plan.ports[0] if plan.ports else 80)
        for mode in plan.path_modes:
            trace = partial(path.trace, address, mode, port, plan.path_cycles, plan.max_ttl)
            jobs.append(("path", partial(trace, plan.path_interval_s, min(t, 2.0))))
    for url in plan.urls:
        jobs.append(("http", partial(http.fetch, url, t)))
    names = _names_to_compare(plan)
    system_done = {target.name} if not is_address(plan.target) else set()
    types = {4: ("A",), 6: ("AAAA",)}.get(plan.family or 0, ("A", "AAAA"))
    for name in names:
        for rtype in types:
            if name not in system_done:
                jobs.append(("dns", partial(dns.system_lookup, name, rtype, t)))
            for resolver in plan.resolvers:
                jobs.append(("dns", partial(dns.query, name, rtype, resolver, t)))
    return jobs


def run_probes(plan: ProbePlan, vantage: Vantage, progress: Progress | None = None) -> Observation:
    """Probe ``plan.target`` from this machine; the observation of ``vantage``."""
    target, resolved = resolve_target(plan)
    jobs = _tasks(plan, target)
    results: dict[str, list[Any]] = {"ping": [], "ports": [], "path": [], "http": [], "dns": []}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(len(jobs), 1)) as pool:
        futures = {pool.submit(job): kind for kind, job in jobs}
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            results[futures[future]].append(future.result())
            if progress is not None:
                progress(done / len(jobs))
    pings: list[PingResult] = results["ping"]
    ports: list[PortResult] = [p for group in results["ports"] for p in group]
    paths: list[PathResult] = sorted(results["path"], key=lambda p: p.mode)
    fetched: list[HttpResult] = sorted(results["http"], key=lambda h: plan.urls.index(h.url))
    answers: list[DnsAnswer] = [*resolved, *results["dns"]]
    answers.sort(key=lambda a: (a.name, a.rtype, a.resolver != "system", a.resolver))
    return Observation(
        vantage=vantage,
        target=target,
        ping=pings[0] if pings else None,
        ports=tuple(ports),
        paths=tuple(paths),
        http=tuple(fetched),
        dns=tuple(answers),
        finished_at=time.time(),
    )

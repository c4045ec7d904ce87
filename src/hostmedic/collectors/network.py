"""Inside checks of the reachability runbook (category ``network``), on the target itself.

Seed 004, every tree: "通过管理终端进入服务器，在服务器内部使用 127.0.0.1 做对比访问测试".
This collector lists what listens where (and who owns it), connects to each listening TCP
port from this machine — on loopback and on the machine's own addresses, nothing else —
and reads the firewall, TCP wrappers, default routes, resolvers and recent service deaths.
Under ``--root`` only the files are read (hosts.allow/deny, resolv.conf); the rest needs
the running machine. Nothing here sends a packet off this machine: the gateway is named,
never pinged.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hostmedic.collectors import firewall as firewall_collector
from hostmedic.collectors import network_config
from hostmedic.collectors.procfs import SocketOwners, read_process_info
from hostmedic.collectors.service_events import read_service_events, unit_of
from hostmedic.collectors.sockdiag import SockDiag
from hostmedic.collectors.vantage import read_vantage
from hostmedic.errors import FactUnavailable, ParseError
from hostmedic.facts.network import (
    FirewallFacts,
    Listener,
    LocalConnect,
    NetworkFacts,
    PartSkipped,
)
from hostmedic.probes.connect import ConnectProbe, run_connects

if TYPE_CHECKING:
    from hostmedic.gather import Collection, GatherContext

TCP_LISTEN, UDP_UNCONNECTED = 10, 7
MAX_PORTS = 64  # local connects: one per listening port and address, bounded
MAX_OWN_ADDRESSES = 4
CONNECT_TIMEOUT_S = 1.0


def scope_of(address: str) -> str:
    """``loopback``, ``wildcard`` or ``address`` for a bound address."""
    ip = ipaddress.ip_address(address)
    if ip.is_loopback:
        return "loopback"
    return "wildcard" if ip.is_unspecified else "address"


def _owner(inode: int, owners: SocketOwners) -> dict[str, Any]:
    pids = owners.holders(inode)
    if not pids:
        return {}
    pid = min(pids)
    info = read_process_info(pid)
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8") as f:
            unit = unit_of(f.read())
    except OSError:
        unit = None
    return {"pid": pid, "process": info.name, "exe": info.exe, "user": info.user, "unit": unit}


def read_listeners() -> tuple[Listener, ...]:
    """Listening TCP sockets and bound UDP sockets of this namespace, with owners."""
    rows = []
    with SockDiag() as diag:
        for protocol, state, name in (
            (socket.IPPROTO_TCP, TCP_LISTEN, "tcp"),
            (socket.IPPROTO_UDP, UDP_UNCONNECTED, "udp"),
        ):
            for family in (socket.AF_INET, socket.AF_INET6):
                rows += [(name, r) for r in diag.dump(protocol, family, 1 << state)]
    owners = SocketOwners()
    owners.refresh()
    seen: set[tuple[str, str, int]] = set()
    out = []
    for name, r in rows:
        key = (name, r.local_ip, r.local_port)
        if key in seen:
            continue
        seen.add(key)
        out.append(
            Listener(
                name, r.local_ip, r.local_port, scope_of(r.local_ip), **_owner(r.inode, owners)
            )
        )
    return tuple(sorted(out, key=lambda li: (li.protocol, li.port, li.address)))


def connect_targets(listeners: tuple[Listener, ...], own: tuple[str, ...]) -> list[tuple[str, int]]:
    """(address, port) pairs the loopback test connects to: every listening TCP port on
    127.0.0.1 / ::1 and on each of the machine's own addresses (bounded)."""
    ports: dict[int, set[str]] = {}
    for li in listeners:
        if li.protocol == "tcp":
            ports.setdefault(li.port, set()).add(li.address)
    pairs: list[tuple[str, int]] = []
    for port in sorted(ports)[:MAX_PORTS]:
        bound = ports[port]
        v6_only = all(":" in a for a in bound)
        pairs.append(("::1" if v6_only else "127.0.0.1", port))
        pairs += [(a, port) for a in own[:MAX_OWN_ADDRESSES] if (":" in a) == v6_only]
    return pairs


def loopback_test(
    listeners: tuple[Listener, ...], own: tuple[str, ...]
) -> tuple[LocalConnect, ...]:
    """Connect once to each target of :func:`connect_targets` (local connects only)."""
    pairs = connect_targets(listeners, own)
    start = time.monotonic()
    probes = [ConnectProbe(a, p, start + 0.002 * i) for i, (a, p) in enumerate(pairs)]
    outcomes = run_connects(probes, CONNECT_TIMEOUT_S)
    return tuple(
        LocalConnect(a, p, o.outcome, o.elapsed_ms if o.outcome == "open" else None, o.detail)
        for (a, p), o in zip(pairs, outcomes, strict=True)
    )


def collect_network(
    root: str,
    live: bool,
    read_firewall: Callable[[], FirewallFacts] = firewall_collector.read_firewall,
) -> NetworkFacts:
    """Every inside check that can run here; a part that cannot says why in ``skipped``.
    ``read_firewall``: how to get the ruleset (a gather shares one reading)."""
    vantage = read_vantage("target")
    skipped: list[PartSkipped] = []
    values: dict[str, Any] = {}

    def attempt(part: str, read: Any) -> None:
        try:
            values[part] = read()
        except FactUnavailable as exc:
            skipped.append(PartSkipped(part, exc.key, str(exc)))
        except (OSError, ParseError) as exc:
            skipped.append(PartSkipped(part, "reason.generic", f"{part}: {exc}"))

    if live:
        attempt("listeners", read_listeners)
        own = vantage.addresses
        attempt("loopback", lambda: loopback_test(values.get("listeners", ()), own))
        attempt("firewall", read_firewall)
        attempt("gateways", network_config.read_gateways)
        attempt("events", read_service_events)
    else:
        for part in ("listeners", "loopback", "firewall", "gateways", "events"):
            skipped.append(PartSkipped(part, "reason.not_live", "needs the running machine"))
    attempt("hosts_access", lambda: network_config.read_hosts_access(root))
    attempt("resolvers", lambda: network_config.read_resolvers(root))
    return NetworkFacts(vantage=vantage, skipped=tuple(skipped), read_at=time.time(), **values)


def network_source(ctx: GatherContext) -> Collection:
    """The ``network`` category for :data:`hostmedic.gather.SOURCES` (instant checks)."""
    from hostmedic.gather import Instant  # gather imports this module: import at call time

    def firewall() -> FirewallFacts:
        return ctx.once("firewall", firewall_collector.read_firewall)

    return Instant({"network": collect_network(ctx.root, ctx.live, firewall)})

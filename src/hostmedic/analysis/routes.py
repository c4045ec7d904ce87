"""Which interface a remote address is reached through: parse /proc/net/route and
/proc/net/ipv6_route, then longest-prefix match. Pure: the text is read by a collector.

Used to assign each TCP flow to an interface, so per-interface reconciliation (interface
counters = attributed + unattributed) works on multi-homed hosts.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass
from functools import lru_cache

from hostmedic.errors import ParseError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Route:
    network: IPNetwork
    interface: str
    metric: int


def parse_ipv4_routes(text: str) -> list[Route]:
    """Parse /proc/net/route (hex, little-endian addresses); skips the header line."""
    routes: list[Route] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            dest = socket.inet_ntoa(struct.pack("<I", int(fields[1], 16)))
            mask = socket.inet_ntoa(struct.pack("<I", int(fields[7], 16)))
            net = ipaddress.IPv4Network(f"{dest}/{mask}", strict=False)
            routes.append(Route(net, fields[0], int(fields[6])))
        except (ValueError, struct.error) as exc:
            raise ParseError(f"bad /proc/net/route line: {line!r}") from exc
    return routes


def parse_ipv6_routes(text: str) -> list[Route]:
    """Parse /proc/net/ipv6_route (32-hex-digit addresses, hex prefix length)."""
    routes: list[Route] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 10:
            continue
        try:
            addr = ipaddress.IPv6Address(bytes.fromhex(fields[0]))
            net = ipaddress.IPv6Network(f"{addr}/{int(fields[1], 16)}", strict=False)
            routes.append(Route(net, fields[9], int(fields[5], 16)))
        except ValueError as exc:
            raise ParseError(f"bad /proc/net/ipv6_route line: {line!r}") from exc
    return routes


class RouteTable:
    """Longest-prefix-match lookup over parsed routes (results cached per address)."""

    def __init__(self, routes: list[Route], local_addresses: frozenset[str] = frozenset()):
        self._routes = sorted(routes, key=lambda r: (-r.network.prefixlen, r.metric))
        self.local_addresses = local_addresses
        self.interface_for = lru_cache(maxsize=65536)(self._lookup)

    def _lookup(self, ip: str) -> str | None:
        if ip in self.local_addresses:
            return "lo"
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        if addr.is_loopback:
            return "lo"
        for route in self._routes:
            if route.network.version == addr.version and addr in route.network:
                return route.interface
        return None

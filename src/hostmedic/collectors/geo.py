"""Where an IP address is: an offline country lookup (iptocc, RIR delegation data shipped
inside the wheel — no network access, ever) plus operator overrides for ranges the public
data cannot know (a VPC, a lab, a partner's private range).

Seeds 000–003: "check where the remote IP is; abroad means a greater security risk".
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from importlib import metadata

from hostmedic.errors import UsageError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def database_version() -> str:
    """What the country data is, for ``--version`` (the data is embedded at wheel build)."""
    try:
        return f"iptocc {metadata.version('iptocc')} (RIR delegation data embedded in the wheel)"
    except metadata.PackageNotFoundError:
        return "iptocc not installed: countries unknown"


def parse_overrides(entries: Mapping[str, str]) -> list[tuple[IPNetwork, str]]:
    """Validate ``{"198.19.0.0/16": "US"}`` style overrides; most specific first."""
    parsed: list[tuple[IPNetwork, str]] = []
    for cidr, country in entries.items():
        try:
            net = ipaddress.ip_network(cidr, strict=False)
        except ValueError as exc:
            raise UsageError("error.bad_cidr", value=cidr) from exc
        if len(country) != 2 or not country.isalpha():
            raise UsageError("error.bad_country", value=country)
        parsed.append((net, country.upper()))
    return sorted(parsed, key=lambda item: -item[0].prefixlen)


class CountryLookup:
    """Country code of an address: overrides first, then the shipped database.

    Private, loopback, link-local and documentation ranges have no country unless an
    override names one.
    """

    def __init__(self, overrides: Iterable[tuple[IPNetwork, str]] = ()) -> None:
        self._overrides = list(overrides)
        self._database: Callable[[str], str | None] | None
        try:
            from iptocc import country_code
        except ImportError:
            self._database = None
        else:
            self._database = country_code
        self.country_of = lru_cache(maxsize=65536)(self._lookup)

    def _lookup(self, ip: str) -> str | None:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return None
        for net, country in self._overrides:
            if addr.version == net.version and addr in net:
                return country
        if not addr.is_global or self._database is None:
            return None
        result = self._database(ip)
        return result.upper() if isinstance(result, str) else None

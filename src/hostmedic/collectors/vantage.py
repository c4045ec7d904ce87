"""Who is looking: this machine's name and own addresses, for an observation's vantage."""

from __future__ import annotations

import ipaddress
import socket
import time

import psutil

from hostmedic import __version__
from hostmedic.facts.network import Vantage


def own_addresses() -> tuple[str, ...]:
    """This machine's non-loopback, non-link-local IP addresses (sorted, IPv4 first)."""
    found: set[str] = set()
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            try:
                ip = ipaddress.ip_address(a.address.split("%")[0])
            except ValueError:
                continue
            if not (ip.is_loopback or ip.is_link_local or ip.is_unspecified):
                found.add(str(ip))
    return tuple(sorted(found, key=lambda s: (":" in s, s)))


def read_vantage(role: str, label: str = "") -> Vantage:
    """The vantage of an observation made now on this machine."""
    return Vantage(
        hostname=socket.gethostname(),
        addresses=own_addresses(),
        role=role,
        observed_at=time.time(),
        label=label,
        tool_version=__version__,
    )

"""Helpers shared by the network rules: parts that may be missing, and how to cite a
listener as evidence."""

from __future__ import annotations

from hostmedic.errors import FactUnavailable
from hostmedic.facts.network import Listener, NetworkFacts

# Ports that exist to be reached from outside (web, ssh, ftp, mail, remote desktop): a
# problem on one of them is what makes "the site is unreachable".
PUBLIC_PORTS = frozenset(
    {21, 22, 25, 80, 110, 143, 443, 465, 587, 993, 995, 3389, 8000, 8080, 8443}
)
SOURCE_LISTENERS = "sock_diag (listening sockets) + /proc/<pid>"


def require(network: NetworkFacts, part: str) -> None:
    """Skip the calling rule, with the collector's reason, when ``part`` was not read."""
    missing = network.skip_reason(part)
    if missing is not None:
        raise FactUnavailable(missing.detail, key=missing.key)


def endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def listener_excerpt(li: Listener) -> str:
    """``tcp 127.0.0.1:80 pid=123 process=nginx exe=/usr/sbin/nginx user=www-data unit=…``"""
    owner = (
        f"pid={li.pid} process={li.process} exe={li.exe or '?'} user={li.user or '?'}"
        + (f" unit={li.unit}" if li.unit else "")
        if li.pid is not None
        else "owner unknown (run as root)"
    )
    return f"{li.protocol} {endpoint(li.address, li.port)} {owner}"


def owner_name(li: Listener) -> str:
    return li.process or "?"

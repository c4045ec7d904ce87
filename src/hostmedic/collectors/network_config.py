"""Network configuration files and tables: hosts.allow/deny, resolv.conf, default routes.

Seed 004's inside checks: TCP wrappers may refuse a client before the service sees it
(§目标服务器内部配置 / §软件源地址访问控制), the default gateway is what the private-access
tree pings (1-B.1-B.1 "到源服务器网关 ping 是否正常" — named here, never pinged), and the
resolver configuration explains name failures seen from this machine. Reading and
parsing are split: ``parse_*`` are pure and tested on recorded text.
"""

from __future__ import annotations

import ipaddress
import os

from hostmedic.errors import ParseError
from hostmedic.facts.network import Gateway, HostsAccessEntry, ResolverConfig

STUB_RESOLVER = "127.0.0.53"
MAX_LINES = 2000


def parse_hosts_access(text: str, path: str) -> tuple[HostsAccessEntry, ...]:
    """Entries of a hosts.allow/hosts.deny file: ``daemons : clients [: options]``.

    Comments, blank lines and lines without a colon are skipped; backslash continuations
    are joined.
    """
    entries: list[HostsAccessEntry] = []
    logical: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, line in enumerate(text.splitlines()[:MAX_LINES], 1):
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append((start, pending + line))
        pending = ""
    for number, line in logical:
        body = line.split("#", 1)[0].strip()
        if ":" not in body:
            continue
        fields = _split_colons(body)
        if len(fields) < 2:
            continue
        daemons, clients = fields[0], fields[1]
        entries.append(
            HostsAccessEntry(
                path=path,
                line_number=number,
                daemons=tuple(d for d in daemons.replace(",", " ").split() if d),
                clients=tuple(c for c in clients.replace(",", " ").split() if c),
                text=body[:300],
            )
        )
    return tuple(entries)


def _split_colons(text: str) -> list[str]:
    """Split on colons outside ``[...]`` (TCP wrappers write IPv6 clients in brackets)."""
    fields, depth, current = [], 0, ""
    for ch in text:
        depth += (ch == "[") - (ch == "]")
        if ch == ":" and depth <= 0:
            fields.append(current)
            current = ""
        else:
            current += ch
    return [*fields, current]


def parse_resolv_conf(text: str, path: str) -> ResolverConfig:
    """nameserver and search lines of resolv.conf (options are not needed here)."""
    servers: list[str] = []
    search: list[str] = []
    for line in text.splitlines()[:MAX_LINES]:
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            servers.append(fields[1])
        elif fields and fields[0] in ("search", "domain"):
            search = fields[1:]
    stub = bool(servers) and all(s == STUB_RESOLVER for s in servers)
    return ResolverConfig(path, tuple(servers), tuple(search), stub)


def _hex_ipv4(text: str) -> str:
    return str(ipaddress.IPv4Address(int(text, 16).to_bytes(4, "little")))


def parse_ipv4_routes(text: str) -> tuple[Gateway, ...]:
    """Default routes of /proc/net/route (destination and mask 0)."""
    out: list[Gateway] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            if int(fields[1], 16) != 0 or int(fields[7], 16) != 0:
                continue
            gateway = _hex_ipv4(fields[2])
            metric = int(fields[6])
        except ValueError as exc:
            raise ParseError(f"bad /proc/net/route line {line!r}") from exc
        flags = int(fields[3], 16)
        out.append(Gateway("ipv4", gateway if flags & 0x2 else None, fields[0], metric))
    return tuple(out)


def parse_ipv6_routes(text: str) -> tuple[Gateway, ...]:
    """Default routes of /proc/net/ipv6_route (::/0), skipping unreachable/loopback ones."""
    out: list[Gateway] = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 10:
            continue
        if fields[0] != "0" * 32 or fields[1] != "00" or fields[9] == "lo":
            continue
        try:
            gateway = ipaddress.IPv6Address(bytes.fromhex(fields[4]))
            metric = int(fields[5], 16)
        except ValueError as exc:
            raise ParseError(f"bad /proc/net/ipv6_route line {line!r}") from exc
        out.append(
            Gateway("ipv6", None if gateway.is_unspecified else str(gateway), fields[9], metric)
        )
    return tuple(out)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(1_000_000)
    except OSError:
        return None


def read_hosts_access(root: str) -> tuple[HostsAccessEntry, ...]:
    """Both TCP-wrapper files under ``root`` (missing files are simply empty)."""
    entries: list[HostsAccessEntry] = []
    for name in ("hosts.allow", "hosts.deny"):
        path = os.path.join(root, "etc", name)
        text = _read(path)
        if text is not None:
            entries += parse_hosts_access(text, f"/etc/{name}")
    return tuple(entries)


def read_resolvers(root: str) -> ResolverConfig | None:
    """resolv.conf under ``root``; with the systemd-resolved stub, its upstream servers."""
    text = _read(os.path.join(root, "etc", "resolv.conf"))
    if text is None:
        return None
    config = parse_resolv_conf(text, "/etc/resolv.conf")
    if config.stub:
        upstream = _read(os.path.join(root, "run", "systemd", "resolve", "resolv.conf"))
        if upstream is not None:
            servers = parse_resolv_conf(upstream, "").nameservers
            config = ResolverConfig(config.path, config.nameservers, config.search, True, servers)
    return config


def read_gateways(proc: str = "/proc") -> tuple[Gateway, ...]:
    """Default routes of this network namespace, IPv4 then IPv6."""
    v4 = _read(f"{proc}/net/route")
    v6 = _read(f"{proc}/net/ipv6_route")
    return (parse_ipv4_routes(v4) if v4 else ()) + (parse_ipv6_routes(v6) if v6 else ())

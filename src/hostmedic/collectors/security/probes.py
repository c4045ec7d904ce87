"""Weak local services, probed live on loopback only (seed 004 §排查并修复服务器漏洞 3-7:
Redis without a password and its write-a-key-into-/root/.ssh attack, MySQL root with a
trivial password, admin consoles on 8080 — Jenkins, Tomcat manager, phpMyAdmin, WDCP,
WebLogic — and an open Elasticsearch).

Only sockets found listening are probed, only through 127.0.0.1 / ::1, only those whose
port or owner the signature data names; a service bound to another address only is listed
as not probed. Probes read (PING, CONFIG GET, an HTTP GET); nothing is ever written.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

from hostmedic.analysis.startup import security_signatures
from hostmedic.collectors.security import mysql
from hostmedic.errors import ParseError
from hostmedic.facts.bandwidth import format_endpoint
from hostmedic.facts.security import Listener, ServiceFacts, ServiceProbe

TIMEOUT_S = 2.0
MAX_REPLY = 64 << 10
MAX_TARGETS = 16
WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1"}
REDIS_CONFIG = ("dir", "dbfilename", "protected-mode", "bind")


def loopback_target(ip: str) -> str | None:
    """The loopback address that reaches a socket bound to ``ip``, if one does."""
    if ip in WILDCARDS:
        return WILDCARDS[ip]
    return ip if ip == "::1" or ip.startswith("127.") else None


def _exchange(address: tuple[str, int], request: bytes, enough: Callable[[bytes], bool]) -> bytes:
    """Send one request and read the reply until ``enough`` says so, EOF, the size cap or
    the deadline (OSError when the connection fails)."""
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    deadline = time.monotonic() + TIMEOUT_S
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(TIMEOUT_S)
        sock.connect(address)
        sock.sendall(request)
        reply = b""
        while len(reply) < MAX_REPLY and not enough(reply) and time.monotonic() < deadline:
            try:
                chunk = sock.recv(MAX_REPLY - len(reply))
            except TimeoutError:
                break
            if not chunk:
                break
            reply += chunk
        return reply


def resp_command(*words: str) -> bytes:
    """A Redis command in RESP (an array of bulk strings)."""
    parts = [f"*{len(words)}\r\n".encode()]
    for w in words:
        data = w.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def parse_resp(data: bytes) -> tuple[Any, bytes]:
    """One RESP value and the rest of the buffer (ParseError when incomplete/garbage).
    An error reply is returned as its text with the leading ``-`` (``-NOAUTH …``)."""
    line, sep, rest = data.partition(b"\r\n")
    if not sep or not line:
        raise ParseError("incomplete RESP reply")
    kind, body = line[:1], line[1:].decode("utf-8", "replace")
    if kind in (b"+", b":"):
        return body, rest
    if kind == b"-":
        return "-" + body, rest
    if kind == b"$":
        size = int(body) if body.lstrip("-").isdigit() else -2
        if size == -1:
            return None, rest
        if size < 0 or len(rest) < size + 2:
            raise ParseError("bad RESP bulk string")
        return rest[:size].decode("utf-8", "replace"), rest[size + 2 :]
    if kind == b"*":
        count = int(body) if body.lstrip("-").isdigit() else -2
        if count < -1 or count > 1024:
            raise ParseError("bad RESP array")
        items = []
        for _ in range(max(count, 0)):
            item, rest = parse_resp(rest)
            items.append(item)
        return items, rest
    raise ParseError(f"unknown RESP type {kind!r}")


def _complete(data: bytes) -> bool:
    try:
        parse_resp(data)
    except (ParseError, ValueError):
        return False
    return True


def probe_redis(address: tuple[str, int]) -> tuple[bool, str, tuple[tuple[str, str], ...]]:
    """(answers without AUTH, the PING reply, CONFIG GET answers when it does)."""
    reply, _ = parse_resp(_exchange(address, resp_command("PING"), _complete))
    if reply != "PONG":
        return False, str(reply)[:120], ()
    config: list[tuple[str, str]] = []
    for name in REDIS_CONFIG:
        try:
            value, _ = parse_resp(
                _exchange(address, resp_command("CONFIG", "GET", name), _complete)
            )
        except (OSError, ParseError):
            continue
        if isinstance(value, list) and len(value) == 2:  # renamed CONFIG → an error instead
            config.append((name, str(value[1])))
    return True, "+PONG", tuple(config)


def http_get(address: tuple[str, int], path: str) -> tuple[int, dict[str, str], str]:
    """(status, lower-case headers, body) of one GET; status 0 when the reply is not HTTP."""
    host = format_endpoint(*address)
    request = (
        f"GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: hostmedic\r\nConnection: close\r\n\r\n"
    ).encode()
    return parse_http(_exchange(address, request, lambda _: False))


def parse_http(raw: bytes) -> tuple[int, dict[str, str], str]:
    """Split an HTTP response into status, headers and body text."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return 0, {}, ""
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers, body.decode("utf-8", "replace")


def probe_console(address: tuple[str, int], fp: dict[str, Any]) -> tuple[bool, bool, str]:
    """(the fingerprint matched, the console is open without a login, evidence line)."""
    status, headers, body = http_get(address, fp["path"])
    header = fp.get("header")
    seen = (header is not None and header in headers) or any(m in body for m in fp.get("body", []))
    evidence = f"GET {fp['path']} → {status}" + (
        f" {header}: {headers[header]}" if header in headers else ""
    )
    return seen, seen and status in fp["open_status"], evidence


def _targets(
    listeners: list[Listener], names: dict[int, str], ports: list[int], owners: list[str]
) -> Iterator[tuple[int, str, tuple[str, ...], int | None]]:
    """(port, loopback address, every bound address, pid) per candidate TCP port."""
    by_port: dict[int, list[Listener]] = {}
    for listener in listeners:
        if listener.protocol == "tcp":
            by_port.setdefault(listener.port, []).append(listener)
    for port, group in sorted(by_port.items()):
        pid = next((x.pid for x in group if x.pid is not None), None)
        if port not in ports and names.get(pid or -1) not in owners:
            continue
        binds = tuple(sorted({x.ip for x in group}))
        target = next((t for t in (loopback_target(x.ip) for x in group) if t), None)
        yield port, target or "", binds, pid


def probe_services(listeners: list[Listener], names: dict[int, str]) -> ServiceFacts:
    """Probe the candidate services among ``listeners`` (``names``: pid → process name)."""
    read_at = time.time()
    sig = security_signatures()
    probes: list[ServiceProbe] = []
    not_probed: list[str] = []
    plans: list[tuple[str, dict[str, Any]]] = [("redis", sig["redis"]), ("mysql", sig["mysql"])]
    plans.append(("console", sig["console"]))
    for service, table in plans:
        for port, target, binds, pid in _targets(listeners, names, table["ports"], table["owners"]):
            if len(probes) + len(not_probed) >= MAX_TARGETS:
                break
            if not target:
                not_probed.append(f"{service} {','.join(binds)}:{port}")
                continue
            address = (target, port)
            probes += _probe(service, table, address, binds, pid)
    return ServiceFacts(tuple(probes), tuple(not_probed), read_at)


def _probe(
    service: str,
    table: dict[str, Any],
    address: tuple[str, int],
    binds: tuple[str, ...],
    pid: int | None,
) -> list[ServiceProbe]:
    where = format_endpoint(*address)
    try:
        if service == "redis":
            is_open, detail, config = probe_redis(address)
            return [ServiceProbe("redis", where, binds, pid, is_open, detail, config)]
        if service == "mysql":
            return [_probe_mysql(table, address, where, binds, pid)]
    except (OSError, ParseError, ValueError):  # not that service after all, or it went away
        return []
    found = []
    for fp in table["fingerprint"]:
        try:
            seen, is_open, detail = probe_console(address, fp)
        except OSError:
            continue
        if seen:
            found.append(ServiceProbe(fp["service"], where, binds, pid, is_open, detail))
    return found


def _probe_mysql(
    table: dict[str, Any],
    address: tuple[str, int],
    where: str,
    binds: tuple[str, ...],
    pid: int | None,
) -> ServiceProbe:
    detail = ""
    for password in table["passwords"]:
        ok, detail = mysql.try_login(address, table["user"], password, TIMEOUT_S)
        if ok:
            shown = "empty password" if password == "" else f"password '{password}'"
            return ServiceProbe(
                "mysql", where, binds, pid, True, f"{table['user']} with {shown}: {detail}"
            )
    return ServiceProbe("mysql", where, binds, pid, False, detail)

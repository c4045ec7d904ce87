"""What a name resolves to: the system resolver vs each resolver the operator named.

Seed 004 "本地 DNS 劫持": a local network or ISP that rewrites DNS answers sends the browser
to another site (异常跳转, 插入广告). Comparing the system resolver (getaddrinfo: hosts
file, resolv.conf, nsswitch — what the browser uses) with a resolver the operator trusts
(``--resolver ADDR``) shows it. Nothing is asked of any resolver the operator did not name:
there is no built-in public resolver.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from hostmedic.errors import ParseError
from hostmedic.facts.probe import DnsAnswer
from hostmedic.probes import dns_wire

_FAMILIES = {"A": socket.AF_INET, "AAAA": socket.AF_INET6}
_GAI_RCODES = {
    socket.EAI_NONAME: "NXDOMAIN",
    socket.EAI_AGAIN: "SERVFAIL",
    getattr(socket, "EAI_NODATA", -5): "NOERROR",
}


def split_resolver(text: str) -> tuple[str, int]:
    """``ADDR``, ``ADDR:PORT`` or ``[V6]:PORT`` → (address, port); ValueError if bad."""
    import ipaddress

    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else 53
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = int(port_text)
    ipaddress.ip_address(host)
    if not 0 < port < 65536:
        raise ValueError(text)
    return host, port


T = TypeVar("T")


def with_timeout(function: Callable[[], T], timeout_s: float) -> T:
    """Run ``function`` on a daemon thread and wait at most ``timeout_s`` for it.

    getaddrinfo has no timeout of its own (resolv.conf may say 5 s × 2 attempts × each
    server); a daemon thread left behind cannot hold the process at exit. Raises
    TimeoutError, or whatever ``function`` raised.
    """
    box: dict[str, object] = {}

    def call() -> None:
        try:
            box["value"] = function()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    thread = threading.Thread(target=call, daemon=True, name="hostmedic-resolve")
    thread.start()
    thread.join(timeout_s)
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    if "value" not in box:
        raise TimeoutError("timed out")
    return box["value"]  # type: ignore[return-value]


def system_lookup(name: str, rtype: str, timeout_s: float) -> DnsAnswer:
    """getaddrinfo for one family, bounded by ``timeout_s``."""
    start = time.monotonic()
    try:
        infos = with_timeout(
            lambda: socket.getaddrinfo(name, None, _FAMILIES[rtype], socket.SOCK_STREAM),
            timeout_s,
        )
    except TimeoutError:
        return DnsAnswer(name, "system", rtype, (), "TIMEOUT", error="getaddrinfo timed out")
    except socket.gaierror as exc:
        rcode = _GAI_RCODES.get(exc.errno, "ERROR")
        elapsed = round((time.monotonic() - start) * 1000.0, 3)
        return DnsAnswer(name, "system", rtype, (), rcode, elapsed, exc.strerror)
    except (OSError, UnicodeError) as exc:
        return DnsAnswer(name, "system", rtype, (), "ERROR", error=str(exc))
    answers = tuple(sorted({str(info[4][0]) for info in infos}))
    return DnsAnswer(
        name, "system", rtype, answers, "NOERROR", round((time.monotonic() - start) * 1000.0, 3)
    )


def _exchange(query: bytes, host: str, port: int, timeout_s: float, tcp: bool) -> bytes:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    kind = socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM
    with socket.socket(family, kind) as sock:
        sock.settimeout(timeout_s)
        sock.connect((host, port))
        if not tcp:
            sock.send(query)
            return sock.recv(65535)
        sock.sendall(len(query).to_bytes(2, "big") + query)
        size = int.from_bytes(_read_exact(sock, 2), "big")
        return _read_exact(sock, size)


def _read_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ParseError("DNS over TCP: connection closed early")
        data += chunk
    return data


def query(
    name: str, rtype: str, resolver: str, timeout_s: float = 2.0, tries: int = 2
) -> DnsAnswer:
    """Ask ``resolver`` (``ADDR[:PORT]``) for ``name``/``rtype`` over UDP (TCP when the
    answer is truncated); ``tries`` UDP attempts of ``timeout_s`` each."""
    host, port = split_resolver(resolver)
    start = time.monotonic()
    error = "no answer"
    for _ in range(tries):
        ident = int.from_bytes(os.urandom(2), "big")
        try:
            raw = _exchange(dns_wire.build_query(ident, name, rtype), host, port, timeout_s, False)
            response = dns_wire.parse_response(raw, rtype)
            if response.truncated:
                raw = _exchange(
                    dns_wire.build_query(ident, name, rtype), host, port, timeout_s, True
                )
                response = dns_wire.parse_response(raw, rtype)
        except TimeoutError:
            error = "timed out"
            continue
        except (OSError, ParseError) as exc:
            error = str(exc)
            continue
        if response.ident != ident:
            error = "answer with a foreign id"  # spoofed or stale: not trusted
            continue
        elapsed = round((time.monotonic() - start) * 1000.0, 3)
        return DnsAnswer(
            name, resolver, rtype, tuple(sorted(set(response.addresses))), response.rcode, elapsed
        )
    rcode = "TIMEOUT" if error == "timed out" else "ERROR"
    return DnsAnswer(name, resolver, rtype, (), rcode, error=error)

"""Fetch a URL the way a browser would, and keep what diagnoses the answer.

Seed 004 §URL 访问问题判断: is the page the site's own, or an ICP-filing notice, a WAF /
anti-DDoS block page, an abnormal redirect (异常跳转) or the site with an injected ad?
Redirects are followed (a browser does; a filing block *is* a redirect) but at most
:data:`MAX_REDIRECTS` of them, and every hop is reported with its host. A certificate that
fails verification is recorded and the page fetched anyway, since an on-path interceptor
is exactly what would present one. Bodies are read up to :data:`MAX_BODY` bytes, kept only
as a hash, a title, a script list and the block-page fingerprints that matched.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import socket
import ssl
import time
import zlib
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from hostmedic import __version__
from hostmedic.analysis.fingerprints import PageView, match_page
from hostmedic.facts.probe import HttpHop, HttpResult
from hostmedic.probes.html import decode_body, page_summary

MAX_REDIRECTS = 5
MAX_BODY = 512 * 1024
_REDIRECTS = {301, 302, 303, 307, 308}
# Response headers kept in evidence: what names a server, a CDN, a WAF or a cache.
_KEPT = {
    "server",
    "content-type",
    "content-length",
    "location",
    "via",
    "x-cache",
    "x-powered-by",
    "cf-ray",
    "x-sucuri-id",
    "x-sucuri-block",
    "x-iinfo",
    "eagleid",
    "x-cdn",
    "x-nws-log-uuid",
    "x-cache-lookup",
    "x-via",
    "x-amz-cf-id",
    "x-served-by",
    "x-request-id",
    "retry-after",
}
_KEPT_PREFIXES = ("x-swift-", "x-tencent-", "x-hw-", "x-ws-", "x-waf")


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    truncated: bool
    address: str | None


class FetchError(Exception):
    """A request got no HTTP response; the message is the short reason reported."""


def _connection(url: str, timeout_s: float, verify: bool) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    host = parts.hostname or ""
    # an explicit port: http.client would otherwise split an IPv6 literal at its last colon
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if parts.scheme == "https":
        context = ssl.create_default_context()
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection(host, port, timeout=timeout_s, context=context)
    return http.client.HTTPConnection(host, port, timeout=timeout_s)


def _request(url: str, timeout_s: float, verify: bool) -> _Response:
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn = _connection(url, timeout_s, verify)
    try:
        conn.request(
            "GET",
            path,
            headers={
                "User-Agent": f"hostmedic/{__version__} (reachability probe)",
                "Accept": "text/html,*/*;q=0.8",
                "Accept-Encoding": "gzip, deflate",
                "Connection": "close",
            },
        )
        address = conn.sock.getpeername()[0] if conn.sock is not None else None
        response = conn.getresponse()
        raw = response.read(MAX_BODY + 1)
        headers = tuple((k.lower(), v) for k, v in response.getheaders())
    finally:
        conn.close()
    body = raw[:MAX_BODY]
    encoding = dict(headers).get("content-encoding", "").lower()
    if encoding in ("gzip", "deflate"):
        # a truncated or lying encoding: keep the raw bytes
        with contextlib.suppress(zlib.error):
            body = zlib.decompressobj(47 if encoding == "gzip" else 15).decompress(body, MAX_BODY)
    return _Response(response.status, headers, body, len(raw) > MAX_BODY, address)


def _short_error(exc: BaseException) -> str:
    """A stable short reason: timeout, refused, reset, unreachable, tls: …, dns: …"""
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "reset"
    if isinstance(exc, socket.gaierror):
        return f"dns: {exc.strerror}"
    if isinstance(exc, ssl.SSLError):
        return f"tls: {exc.reason or exc.__class__.__name__}"
    if isinstance(exc, http.client.HTTPException):
        return f"http: {exc.__class__.__name__}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return exc.__class__.__name__


def _get(url: str, timeout_s: float) -> tuple[_Response, bool | None]:
    """One request; on a certificate failure, again without verification (reported)."""
    https = url.startswith("https:")
    try:
        return _request(url, timeout_s, verify=True), (True if https else None)
    except ssl.SSLCertVerificationError:
        pass
    except (OSError, http.client.HTTPException) as exc:
        raise FetchError(_short_error(exc)) from exc
    try:
        return _request(url, timeout_s, verify=False), False
    except (OSError, http.client.HTTPException) as exc:
        raise FetchError(_short_error(exc)) from exc


def _kept_headers(headers: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    kept = []
    for name, value in headers:
        if name == "set-cookie":  # the cookie's name identifies a WAF; its value is private
            kept.append((name, value.split("=", 1)[0].strip()[:100]))
        elif name in _KEPT or name.startswith(_KEPT_PREFIXES):
            kept.append((name, value[:200]))
    return tuple(kept)


def fetch(url: str, timeout_s: float = 5.0, max_redirects: int = MAX_REDIRECTS) -> HttpResult:
    """GET ``url``, following up to ``max_redirects`` redirects within ~3 × ``timeout_s``."""
    start = time.monotonic()
    deadline = start + 3 * timeout_s
    hops: list[HttpHop] = []
    current, first_address = url, None
    verified_hops: list[bool | None] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return HttpResult(url, redirects=tuple(hops), error="timeout", address=first_address)
        try:
            got, verified = _get(current, min(timeout_s, remaining))
        except FetchError as exc:
            elapsed = round((time.monotonic() - start) * 1000.0, 3)
            return HttpResult(
                url,
                final_url=current,
                redirects=tuple(hops),
                error=str(exc),
                address=first_address,
                elapsed_ms=elapsed,
            )
        first_address = first_address or got.address
        verified_hops.append(verified)
        location = dict(got.headers).get("location")
        host = urlsplit(current).hostname or ""
        if got.status in _REDIRECTS and location and len(hops) < max_redirects:
            target = urljoin(current, location)
            if urlsplit(target).scheme in ("http", "https"):
                hops.append(HttpHop(current, got.status, target, host))
                current = target
                continue
        tls_verified = (
            False if False in verified_hops else (True if True in verified_hops else None)
        )
        return _result(url, current, got, hops, first_address, tls_verified, start)


def _result(
    url: str,
    final: str,
    got: _Response,
    hops: list[HttpHop],
    address: str | None,
    tls_verified: bool | None,
    start: float,
) -> HttpResult:
    header_map = dict(got.headers)
    text = decode_body(got.body, header_map.get("content-type"))
    title, scripts = page_summary(text)
    urls = (*(h.url for h in hops), final)
    view = PageView(
        status=got.status,
        headers=got.headers,
        cookies=tuple(v.split("=", 1)[0].strip() for k, v in got.headers if k == "set-cookie"),
        body=text,
        body_length=len(got.body),
        title=title,
        urls=urls,
        hosts=tuple(urlsplit(u).hostname or "" for u in urls),
    )
    return HttpResult(
        url=url,
        status=got.status,
        final_url=final,
        redirects=tuple(hops),
        headers=_kept_headers(got.headers),
        body_sha256=hashlib.sha256(got.body).hexdigest(),
        body_length=len(got.body),
        body_truncated=got.truncated,
        title=title,
        scripts=scripts,
        fingerprints=match_page(view),
        address=address,
        tls_verified=tls_verified,
        elapsed_ms=round((time.monotonic() - start) * 1000.0, 3),
    )

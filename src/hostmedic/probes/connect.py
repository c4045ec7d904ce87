"""Many non-blocking TCP connects in one loop: port tests, local connects and TCP path hops.

Every connect asks the kernel for ICMP errors on its socket (``IP_RECVERR``), so when a
SYN is answered by an ICMP message instead of a SYN-ACK or RST, the outcome names who sent
it: a router's time-exceeded (the TCP path probe), or a firewall's admin-prohibited
(a port test). A TTL-limited SYN uses the same code: no raw socket, no root needed.

Outcomes (:data:`hostmedic.facts.network.TCP_OUTCOMES`): open, refused, timeout,
unreachable, error; plus ``ttl_exceeded`` for TTL-limited probes that died on the way.
"""

from __future__ import annotations

import errno
import select
import socket
import time
from dataclasses import dataclass

from hostmedic.errors import ParseError
from hostmedic.facts.network import ERROR, OPEN, REFUSED, TIMEOUT, UNREACHABLE
from hostmedic.probes import icmp_wire
from hostmedic.probes.icmp_socket import IP_RECVERR, IPV6_RECVERR
from hostmedic.probes.icmp_wire import Reply

TTL_EXCEEDED = "ttl_exceeded"
_REFUSED = {errno.ECONNREFUSED, errno.ECONNRESET}
_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENETDOWN}


@dataclass(frozen=True, slots=True)
class ConnectProbe:
    """One connect to make: where, when (monotonic start time) and with which TTL."""

    address: str
    port: int
    start_at: float
    ttl: int | None = None


@dataclass(frozen=True, slots=True)
class ConnectOutcome:
    """What happened: ``outcome``, elapsed ms from the SYN to the answer (None for a
    timeout), ``detail`` (errno name, plus the ICMP sender) and the ICMP message if any."""

    outcome: str
    elapsed_ms: float | None
    detail: str | None = None
    icmp: Reply | None = None


def _icmp_error(sock: socket.socket) -> Reply | None:
    """The ICMP error queued on the socket by IP_RECVERR, if any."""
    try:
        _data, ancillary, _flags, _addr = sock.recvmsg(64, 512, socket.MSG_ERRQUEUE)
    except OSError:
        return None
    for _level, _type, cmsg in ancillary:
        try:
            return icmp_wire.parse_extended_error(cmsg)
        except ParseError:
            continue
    return None


def classify(code: int, icmp: Reply | None, elapsed_ms: float | None) -> ConnectOutcome:
    """Outcome of a finished connect from its errno and the queued ICMP error."""
    name = errno.errorcode.get(code, str(code)) if code else None
    detail = name
    if icmp is not None:
        detail = f"{name} {icmp.kind}{'/' + icmp.reason if icmp.reason else ''} from {icmp.sender}"
        if icmp.kind == "ttl_exceeded":
            return ConnectOutcome(TTL_EXCEEDED, elapsed_ms, detail, icmp)
    if code == 0:
        return ConnectOutcome(OPEN, elapsed_ms)
    if code in _REFUSED:
        return ConnectOutcome(REFUSED, elapsed_ms, detail, icmp)
    if code in _UNREACHABLE:
        return ConnectOutcome(UNREACHABLE, elapsed_ms, detail, icmp)
    if code == errno.ETIMEDOUT:
        return ConnectOutcome(TIMEOUT, None, detail, icmp)
    return ConnectOutcome(ERROR, elapsed_ms, detail, icmp)


def _open(probe: ConnectProbe) -> tuple[socket.socket, int]:
    v6 = ":" in probe.address
    sock = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_STREAM)
    level = socket.IPPROTO_IPV6 if v6 else socket.IPPROTO_IP
    sock.setsockopt(level, IPV6_RECVERR if v6 else IP_RECVERR, 1)
    if probe.ttl is not None:
        sock.setsockopt(level, socket.IPV6_UNICAST_HOPS if v6 else socket.IP_TTL, probe.ttl)
    # The kernel's own SYN retransmits must not outlive our timeout by much: one retry.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, 1)
    sock.setblocking(False)
    return sock, sock.connect_ex((probe.address, probe.port))


def run_connects(probes: list[ConnectProbe], timeout_s: float) -> list[ConnectOutcome]:
    """Make every connect at its start time; each gets ``timeout_s`` to finish.

    Returns one outcome per probe, in order. Sockets are closed as soon as they finish
    (an opened connection is closed at once: we only test the handshake).
    """
    results: list[ConnectOutcome | None] = [None] * len(probes)
    pending = sorted(range(len(probes)), key=lambda i: probes[i].start_at)
    live: dict[int, tuple[int, socket.socket, float]] = {}  # fd -> (index, socket, sent at)
    poller = select.poll()
    try:
        while pending or live:
            now = time.monotonic()
            while pending and probes[pending[0]].start_at <= now:
                i = pending.pop(0)
                _start(i, probes[i], results, live, poller)
            for fd, (i, sock, sent) in list(live.items()):
                if now - sent >= timeout_s:
                    results[i] = ConnectOutcome(TIMEOUT, None, None, _icmp_error(sock))
                    _finish(fd, live, poller)
            wake = [probes[pending[0]].start_at] if pending else []
            wake += [sent + timeout_s for _i, _s, sent in live.values()]
            if not wake:
                break
            wait_ms = max(0.0, (min(wake) - time.monotonic()) * 1000.0)
            for fd, _event in poller.poll(wait_ms):
                if fd not in live:
                    continue
                i, sock, sent = live[fd]
                elapsed = (time.monotonic() - sent) * 1000.0
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                results[i] = classify(code, _icmp_error(sock), round(elapsed, 3))
                _finish(fd, live, poller)
    finally:
        for _i, sock, _sent in live.values():
            sock.close()
    return [r if r is not None else ConnectOutcome(ERROR, None, "not run") for r in results]


def _start(
    i: int,
    probe: ConnectProbe,
    results: list[ConnectOutcome | None],
    live: dict[int, tuple[int, socket.socket, float]],
    poller: select.poll,
) -> None:
    try:
        sock, code = _open(probe)
    except OSError as exc:  # bad address family, no IPv6, fd limit
        results[i] = ConnectOutcome(ERROR, None, errno.errorcode.get(exc.errno or 0, str(exc)))
        return
    sent = time.monotonic()
    if code not in (0, errno.EINPROGRESS):
        # Immediate failure: no route (ENETUNREACH), local firewall (EPERM)…
        results[i] = classify(code, _icmp_error(sock), 0.0)
        sock.close()
        return
    live[sock.fileno()] = (i, sock, sent)
    poller.register(sock.fileno(), select.POLLOUT | select.POLLERR)


def _finish(
    fd: int, live: dict[int, tuple[int, socket.socket, float]], poller: select.poll
) -> None:
    poller.unregister(fd)
    live.pop(fd)[1].close()

"""ICMP echo to one address: loss and latency as ping reports them (min/avg/max/mdev).

Seed 004 starts every reachability question with "ping 目标服务器 IP"; loss decides the
"ping 丢包" branch and total silence the "ping 不通" one. Echoes go out on a fixed
schedule and replies are matched by sequence number, so a late reply still counts while
the session lasts and duplicates do not. ICMP errors that come back instead (host
unreachable from a router, admin-prohibited from a firewall) are kept with their sender.
"""

from __future__ import annotations

import math
import socket
import time
from collections import Counter

from hostmedic.errors import FactUnavailable
from hostmedic.facts.probe import IcmpError, PingResult
from hostmedic.probes.icmp_socket import IcmpSocket
from hostmedic.probes.icmp_wire import Reply

PAYLOAD = b"hostmedic-probe." * 3 + b"\0" * 8  # 56 bytes, as ping sends by default


def latency_stats(rtts_ms: list[float]) -> tuple[float, float, float, float] | None:
    """(min, avg, max, mdev) in ms as iputils computes mdev (population deviation)."""
    if not rtts_ms:
        return None
    n = len(rtts_ms)
    avg = sum(rtts_ms) / n
    mdev = math.sqrt(max(sum(r * r for r in rtts_ms) / n - avg * avg, 0.0))
    return (round(min(rtts_ms), 3), round(avg, 3), round(max(rtts_ms), 3), round(mdev, 3))


def group_errors(replies: list[Reply]) -> tuple[IcmpError, ...]:
    """ICMP errors counted by (kind, code, sender)."""
    counts = Counter((r.kind, r.code, r.reason, r.sender) for r in replies)
    return tuple(
        IcmpError(kind, code, reason, sender, n)
        for (kind, code, reason, sender), n in sorted(counts.items())
    )


def ping(
    address: str, count: int = 5, interval_s: float = 0.2, timeout_s: float = 1.0
) -> PingResult:
    """Send ``count`` echoes ``interval_s`` apart; wait ``timeout_s`` after the last."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        sock = IcmpSocket(family)
    except FactUnavailable as exc:
        return PingResult(address, 0, 0, 0.0, error=str(exc))
    sent_at: dict[int, float] = {}
    rtts: dict[int, float] = {}
    errors: list[Reply] = []
    answered: set[int] = set()  # echoes that got a reply or an ICMP error
    error: str | None = None
    with sock:
        start = time.monotonic()
        seq = 0
        while True:
            now = time.monotonic()
            if seq < count and now >= start + seq * interval_s:
                try:
                    sock.send(address, seq, PAYLOAD)
                except OSError as exc:  # no route, network down: counts as lost
                    error = error or exc.strerror
                sent_at[seq] = time.monotonic()
                seq += 1
                continue
            until = start + seq * interval_s if seq < count else sent_at[count - 1] + timeout_s
            if seq >= count and (now >= until or len(answered) == count):
                break
            for reply, arrived in sock.receive(until):
                if reply.seq not in sent_at:
                    continue
                answered.add(reply.seq)
                if reply.kind == "echo_reply":
                    rtts.setdefault(reply.seq, (arrived - sent_at[reply.seq]) * 1000.0)
                else:
                    errors.append(reply)
    sent = len(sent_at)
    stats = latency_stats(list(rtts.values()))
    return PingResult(
        address=address,
        sent=sent,
        received=len(rtts),
        loss_pct=round(100.0 * (sent - len(rtts)) / sent, 1) if sent else 0.0,
        min_ms=stats[0] if stats else None,
        avg_ms=stats[1] if stats else None,
        max_ms=stats[2] if stats else None,
        mdev_ms=stats[3] if stats else None,
        rtts_ms=tuple(round(rtts[s], 3) if s in rtts else None for s in range(sent)),
        errors=group_errors(errors),
        method=sock.method,
        error=error if not rtts else None,
    )

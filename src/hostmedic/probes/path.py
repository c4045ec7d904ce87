"""The path to the target, MTR-style: per-hop loss and latency over several cycles.

Seed 004 3.1-A: when ping loses or fails, "需要通过 MTR 链路测试做进一步排查分析". Probes go
out with TTL 1, 2, 3…; each router that drops a probe for its TTL answers with an ICMP
time-exceeded, which names the hop. Two modes:

- ``icmp``: echo requests (mtr's default), on the socket of :mod:`icmp_socket`;
- ``tcp``: SYNs to a port (mtr ``--tcp``), on ordinary TCP sockets with ``IP_RECVERR``
  (no root needed), which also shows whether a firewall on the path eats the port.

Cycle 0 finds the path: TTLs go out in batches of 8 until the target (or an ICMP
unreachable: a filtering router) answers. The remaining cycles send every TTL up to that
hop at once, ``interval_s`` apart. Routers limit the ICMP errors they send to one host to
about one per second after a small burst (Linux: ``icmp_ratelimit`` = 1000 ms, burst 6), so
the interval should stay at 1 s, as mtr's: faster cycles would show that limit as loss.
"""

from __future__ import annotations

import socket
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from hostmedic.errors import FactUnavailable
from hostmedic.facts.network import OPEN, REFUSED, UNREACHABLE
from hostmedic.facts.probe import Hop, PathResult
from hostmedic.probes.connect import TTL_EXCEEDED, ConnectProbe, run_connects
from hostmedic.probes.icmp_socket import IcmpSocket
from hostmedic.probes.ping import PAYLOAD

BATCH = 8
TCP_PROBE_TIMEOUT_S = 0.95
REACHED, HOP, LOST = "reached", "hop", "lost"


@dataclass(frozen=True, slots=True)
class PathProbe:
    ttl: int
    start_at: float


@dataclass(frozen=True, slots=True)
class PathEcho:
    """What one probe brought back: ``kind`` reached / hop / unreachable / lost."""

    kind: str
    sender: str | None = None
    rtt_ms: float | None = None
    reason: str | None = None


Prober = Callable[[list[PathProbe], float], list[PathEcho]]


def tcp_prober(address: str, port: int) -> Prober:
    """TTL-limited SYNs: time-exceeded = a hop; SYN-ACK or RST = the target answered."""

    def run(probes: list[PathProbe], timeout_s: float) -> list[PathEcho]:
        got = run_connects(
            [ConnectProbe(address, port, p.start_at, p.ttl) for p in probes], timeout_s
        )
        echoes = []
        for outcome in got:
            sender = outcome.icmp.sender if outcome.icmp else None
            if outcome.outcome == TTL_EXCEEDED:
                echoes.append(PathEcho(HOP, sender, outcome.elapsed_ms))
            elif outcome.outcome in (OPEN, REFUSED):
                echoes.append(PathEcho(REACHED, address, outcome.elapsed_ms))
            elif outcome.outcome == UNREACHABLE and outcome.icmp is not None:
                echoes.append(
                    PathEcho(UNREACHABLE, sender, outcome.elapsed_ms, outcome.icmp.reason)
                )
            else:
                echoes.append(PathEcho(LOST))
        return echoes

    return run


def icmp_prober(sock: IcmpSocket, address: str) -> Prober:
    """TTL-limited echo requests: time-exceeded = a hop; echo reply = the target."""
    counter = [0]

    def run(probes: list[PathProbe], timeout_s: float) -> list[PathEcho]:
        echoes: list[PathEcho] = [PathEcho(LOST)] * len(probes)
        by_seq: dict[int, tuple[int, float]] = {}  # seq -> (probe index, sent at)
        order = sorted(range(len(probes)), key=lambda i: probes[i].start_at)
        done: set[int] = set()
        while order or any(
            i not in done and time.monotonic() < sent + timeout_s for i, sent in by_seq.values()
        ):
            now = time.monotonic()
            while order and probes[order[0]].start_at <= now:
                i = order.pop(0)
                seq = counter[0] = (counter[0] + 1) & 0xFFFF
                try:
                    sock.send(address, seq, PAYLOAD, ttl=probes[i].ttl)
                except OSError:
                    continue  # no route: stays lost
                by_seq[seq] = (i, time.monotonic())
            now = time.monotonic()
            # only probes still inside their timeout bound the wait (a lost one must not
            # keep the deadline in the past, or nothing would be read any more)
            deadlines = [
                sent + timeout_s
                for i, sent in by_seq.values()
                if i not in done and sent + timeout_s > now
            ]
            until = min([*deadlines, *([probes[order[0]].start_at] if order else [])], default=now)
            for reply, arrived in sock.receive(until):
                if reply.seq not in by_seq or by_seq[reply.seq][0] in done:
                    continue
                i, sent = by_seq[reply.seq]
                rtt = round((arrived - sent) * 1000.0, 3)
                done.add(i)
                if reply.kind == "echo_reply":
                    echoes[i] = PathEcho(REACHED, reply.sender, rtt)
                elif reply.kind == "ttl_exceeded":
                    echoes[i] = PathEcho(HOP, reply.sender, rtt)
                else:
                    echoes[i] = PathEcho(UNREACHABLE, reply.sender, rtt, reply.reason)
        return echoes

    return run


def _end(ttl_echoes: dict[int, list[PathEcho]]) -> int | None:
    """The first TTL where the path ends: the target answered, or an unreachable."""
    ends = [t for t, es in ttl_echoes.items() if any(e.kind in (REACHED, UNREACHABLE) for e in es)]
    return min(ends) if ends else None


def discover(prober: Prober, max_ttl: int, timeout_s: float) -> dict[int, list[PathEcho]]:
    """Cycle 0: TTLs in batches of :data:`BATCH` until the path ends, a whole batch stays
    silent, or ``max_ttl``."""
    found: dict[int, list[PathEcho]] = {}
    for first in range(1, max_ttl + 1, BATCH):
        ttls = range(first, min(first + BATCH, max_ttl + 1))
        now = time.monotonic()
        probes = [PathProbe(t, now + 0.002 * k) for k, t in enumerate(ttls)]
        for probe, echo in zip(probes, prober(probes, timeout_s), strict=True):
            found[probe.ttl] = [echo]
        end = _end(found)
        if end is not None:
            return {t: e for t, e in found.items() if t <= end}
        if all(found[t][0].kind == LOST for t in ttls):
            break  # a whole batch of silence: the path dies here (mtr's --max-unknown)
    return found


def hop_stats(ttl: int, echoes: list[PathEcho], end: int | None) -> Hop:
    """mtr's report columns for one TTL (StDev is the sample deviation, as mtr's)."""
    rtts = [e.rtt_ms for e in echoes if e.kind != LOST and e.rtt_ms is not None]
    senders = Counter(e.sender for e in echoes if e.kind != LOST and e.sender)
    answered = sum(1 for e in echoes if e.kind != LOST)
    reasons = [e.reason for e in echoes if e.kind == UNREACHABLE and e.reason]
    return Hop(
        ttl=ttl,
        address=senders.most_common(1)[0][0] if senders else None,
        sent=len(echoes),
        received=answered,
        loss_pct=round(100.0 * (len(echoes) - answered) / len(echoes), 1) if echoes else 0.0,
        last_ms=rtts[-1] if rtts else None,
        avg_ms=round(sum(rtts) / len(rtts), 3) if rtts else None,
        best_ms=min(rtts) if rtts else None,
        worst_ms=max(rtts) if rtts else None,
        stdev_ms=round(statistics.stdev(rtts), 3) if len(rtts) > 1 else (0.0 if rtts else None),
        addresses=tuple(sorted(senders)),
        reached=end == ttl and any(e.kind == REACHED for e in echoes),
        unreachable=Counter(reasons).most_common(1)[0][0] if reasons else None,
    )


def trace(
    address: str,
    mode: str = "icmp",
    port: int | None = None,
    cycles: int = 10,
    max_ttl: int = 30,
    interval_s: float = 1.0,
    timeout_s: float = 1.0,
) -> PathResult:
    """Trace the path to ``address`` over ``cycles`` cycles (mtr ``-r -c cycles``)."""
    sock: IcmpSocket | None = None
    try:
        if mode == "tcp":
            prober = tcp_prober(address, port or 80)
            # Wait less than the kernel's first SYN retransmission (1 s): a lost probe then
            # counts as lost, not as a 1-second answer (mtr --tcp shows it as latency).
            timeout_s = min(timeout_s, TCP_PROBE_TIMEOUT_S)
        else:
            sock = IcmpSocket(socket.AF_INET6 if ":" in address else socket.AF_INET)
            prober = icmp_prober(sock, address)
        start = time.monotonic()
        found = discover(prober, max_ttl, timeout_s)
        end = _end(found)
        last = end or max((t for t, es in found.items() if es[0].kind != LOST), default=0)
        # Unfinished path: keep one silent hop after the last answer, as mtr's "???".
        last = last if end else min(last + 1, max_ttl)
        # Cycle 1 starts one interval after cycle 0 (or at once if discovery took longer).
        base = max(time.monotonic(), start + interval_s)
        plan = [
            PathProbe(ttl, base + (c - 1) * interval_s + 0.002 * ttl)
            for c in range(1, cycles)
            for ttl in range(1, last + 1)
        ]
        for probe, echo in zip(plan, prober(plan, timeout_s) if plan else [], strict=True):
            found.setdefault(probe.ttl, []).append(echo)
    except FactUnavailable as exc:
        return PathResult(mode, address, cycles, (), False, port, error=str(exc))
    finally:
        if sock is not None:
            sock.close()
    # A probe lost in cycle 0 can make the target look one hop further than it is: the
    # target's true distance is the lowest TTL it ever answered at, over all cycles.
    end = _end(found)
    last = min(last, end) if end else last
    hops = tuple(hop_stats(t, found.get(t, []), end) for t in range(1, last + 1))
    return PathResult(
        mode=mode,
        destination=address,
        cycles=cycles,
        hops=hops,
        reached=any(h.reached for h in hops),
        port=port if mode == "tcp" else None,
    )

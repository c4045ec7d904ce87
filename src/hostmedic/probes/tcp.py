"""TCP port tests (seed 004: "telnet 目标服务器相应端口"), several connects per port.

Under packet loss a single connect fails at random, so each port gets ``attempts``
connects spread ``gap_s`` apart (all ports in one loop, concurrently) and
:func:`hostmedic.facts.probe.summarize_attempts` folds them: one handshake proves the
service is up, a refusal is a definite answer, only silence on every try is a timeout.
"""

from __future__ import annotations

import time

from hostmedic.facts.probe import UNREACHABLE, PortResult, TcpAttempt, summarize_attempts
from hostmedic.probes.connect import TTL_EXCEEDED, ConnectProbe, run_connects


def probe_ports(
    address: str,
    ports: tuple[int, ...],
    attempts: int = 3,
    timeout_s: float = 3.0,
    gap_s: float = 0.25,
) -> tuple[PortResult, ...]:
    """Connect ``attempts`` times to each port of ``address``; one result per port."""
    start = time.monotonic()
    plan = [(port, k) for k in range(attempts) for port in ports]
    probes = [ConnectProbe(address, port, start + k * gap_s) for port, k in plan]
    outcomes = run_connects(probes, timeout_s)
    by_port: dict[int, list[TcpAttempt]] = {port: [] for port in ports}
    for (port, _k), got in zip(plan, outcomes, strict=True):
        # a time-exceeded without a TTL limit of ours is a routing loop: unreachable
        outcome = UNREACHABLE if got.outcome == TTL_EXCEEDED else got.outcome
        by_port[port].append(TcpAttempt(outcome, got.elapsed_ms, got.detail))
    return tuple(summarize_attempts(address, port, tuple(by_port[port])) for port in ports)

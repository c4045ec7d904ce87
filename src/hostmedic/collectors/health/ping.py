"""Seed 004 ping section and tree node 1-B.1-B.1 ("ping your own gateway"): loss and
latency from this server to its default gateway.

This sends packets, so it only runs with ``--ping-gateway``. The gateway is read from
``/proc/net/route`` (IPv4 default route with the lowest metric); ``ping`` (iputils) runs
in the background during the sampling window and its summary is parsed.
"""

from __future__ import annotations

import re
import shutil
import socket
import struct
import subprocess

from hostmedic.errors import FactUnavailable, ParseError
from hostmedic.facts.health_storage import PingSummary

INTERVAL_S = 0.2  # the smallest interval iputils allows without root
_RTF_GATEWAY = 0x2


def parse_default_gateway(text: str) -> tuple[str, str]:
    """``/proc/net/route`` → (gateway address, interface) of the IPv4 default route."""
    best: tuple[int, str, str] | None = None
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 7:
            continue
        try:
            destination, gateway = int(parts[1], 16), int(parts[2], 16)
            flags, metric = int(parts[3], 16), int(parts[6])
        except ValueError:
            continue
        if destination != 0 or not flags & _RTF_GATEWAY or gateway == 0:
            continue
        address = socket.inet_ntoa(struct.pack("<I", gateway))
        if best is None or metric < best[0]:
            best = (metric, address, parts[0])
    if best is None:
        raise ParseError("no IPv4 default route with a gateway")
    return best[1], best[2]


_COUNTS = re.compile(
    r"(?P<sent>\d+) packets transmitted, (?P<received>\d+) (?:packets )?received.*?"
    r"(?P<loss>[\d.]+)% packet loss"
)
_RTT = re.compile(r"= (?P<min>[\d.]+)/(?P<avg>[\d.]+)/(?P<max>[\d.]+)/[\d.]+ ms")


def parse_ping(text: str) -> PingSummary:
    """The summary of iputils (or busybox) ``ping``; no reply at all has no rtt line."""
    counts = _COUNTS.search(text)
    if counts is None:
        raise ParseError(f"no ping summary in: {text[-120:]!r}")
    rtt = _RTT.search(text)
    lines = [line for line in text.splitlines() if "packets transmitted" in line or "rtt" in line]
    return PingSummary(
        sent=int(counts.group("sent")),
        received=int(counts.group("received")),
        loss_percent=float(counts.group("loss")),
        rtt_min_ms=float(rtt.group("min")) if rtt else None,
        rtt_avg_ms=float(rtt.group("avg")) if rtt else None,
        rtt_max_ms=float(rtt.group("max")) if rtt else None,
        summary=" | ".join(lines),
    )


class GatewayPing:
    """A ``ping`` to the default gateway running in the background."""

    def __init__(self, count: int, proc_root: str = "/proc") -> None:
        try:
            with open(f"{proc_root}/net/route", encoding="ascii", errors="replace") as f:
                self.gateway, self.interface = parse_default_gateway(f.read())
        except OSError as exc:
            raise FactUnavailable(str(exc), key="reason.health.no_gateway") from exc
        except ParseError as exc:
            raise FactUnavailable(str(exc), key="reason.health.no_gateway") from exc
        ping = shutil.which("ping")
        if ping is None:
            raise FactUnavailable("ping not found", key="reason.health.no_ping")
        # no -w: with a deadline ping keeps sending until it has `count` replies, and
        # the loss would be measured over more packets than asked for
        self.argv = [ping, "-n", "-q", "-c", str(count), "-i", str(INTERVAL_S), "-W", "1"]
        self.argv.append(self.gateway)
        self.timeout_s = count * INTERVAL_S + 10.0
        self._proc = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def result(self) -> PingSummary:
        """Wait for ping to finish and parse what it printed."""
        try:
            out, err = self._proc.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired as exc:
            self._proc.kill()
            self._proc.communicate()
            raise FactUnavailable("ping did not finish", key="reason.health.no_ping") from exc
        try:
            return parse_ping(out)
        except ParseError as exc:
            raise FactUnavailable(
                (err or out).strip()[:200] or str(exc), key="reason.health.no_ping"
            ) from exc

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.communicate()

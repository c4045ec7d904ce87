"""Interface byte and packet counters (/proc/net/dev) and link facts from /sys/class/net.

Counters include the link-layer header; hostmedic reports IP-level bytes (what iftop
counts), so the Ethernet header (14 bytes per packet on Ethernet and loopback devices)
is removed here, once, for every consumer. One exception, measured in the container lab:
a bridge device counts what it passes up to the host without the header (received
bytes are IP-level already) and what it sends with it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from hostmedic.errors import FactUnavailable, ParseError
from hostmedic.facts.bandwidth import Traffic

ETHERNET_HEADER_BYTES = 14
_ARPHRD_WITH_ETHERNET_HEADER = {1, 772}  # ARPHRD_ETHER, ARPHRD_LOOPBACK


@dataclass(frozen=True, slots=True)
class InterfaceCounters:
    name: str
    rx_bytes: int
    rx_packets: int
    tx_bytes: int
    tx_packets: int


def parse_net_dev(text: str) -> list[InterfaceCounters]:
    """Parse /proc/net/dev: two header lines, then ``name: rx(8 fields) tx(8 fields)``."""
    rows: list[InterfaceCounters] = []
    for line in text.splitlines()[2:]:
        if ":" not in line:
            continue
        name, _, data = line.partition(":")
        fields = data.split()
        if len(fields) < 16 or not all(f.isdigit() for f in fields[:16]):
            raise ParseError(f"bad /proc/net/dev line: {line!r}")
        v = [int(f) for f in fields[:16]]
        rows.append(InterfaceCounters(name.strip(), v[0], v[1], v[8], v[9]))
    return rows


def ip_level(
    counters: InterfaceCounters, link_header_bytes: int, rx_header_bytes: int | None = None
) -> Traffic:
    """Interface counters with the link-layer header of every packet removed (received
    packets: ``rx_header_bytes`` when it differs)."""
    rx_header = link_header_bytes if rx_header_bytes is None else rx_header_bytes
    return Traffic(
        tx_bytes=counters.tx_bytes - link_header_bytes * counters.tx_packets,
        rx_bytes=counters.rx_bytes - rx_header * counters.rx_packets,
        tx_packets=counters.tx_packets,
        rx_packets=counters.rx_packets,
    )


def _read_sys(name: str, attribute: str) -> str | None:
    try:
        with open(f"/sys/class/net/{name}/{attribute}", encoding="ascii") as f:
            return f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def link_header_bytes(name: str) -> int:
    """14 for Ethernet-framed devices (incl. veth and lo), 0 for tun/wireguard/ipip."""
    kind = _read_sys(name, "type")
    if kind is None or not kind.isdigit():
        return ETHERNET_HEADER_BYTES
    return ETHERNET_HEADER_BYTES if int(kind) in _ARPHRD_WITH_ETHERNET_HEADER else 0


def link_speed_mbit(name: str) -> int | None:
    """Negotiated speed, or None where the driver does not say (veth, most virtio NICs)."""
    raw = _read_sys(name, "speed")
    try:
        speed = int(raw) if raw is not None else -1
    except ValueError:
        return None
    return speed if speed > 0 else None


def read_net_dev(proc_net_dev: str = "/proc/net/dev") -> str:
    """The raw counters text: one read, taken at the moment that matters (the tick)."""
    try:
        with open(proc_net_dev, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise FactUnavailable(
            f"cannot read {proc_net_dev}: {exc.strerror}",
            key="reason.unreadable",
            path=proc_net_dev,
        ) from exc


def interface_traffic(text: str) -> dict[str, Traffic]:
    """IP-level cumulative counters of every interface in ``text`` (/proc/net/dev of
    this network namespace: the link facts come from this namespace's /sys)."""
    out = {}
    for r in parse_net_dev(text):
        header = link_header_bytes(r.name)
        bridge = os.path.isdir(f"/sys/class/net/{r.name}/bridge")
        out[r.name] = ip_level(r, header, 0 if bridge else header)
    return out


def read_interface_traffic(proc_net_dev: str = "/proc/net/dev") -> dict[str, Traffic]:
    """IP-level cumulative counters of every interface in this network namespace."""
    return interface_traffic(read_net_dev(proc_net_dev))

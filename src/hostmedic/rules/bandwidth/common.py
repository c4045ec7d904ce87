"""Helpers shared by the bandwidth rules: who matters, and how to cite a row as evidence."""

from __future__ import annotations

from typing import TypeVar

from hostmedic.facts.bandwidth import BandwidthFacts, ProcessUsage, RemoteUsage
from hostmedic.model import Evidence
from hostmedic.settings import Settings

SOURCE_SOCKETS = "sock_diag tcp_info + udp/icmp counters (eBPF) + /proc"


Row = TypeVar("Row", ProcessUsage, RemoteUsage)


def significant(rows: tuple[Row, ...], settings: Settings) -> list[Row]:
    """The top rows that carry at least ``min_share`` of all attributed bytes."""
    total = sum(r.traffic.total_bytes for r in rows)
    if total <= 0:
        return []
    return [
        r
        for r in rows[: settings.top_n]
        if r.traffic.total_bytes / total >= settings.min_share and r.traffic.total_bytes > 0
    ]


def process_evidence(row: ProcessUsage, facts: BandwidthFacts) -> Evidence:
    info = row.info
    exe = (info.exe or "-") + (" (deleted)" if info and info.exe_deleted else "") if info else "-"
    argv = " ".join(info.cmdline) if info else ""
    remotes = ", ".join(row.remote_ips[:5]) + (" …" if len(row.remote_ips) > 5 else "")
    excerpt = (
        f"pid={row.pid} name={info.name if info else '?'} exe={exe} cmdline={argv!r} "
        f"tx_bytes={row.traffic.tx_bytes} rx_bytes={row.traffic.rx_bytes} "
        f"tx_packets={row.traffic.tx_packets} rx_packets={row.traffic.rx_packets} "
        f"remotes={len(row.remote_ips)} [{remotes}] window_s={facts.duration_s:.1f}"
    )
    return Evidence(SOURCE_SOCKETS, excerpt, facts.read_at)


def remote_evidence(row: RemoteUsage, facts: BandwidthFacts) -> Evidence:
    excerpt = (
        f"ip={row.ip} country={row.country or '?'} home={facts.home_country or '?'} "
        f"tx_bytes={row.traffic.tx_bytes} rx_bytes={row.traffic.rx_bytes} "
        f"pids={','.join(map(str, row.pids)) or '?'} window_s={facts.duration_s:.1f}"
    )
    return Evidence(SOURCE_SOCKETS, excerpt, facts.read_at)

"""Turn a ledger into the bandwidth facts the rules and views use: ranked processes,
remotes, flows and interfaces with their windows, plus the unattributed bucket.

Pure: process details and the country of each address come in as arguments.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping

from hostmedic.analysis.accounting import Ledger
from hostmedic.facts.bandwidth import (
    BandwidthFacts,
    ContainerInfo,
    ContainerUsage,
    FlowUsage,
    InterfaceUsage,
    ProcessInfo,
    ProcessUsage,
    RemoteUsage,
    Traffic,
)

Row = FlowUsage | ProcessUsage | RemoteUsage | InterfaceUsage | ContainerUsage


def _by_total(row: Row) -> tuple[int, str]:
    return (-row.traffic.total_bytes, repr(getattr(row, "pid", getattr(row, "ip", ""))))


def _clamped(t: Traffic) -> Traffic:
    """A negative gap means the sockets were read a moment after the counters: no gap."""
    return Traffic(
        max(t.tx_bytes, 0), max(t.rx_bytes, 0), max(t.tx_packets, 0), max(t.rx_packets, 0)
    )


def build_facts(
    ledger: Ledger,
    *,
    processes: Mapping[int, ProcessInfo],
    country_of: Callable[[str], str | None],
    home_country: str | None,
    link_speeds_mbit: Mapping[str, int | None] | None = None,
    not_counted: tuple[tuple[str, str], ...] = (),
    capture_drops: int = 0,
    read_at: float = 0.0,
    containers: Mapping[int, ContainerInfo] | None = None,
    host_netns: int | None = None,
) -> BandwidthFacts:
    """Roll the ledger up into :class:`BandwidthFacts` (traffic = since the ledger started).

    ``containers`` describes the monitored namespaces other than the host's own
    (``host_netns``); each one that carried traffic gets a row."""
    now, starts = ledger.now_s, ledger.window_starts()
    flows = sorted(
        (FlowUsage(k, s.cumulative, s.rates(now, starts)) for k, s in ledger.flows.items()),
        key=_by_total,
    )
    remote_ips: dict[tuple[int | None, int], set[str]] = defaultdict(set)
    flow_counts: dict[tuple[int | None, int], int] = defaultdict(int)
    pids_of_remote: dict[str, set[int]] = defaultdict(set)
    for f in flows:
        owner = (f.key.pid, f.key.netns_inode)
        remote_ips[owner].add(f.key.remote_ip)
        flow_counts[owner] += 1
        if f.key.pid is not None:
            pids_of_remote[f.key.remote_ip].add(f.key.pid)
    process_rows = sorted(
        (
            ProcessUsage(
                pid=pid,
                info=processes.get(pid) if pid is not None else None,
                traffic=s.cumulative,
                rates=s.rates(now, starts),
                remote_ips=tuple(sorted(remote_ips[(pid, netns)])),
                flow_count=flow_counts[(pid, netns)],
                netns_inode=netns,
            )
            for (pid, netns), s in ledger.processes.items()
        ),
        key=_by_total,
    )
    remote_rows = []
    for ip, s in ledger.remotes.items():
        country = country_of(ip)
        abroad = None if country is None or home_country is None else country != home_country
        remote_rows.append(
            RemoteUsage(
                ip=ip,
                traffic=s.cumulative,
                rates=s.rates(now, starts),
                pids=tuple(sorted(pids_of_remote[ip])),
                country=country,
                abroad=abroad,
            )
        )
    speeds = link_speeds_mbit or {}
    gaps = {name: _clamped(s.cumulative) for name, s in ledger.unattributed.items()}
    interface_rows = sorted(
        (
            InterfaceUsage(
                name,
                s.cumulative,
                s.rates(now, starts),
                speeds.get(name),
                gaps.get(name, Traffic()),
            )
            for name, s in ledger.interfaces.items()
            if name != "lo"
        ),
        key=_by_total,
    )
    unattributed = Traffic()
    for row in interface_rows:
        unattributed = unattributed + row.unattributed
    pids_in: dict[int, set[int]] = defaultdict(set)
    flows_in: dict[int, int] = defaultdict(int)
    for f in flows:
        flows_in[f.key.netns_inode] += 1
        if f.key.pid is not None:
            pids_in[f.key.netns_inode].add(f.key.pid)
    container_rows = [
        ContainerUsage(
            info,
            ledger.namespaces[netns].cumulative,
            ledger.namespaces[netns].rates(now, starts),
            tuple(sorted(pids_in[netns])),
            flows_in[netns],
        )
        for netns, info in (containers or {}).items()
        if netns in ledger.namespaces
    ]
    return BandwidthFacts(
        duration_s=ledger.elapsed_s,
        flows=tuple(flows),
        processes=tuple(process_rows),
        remotes=tuple(sorted(remote_rows, key=_by_total)),
        interfaces=tuple(interface_rows),
        unattributed=unattributed,
        not_counted=not_counted,
        home_country=home_country,
        capture_drops=capture_drops,
        read_at=read_at,
        containers=tuple(sorted(container_rows, key=_by_total)),
        host_netns=host_netns,
    )

"""Thresholds and options of the host-health checks (seed 004: CPU, memory, disk,
databases, mounts, ping), as data: defaults here, overridable in the config file's
``[health]`` table, never magic numbers inside rules.

``mounts`` (``--mount PATH``) and ``ping_gateway`` (``--ping-gateway``) are options of
``hostmedic diagnose``: the busy-mount check needs a mount the operator names, and the
gateway ping sends packets, so it only runs when asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hostmedic.settings_table import build_section


@dataclass(frozen=True, slots=True)
class HealthSettings:
    """Every threshold of the health rules (percentages are 0-100)."""

    # options
    mounts: tuple[str, ...] = ()
    ping_gateway: bool = False
    ping_count: int = 25
    # CPU (cpu percentages of a process are of one core, like top)
    cpu_full_percent: float = 90.0
    cpu_consumer_min_share_percent: float = 10.0
    suspicious_min_cpu_percent: float = 20.0
    load_per_core_warning: float = 2.0
    load_per_core_critical: float = 4.0
    steal_warning_percent: float = 10.0
    steal_critical_percent: float = 30.0
    runaway_thread_percent: float = 90.0
    runaway_min_observed_s: float = 2.0
    fork_rate_warning_per_s: float = 200.0
    fork_rate_critical_per_s: float = 1000.0
    process_growth_warning: int = 500
    zombies_per_parent_warning: int = 20
    zombies_total_critical: int = 1000
    tasks_limit_warning_share: float = 0.80
    tasks_limit_critical_share: float = 0.95
    # memory
    mem_available_warning_percent: float = 10.0
    mem_available_critical_percent: float = 5.0
    psi_some_avg10_warning: float = 20.0
    psi_full_avg10_critical: float = 10.0
    swap_used_warning_percent: float = 50.0
    swap_io_warning_pages_per_s: float = 100.0
    oom_lookback_hours: float = 24.0
    rss_growth_min_bytes: int = 64 * 1024 * 1024
    rss_growth_min_percent: float = 20.0
    # disk
    disk_used_warning_percent: float = 90.0
    disk_used_critical_percent: float = 97.0
    inodes_used_warning_percent: float = 90.0
    inodes_used_critical_percent: float = 97.0
    log_growth_warning_bytes_per_s: float = 1024 * 1024
    fill_critical_hours: float = 6.0
    log_recent_hours: float = 24.0
    log_walk_max_entries: int = 20000
    log_walk_max_s: float = 1.0
    deleted_open_min_bytes: int = 100 * 1024 * 1024
    # databases
    db_connections_warning_percent: float = 80.0
    db_connections_critical_percent: float = 95.0
    db_lock_wait_warning_s: float = 10.0
    db_lock_waits_critical: int = 10
    db_log_tail_bytes: int = 4 * 1024 * 1024
    # a client defaults file with a credential (e.g. /etc/mysql/debian.cnf); else root's
    # own unix_socket login / ~/.my.cnf
    mysql_defaults_file: str = ""
    # the OS user psql runs as (peer login); else the owner of the server process
    postgres_user: str = ""
    # gateway ping
    ping_loss_warning_percent: float = 5.0
    ping_loss_critical_percent: float = 20.0
    ping_rtt_warning_ms: float = 20.0


_OPTIONS = {"mounts", "ping_gateway"}


def build_health_settings(table: Any) -> HealthSettings:
    """``[health]`` of the config file → settings (``--mount``/``--ping-gateway`` are
    options, not config keys)."""
    return build_section(HealthSettings, table, "health", frozenset(_OPTIONS))

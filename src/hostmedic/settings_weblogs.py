"""Thresholds and options of the web-log checks, as data: defaults here, overridable in the
config file's ``[weblogs]`` table, never magic numbers inside rules.

Rates are requests per minute of the log's own clock. The defaults are deliberately
above what one browser or one office behind NAT produces (a page view with its assets is
50-150 requests, spread over seconds), and below what nginx's usual ``limit_req`` of
10 r/s per address would start refusing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hostmedic.settings_table import build_section


@dataclass(frozen=True, slots=True)
class WeblogSettings:
    """Every threshold of the web-log rules (shares are 0-1)."""

    # which logs, and the window
    paths: tuple[str, ...] = ()
    site_hosts: tuple[str, ...] = ()
    window_s: int = 3600
    jobs: int = 0  # 0: one worker per CPU, at most 2 (the machine is shared with the site)
    use_forwarded_for: bool = False  # behind a load balancer / CDN: the client is in XFF
    # CC attack: few addresses bursting, or many addresses on one URL
    ip_per_minute_warning: int = 300
    ip_per_minute_critical: int = 1200
    ip_share_critical: float = 0.30
    url_per_minute: int = 600
    url_min_ips: int = 50
    url_repeat_per_ip: float = 3.0
    # crawlers
    crawler_share_warning: float = 0.30
    crawler_min_requests: int = 500
    # big downloads (by bytes)
    download_share_warning: float = 0.30
    download_min_bytes: int = 100 * 1024 * 1024
    # hot-linking
    hotlink_share_warning: float = 0.10
    hotlink_min_bytes: int = 50 * 1024 * 1024
    hotlink_min_requests: int = 100
    # HTTP errors
    server_error_share_warning: float = 0.02
    server_error_share_critical: float = 0.20
    server_error_min_requests: int = 20
    not_found_share_warning: float = 0.20
    not_found_min_requests: int = 200
    spike_minute_share: float = 0.50
    spike_minute_min_requests: int = 30
    # findings about a window that ended this long before the run are at most warnings
    stale_after_s: int = 86400
    top_n: int = 10


def build_weblog_settings(table: dict[str, Any]) -> WeblogSettings:
    """``[weblogs]`` of the config file → settings."""
    return build_section(WeblogSettings, table, "weblogs")

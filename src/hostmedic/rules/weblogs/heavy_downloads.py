"""Rule: big files (mp3, flv, swf, zip, exe…) are not what carries most of the site's
bytes.

Seed 004 §爬虫: "also check whether big files such as MP3, flv, swf are frequently
downloaded; if so, reduce them, use OSS and CDN"; §网站页面设计不合理: ".mp3, .rar,
.zip, .exe downloads, video and audio playback". The kinds are data (data/weblogs.toml).
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.weblogs import WeblogFacts
from hostmedic.model import Finding, Severity
from hostmedic.rules.weblogs.common import percent, problem, require, window_evidence
from hostmedic.settings import Settings


@rule(
    "weblogs.heavy_downloads",
    category="weblogs",
    runbook_ref="seed 004 §爬虫 (MP3/flv/swf 大文件 → OSS/CDN); §网站页面设计不合理",
)
def heavy_downloads(weblogs: WeblogFacts, settings: Settings) -> Iterator[Finding]:
    """Downloads and media make less than 30 % of the bytes sent (or under 100 MiB)."""
    require(weblogs, "has_bytes", "reason.weblogs.no_bytes")
    s = settings.weblogs
    downloads = next((k for k in weblogs.kinds if k.kind == "download"), None)
    if downloads is None or downloads.bytes_sent < s.download_min_bytes:
        return
    share = downloads.bytes_sent / max(weblogs.bytes_sent, 1)
    if share < s.download_share_warning:
        return
    heavy = [p for p in weblogs.paths_by_bytes if p.kind == "download"]
    params = {
        "percent": percent(share, 1),
        "sent_bytes": downloads.bytes_sent,
        "requests": downloads.requests,
        "paths": ", ".join(p.path for p in heavy[:3]),
    }
    found = window_evidence(
        weblogs,
        (
            f"path={p.path!r} kind={p.kind} requests={p.requests} bytes={p.bytes_sent} "
            f"share_of_bytes={percent(p.bytes_sent, weblogs.bytes_sent)}%"
            for p in heavy[:5]
        ),
    )
    yield problem(
        weblogs,
        settings,
        "weblogs.heavy_downloads",
        Severity.WARNING,
        "finding.weblogs.heavy_downloads.title",
        params,
        found,
        "remedy.weblogs.heavy_downloads",
    )

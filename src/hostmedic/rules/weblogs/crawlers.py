"""Rule: search-engine and SEO crawlers take a modest share of the site's requests and
bytes.

Seed 004 §爬虫: "analyse the access log; too many baiduspider or googlebot entries mean
the pages are being crawled, which runs the bandwidth high" (`grep baidu access.log`);
§CPU跑满: "当时有搜索引擎爬虫大面积爬取网站". Crawlers are recognised by their
User-Agent (data/crawlers.toml); the evidence names their addresses, since a
User-Agent can be forged.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.weblogs import WeblogFacts
from hostmedic.model import Finding, Severity
from hostmedic.rules.weblogs.common import percent, problem, require, top_list, window_evidence
from hostmedic.settings import Settings


@rule("weblogs.crawlers", category="weblogs", runbook_ref="seed 004 §爬虫; §CPU跑满 (搜索引擎爬虫)")
def crawlers(weblogs: WeblogFacts, settings: Settings) -> Iterator[Finding]:
    """Crawlers make less than 30 % of the requests and of the bytes sent."""
    require(weblogs, "has_user_agent", "reason.weblogs.no_user_agent")
    s = settings.weblogs
    requests = sum(c.requests for c in weblogs.crawlers)
    sent = sum(c.bytes_sent for c in weblogs.crawlers)
    share = max(requests / max(weblogs.requests, 1), sent / max(weblogs.bytes_sent, 1))
    if requests < s.crawler_min_requests or share < s.crawler_share_warning:
        return
    ranked = sorted(weblogs.crawlers, key=lambda c: -c.requests)
    shares = ((c.name, percent(c.requests, weblogs.requests)) for c in ranked)
    params = {
        "requests_percent": percent(requests, weblogs.requests),
        "bytes_percent": percent(sent, weblogs.bytes_sent),
        "crawlers": top_list(shares, 4).replace(")", " %)"),
        "requests": requests,
        "sent_bytes": sent,
    }
    found = window_evidence(
        weblogs,
        (
            f"crawler={c.name} requests={c.requests} bytes={c.bytes_sent} "
            f"addresses={c.distinct_ips} top_addresses=[{top_list(c.top_ips, 5)}]"
            for c in ranked[:5]
        ),
    )
    yield problem(
        weblogs,
        settings,
        "weblogs.crawlers",
        Severity.WARNING,
        "finding.weblogs.crawlers.title",
        params,
        found,
        "remedy.weblogs.crawlers",
    )

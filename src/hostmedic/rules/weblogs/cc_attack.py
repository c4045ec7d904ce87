"""Rule: no CC attack — no address bursts far above what a visitor sends, and no URL is
hammered by many addresses at once.

Seed 004 §被CC攻击 ("the server is attacked with large numbers of HTTP GET/POST requests
that take its resources, so normal requests are slow or fail"), §网络攻击 (DDoS/CC makes
bandwidth run full), §CPU跑满 ("受到了CC攻击或Web攻击"). The log shows two shapes: a few
addresses each sending hundreds of requests a minute, or a swarm of addresses on one URL
(often with random query strings to get past caches, hence paths without the query).
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.weblogs import WeblogFacts
from hostmedic.model import Finding, Severity
from hostmedic.rules.weblogs.common import clock, evidence, percent, problem
from hostmedic.settings import Settings

RULE = "weblogs.cc_attack"
RUNBOOK = "seed 004 §被CC攻击; §网络攻击; §CPU跑满 (CC攻击)"


@rule(RULE, category="weblogs", runbook_ref=RUNBOOK)
def cc_attack(weblogs: WeblogFacts, settings: Settings) -> Iterator[Finding]:
    """No address sends more than ~300 requests a minute, and no URL gets 600+ a minute
    from 50+ addresses."""
    s = settings.weblogs
    bursting = [c for c in weblogs.clients if c.peak_minute_requests >= s.ip_per_minute_warning]
    if bursting:
        share = sum(c.requests for c in bursting) / max(weblogs.requests, 1)
        worst = max(bursting, key=lambda c: c.peak_minute_requests)
        severe = worst.peak_minute_requests >= s.ip_per_minute_critical
        params = {
            "count": len(bursting),
            "ips": ", ".join(c.ip for c in bursting[:5]),
            "peak_per_minute": worst.peak_minute_requests,
            "at": clock(weblogs, worst.peak_minute_s),
            "path": worst.top_path,
            "percent": percent(share, 1),
        }
        found = tuple(
            evidence(
                weblogs,
                c.lines,
                f"ip={c.ip} minute={clock(weblogs, c.peak_minute_s)} "
                f"requests_in_minute={c.peak_minute_requests} top_path={c.top_path!r} "
                f"({c.top_path_requests}) requests_in_window={c.requests} "
                f"bytes_in_window={c.bytes_sent} crawler={c.crawler or '-'}",
            )
            for c in sorted(bursting, key=lambda c: -c.peak_minute_requests)[:5]
        )
        yield problem(
            weblogs,
            settings,
            RULE,
            Severity.CRITICAL if severe or share >= s.ip_share_critical else Severity.WARNING,
            "finding.weblogs.cc_attack.few_ips.title",
            params,
            found,
            "remedy.weblogs.cc_attack.few_ips",
        )
    for burst in weblogs.path_bursts:
        if burst.requests < s.url_per_minute or burst.distinct_ips < s.url_min_ips:
            continue
        repeat = burst.requests / burst.distinct_ips
        at = clock(weblogs, burst.minute_s)
        params = {
            "path": burst.path,
            "per_minute": burst.requests,
            "ips": burst.distinct_ips,
            "at": at,
            "repeat": f"{repeat:.1f}",
        }
        excerpt = (
            f"path={burst.path!r} minute={at} requests_in_minute={burst.requests} "
            f"distinct_ips={burst.distinct_ips} top_ip={burst.top_ip} "
            f"({burst.top_ip_requests}) requests_in_window={burst.window_requests}"
        )
        yield problem(
            weblogs,
            settings,
            RULE,
            Severity.CRITICAL if repeat >= s.url_repeat_per_ip else Severity.WARNING,
            "finding.weblogs.cc_attack.one_url.title",
            params,
            (evidence(weblogs, burst.lines, excerpt),),
            "remedy.weblogs.cc_attack.one_url",
        )

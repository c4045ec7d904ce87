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
from hostmedic.model import Finding, Severity, Status
from hostmedic.rules.weblogs.common import cap, clock, evidence, percent
from hostmedic.settings import Settings

RUNBOOK = "seed 004 §被CC攻击; §网络攻击; §CPU跑满 (CC攻击)"


@rule("weblogs.cc_attack", category="weblogs", runbook_ref=RUNBOOK)
def cc_attack(weblogs: WeblogFacts, settings: Settings) -> Iterator[Finding]:
    """No address sends more than ~300 requests a minute, and no URL gets 600+ a minute
    from 50+ addresses."""
    s = settings.weblogs
    bursting = [c for c in weblogs.clients if c.peak_minute_requests >= s.ip_per_minute_warning]
    if bursting:
        share = sum(c.requests for c in bursting) / max(weblogs.requests, 1)
        worst = max(c.peak_minute_requests for c in bursting)
        severe = worst >= s.ip_per_minute_critical or share >= s.ip_share_critical
        top = max(bursting, key=lambda c: c.peak_minute_requests)
        yield Finding(
            rule_id="weblogs.cc_attack",
            severity=cap(Severity.CRITICAL if severe else Severity.WARNING, weblogs, settings),
            status=Status.FAILED,
            title_key="finding.weblogs.cc_attack.few_ips.title",
            params={
                "count": len(bursting),
                "ips": ", ".join(c.ip for c in bursting[:5]),
                "peak_per_minute": worst,
                "at": clock(weblogs, top.peak_minute_s),
                "path": top.top_path,
                "percent": percent(share, 1),
            },
            evidence=tuple(
                evidence(
                    weblogs,
                    c.lines,
                    f"ip={c.ip} minute={clock(weblogs, c.peak_minute_s)} "
                    f"requests_in_minute={c.peak_minute_requests} top_path={c.top_path!r} "
                    f"({c.top_path_requests}) requests_in_window={c.requests} "
                    f"bytes_in_window={c.bytes_sent}"
                    + (f" user_agent={c.crawler}" if c.crawler else ""),
                )
                for c in sorted(bursting, key=lambda c: -c.peak_minute_requests)[:5]
            ),
            remedy_key="remedy.weblogs.cc_attack.few_ips",
        )
    for burst in weblogs.path_bursts:
        if burst.requests < s.url_per_minute or burst.distinct_ips < s.url_min_ips:
            continue
        repeat = burst.requests / burst.distinct_ips
        severity = Severity.CRITICAL if repeat >= s.url_repeat_per_ip else Severity.WARNING
        yield Finding(
            rule_id="weblogs.cc_attack",
            severity=cap(severity, weblogs, settings),
            status=Status.FAILED,
            title_key="finding.weblogs.cc_attack.one_url.title",
            params={
                "path": burst.path,
                "per_minute": burst.requests,
                "ips": burst.distinct_ips,
                "at": clock(weblogs, burst.minute_s),
                "repeat": f"{repeat:.1f}",
            },
            evidence=(
                evidence(
                    weblogs,
                    burst.lines,
                    f"path={burst.path!r} minute={clock(weblogs, burst.minute_s)} "
                    f"requests_in_minute={burst.requests} distinct_ips={burst.distinct_ips} "
                    f"top_ip={burst.top_ip} ({burst.top_ip_requests}) "
                    f"requests_in_window={burst.window_requests}",
                ),
            ),
            remedy_key="remedy.weblogs.cc_attack.one_url",
        )

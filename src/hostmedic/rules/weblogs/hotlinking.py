"""Rule: other sites do not embed or link the site's images and downloads at scale.

Seed 004 §CPU跑满: "网站被盗链" (the site is hot-linked). A request for an image or a
download whose Referer is a page of another site is that other site's visitor using
this server's bandwidth. The site's own host names come from the web server's
``server_name`` / ``ServerName`` (or ``--site-host``), else from the host that refers
most of its CSS/JS/images.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.errors import FactUnavailable
from hostmedic.facts.weblogs import WeblogFacts
from hostmedic.model import Finding, Severity, Status
from hostmedic.rules.weblogs.common import cap, evidence, percent, top_list, window_spans
from hostmedic.settings import Settings


@rule("weblogs.hotlinking", category="weblogs", runbook_ref="seed 004 §CPU跑满 (网站被盗链)")
def hotlinking(weblogs: WeblogFacts, settings: Settings) -> Iterator[Finding]:
    """Images and downloads referred by other sites make under 10 % of the bytes sent."""
    readable = [s for s in weblogs.sources if not s.skipped_key]
    if not any(s.has_referer for s in readable):
        raise FactUnavailable("no Referer in the log format", key="reason.weblogs.no_referer")
    if not weblogs.own_hosts:
        raise FactUnavailable(
            "the site's own host is unknown", key="reason.weblogs.own_host_unknown"
        )
    s = settings.weblogs
    share = weblogs.hotlink_bytes / max(weblogs.bytes_sent, 1)
    if weblogs.hotlink_bytes < s.hotlink_min_bytes or share < s.hotlink_share_warning:
        return
    yield Finding(
        rule_id="weblogs.hotlinking",
        severity=cap(Severity.WARNING, weblogs, settings),
        status=Status.FAILED,
        title_key="finding.weblogs.hotlinking.title",
        params={
            "percent": percent(share, 1),
            "sent_bytes": weblogs.hotlink_bytes,
            "requests": weblogs.hotlink_requests,
            "hosts": ", ".join(r.host for r in weblogs.referers[:3]),
            "own_hosts": ", ".join(weblogs.own_hosts),
        },
        evidence=tuple(
            evidence(
                weblogs,
                window_spans(weblogs),
                f"referer_host={r.host} requests={r.requests} bytes={r.bytes_sent} "
                f"paths=[{top_list(r.top_paths)}] own_hosts={','.join(weblogs.own_hosts)}"
                + (" (inferred)" if weblogs.own_hosts_inferred else ""),
            )
            for r in weblogs.referers[:5]
        ),
        remedy_key="remedy.weblogs.hotlinking",
    )

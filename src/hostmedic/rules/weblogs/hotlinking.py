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
from hostmedic.model import Finding, Severity
from hostmedic.rules.weblogs.common import percent, problem, require, top_list, window_evidence
from hostmedic.settings import Settings


@rule("weblogs.hotlinking", category="weblogs", runbook_ref="seed 004 §CPU跑满 (网站被盗链)")
def hotlinking(weblogs: WeblogFacts, settings: Settings) -> Iterator[Finding]:
    """Images and downloads referred by other sites make under 10 % of the bytes sent."""
    require(weblogs, "has_referer", "reason.weblogs.no_referer")
    if not weblogs.own_hosts:
        raise FactUnavailable("own host unknown", key="reason.weblogs.own_host_unknown")
    s = settings.weblogs
    share = weblogs.hotlink_bytes / max(weblogs.bytes_sent, 1)
    if weblogs.hotlink_bytes < s.hotlink_min_bytes or share < s.hotlink_share_warning:
        return
    own = ",".join(weblogs.own_hosts) + (" (inferred)" if weblogs.own_hosts_inferred else "")
    params = {
        "percent": percent(share, 1),
        "sent_bytes": weblogs.hotlink_bytes,
        "requests": weblogs.hotlink_requests,
        "hosts": ", ".join(r.host for r in weblogs.referers[:3]),
        "own_hosts": ", ".join(weblogs.own_hosts),
    }
    found = window_evidence(
        weblogs,
        (
            f"referer_host={r.host} requests={r.requests} bytes={r.bytes_sent} "
            f"paths=[{top_list(r.top_paths)}] own_hosts={own}"
            for r in weblogs.referers[:5]
        ),
    )
    yield problem(
        weblogs,
        settings,
        "weblogs.hotlinking",
        Severity.WARNING,
        "finding.weblogs.hotlinking.title",
        params,
        found,
        "remedy.weblogs.hotlinking",
    )

"""Rule: nobody logged in from abroad.

Seed 004 §排查并修复服务器漏洞 2: "check whether the server has logins from another place;
if so, change the password to a strong one". Countries come from the offline geolocation
database (as for the bandwidth runbook's remote addresses); home is ``--home-country`` or
the country of the server's own public address.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.errors import FactUnavailable
from hostmedic.facts.security import Login, LoginFacts
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.security.common import failed, stamp


@rule("security.login_abroad", category="security", runbook_ref="004 §排查并修复服务器漏洞 2")
def login_abroad(security_logins: LoginFacts) -> Iterator[Finding]:
    """Every successful remote login came from the server's home country."""
    facts = security_logins
    located = [x for x in facts.logins if x.country]
    if located and facts.home_country is None:
        raise FactUnavailable("home country unknown", key="reason.home_country_unknown")
    seen: dict[tuple[str, str], list[Login]] = {}
    for login in located:
        if login.country != facts.home_country:
            seen.setdefault((login.user, login.host), []).append(login)
    for (user, host), logins in seen.items():
        last = logins[-1]
        yield failed(
            "security.login_abroad",
            Severity.WARNING,
            {
                "user": user,
                "ip": host,
                "country": last.country or "?",
                "home_country": facts.home_country or "?",
                "count": len(logins),
            },
            [
                Evidence(
                    x.source,
                    f"{x.method} login of {x.user} from {x.host} ({x.country}) at {stamp(x.time)}",
                    facts.read_at,
                )
                for x in logins[-3:]
            ],
        )

"""Rule: nobody is guessing passwords, and no guesser got in.

Seed 004 §账户 Linux 1 (last / lastb / /var/log/secure) and 4 (simple passwords are easily
cracked); the seed's closing list names "serious brute-forcing of the server's password".
Many failures from one address are a brute-force run; one user tried from many addresses
is a distributed one; a success from an address after its failures means it got in.
"""

from __future__ import annotations

from collections.abc import Iterator

from hostmedic.engine import rule
from hostmedic.facts.security import FailureGroup, Login, LoginFacts
from hostmedic.model import Evidence, Finding, Severity
from hostmedic.rules.security.common import failed, stamp

MIN_FAILURES = 10  # from one address
MIN_ADDRESSES = 10  # trying one user
SHOWN = 5


def _group_evidence(g: FailureGroup, facts: LoginFacts, what: str) -> list[Evidence]:
    excerpt = (
        f"{g.key}{f' ({g.country})' if g.country else ''}: {g.count} failed logins "
        f"{stamp(g.first_time)} → {stamp(g.last_time)}, {g.distinct_others} {what}: "
        f"{', '.join(g.others)}{' …' if g.distinct_others > len(g.others) else ''}"
    )
    return [Evidence(source, excerpt, facts.read_at) for source in g.sources]


def _break_in(g: FailureGroup, logins: tuple[Login, ...]) -> Login | None:
    return next(
        (x for x in logins if x.host == g.key and (g.first_time is None or x.time >= g.first_time)),
        None,
    )


@rule(
    "security.brute_force",
    category="security",
    runbook_ref="004 §账户 Linux 1, 4; §排查并修复服务器漏洞 2",
)
def brute_force(security_logins: LoginFacts) -> Iterator[Finding]:
    """No address failed 10+ logins, no user was tried from 10+ addresses, and no address
    that failed logged in afterwards."""
    facts = security_logins
    guessers = [g for g in facts.failures_by_host if g.count >= MIN_FAILURES]
    quiet = []
    for g in guessers:
        login = _break_in(g, facts.logins)
        if login is None:
            quiet.append(g)
            continue
        yield failed(
            "security.brute_force",
            Severity.CRITICAL,
            {"ip": g.key, "failures": g.count, "user": login.user, "method": login.method},
            [
                *_group_evidence(g, facts, "users"),
                Evidence(
                    login.source,
                    f"accepted {login.method} for {login.user} from "
                    f"{login.host} at {stamp(login.time)}",
                    facts.read_at,
                ),
            ],
            "broke_in",
        )
    if quiet:
        yield failed(
            "security.brute_force",
            Severity.WARNING,
            {
                "addresses": len(quiet),
                "failures": sum(g.count for g in quiet),
                "top": ", ".join(f"{g.key} ({g.count})" for g in quiet[:SHOWN]),
            },
            [e for g in quiet[:SHOWN] for e in _group_evidence(g, facts, "users")],
            "by_address",
        )
    for g in facts.failures_by_user:
        if g.distinct_others >= MIN_ADDRESSES:
            yield failed(
                "security.brute_force",
                Severity.WARNING,
                {"user": g.key, "addresses": g.distinct_others, "failures": g.count},
                _group_evidence(g, facts, "addresses"),
                "by_user",
            )

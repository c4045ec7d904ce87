"""The ``security`` category's collection (seed 004: is the server compromised?).

Every group of facts is read on its own, so one unreadable source only skips the checks
that need it. File-based groups read through :class:`RootFS` and so also run against a
mounted disk (``--root``); live groups (processes, listening sockets, service probes)
need the running machine and are skipped with ``reason.not_live`` otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hostmedic.collectors.geo import CountryLookup, parse_overrides
from hostmedic.collectors.rootfs import RootFS
from hostmedic.collectors.security.accounts import read_accounts
from hostmedic.collectors.security.binaries import read_files
from hostmedic.collectors.security.logins import read_logins
from hostmedic.collectors.security.probes import probe_services
from hostmedic.collectors.security.processes import read_processes
from hostmedic.collectors.security.sshd import SSHD_CONFIG, read_ssh
from hostmedic.collectors.security.startup import read_startup, user_homes
from hostmedic.errors import FactUnavailable
from hostmedic.facts.security import AccountFacts, ProcessFacts

if TYPE_CHECKING:
    from hostmedic.gather import Collection, GatherContext


def _attempt(read: Callable[[], Any], path: str, key: str = "reason.unreadable") -> Any:
    """The facts ``read`` returns, or the FactUnavailable that explains why not."""
    try:
        return read()
    except FactUnavailable as exc:
        return exc
    except OSError as exc:
        return FactUnavailable(f"{path}: {exc.strerror or exc}", key=key, path=path)


def _home_country(ctx: GatherContext, geo: CountryLookup) -> str | None:
    if not ctx.live:  # the server's own addresses are not those of the disk's machine
        return ctx.settings.home_country
    from hostmedic.gather import home_country

    return home_country(ctx.settings, geo)


def collect_security(ctx: GatherContext) -> dict[str, Any]:
    """Facts by name for the security rules."""
    fs = RootFS(ctx.root)
    geo = CountryLookup(parse_overrides(ctx.settings.geo_overrides))
    accounts = _attempt(lambda: read_accounts(fs), "/etc/passwd")
    homes = (
        user_homes((a.name, a.home) for a in accounts.accounts)
        if isinstance(accounts, AccountFacts)
        else []
    )
    facts: dict[str, Any] = {
        "security_accounts": accounts,
        "security_logins": _attempt(
            lambda: read_logins(fs, geo.country_of, _home_country(ctx, geo)), "/var/log"
        ),
        "security_files": _attempt(lambda: read_files(fs), "/usr/bin"),
        "security_startup": _attempt(lambda: read_startup(fs, homes), "/etc"),
        "security_ssh": _attempt(lambda: read_ssh(fs), SSHD_CONFIG, "reason.no_sshd_config"),
    }
    if not ctx.live:
        not_live = FactUnavailable("not live", key="reason.not_live")
        facts["security_processes"] = facts["security_services"] = not_live
        return facts
    processes = _attempt(read_processes, "/proc")
    facts["security_processes"] = processes
    if isinstance(processes, ProcessFacts):
        names = {p.info.pid: p.info.name for p in processes.processes}
        facts["security_services"] = probe_services(list(processes.listeners), names)
    else:
        facts["security_services"] = processes
    return facts


def security_source(ctx: GatherContext) -> Collection:
    """The category's collection: read at once, no sampling window."""
    from hostmedic.gather import Instant

    return Instant(collect_security(ctx))

"""Reading the SSH facts the way sshd does: the first global value, then Match overrides."""

from __future__ import annotations

from hostmedic.facts.security import SshFacts, SshSetting
from hostmedic.model import Evidence
from hostmedic.rules.security.common import line_evidence


def setting(facts: SshFacts, keyword: str) -> SshSetting | None:
    """The global value in effect (a default when the file never sets it)."""
    return next((s for s in facts.settings if s.keyword == keyword and s.match is None), None)


def overrides(facts: SshFacts, keyword: str) -> list[SshSetting]:
    """Values set inside Match blocks."""
    return [s for s in facts.settings if s.keyword == keyword and s.match is not None]


def value(facts: SshFacts, keyword: str) -> str:
    """The global value in effect, lower case ("" when never set and without default)."""
    found = setting(facts, keyword)
    return found.value.lower() if found else ""


def password_login(facts: SshFacts) -> bool:
    """Passwords are accepted: PasswordAuthentication, or keyboard-interactive through PAM."""
    return value(facts, "passwordauthentication") == "yes" or (
        value(facts, "kbdinteractiveauthentication") == "yes" and value(facts, "usepam") == "yes"
    )


def setting_evidence(s: SshSetting, read_at: float) -> Evidence:
    """The line that sets it, or sshd's built-in default."""
    if s.where is None:
        return Evidence("sshd default", f"{s.keyword} {s.value} (not set in sshd_config)", read_at)
    prefix = f"[Match {s.match}] " if s.match else ""
    ev = line_evidence(s.where, read_at)
    return Evidence(ev.source, prefix + ev.excerpt, read_at)

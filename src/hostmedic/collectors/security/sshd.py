"""The SSH server's configuration (seed 004 §修改远程端口并限制登录IP Linux: the Port in
/etc/ssh/sshd_config, /etc/hosts.allow and /etc/hosts.deny), read from the files so that
``--root`` works: ``Include`` (globs, relative to /etc/ssh) is followed, and settings inside
``Match`` blocks are kept apart as overrides.

sshd takes the *first* value it reads for a keyword (``Port`` and ``ListenAddress`` add
up); a Match block written in an included file ends with that file.
"""

from __future__ import annotations

import fnmatch
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from hostmedic.collectors.rootfs import RootFS
from hostmedic.collectors.security.commands import active_lines
from hostmedic.facts.security import FileLine, SshFacts, SshSetting

SSHD_CONFIG = "/etc/ssh/sshd_config"
SSH_DIR = "/etc/ssh"
HOSTS_ALLOW, HOSTS_DENY = "/etc/hosts.allow", "/etc/hosts.deny"
MAX_DEPTH = 16  # sshd's own include depth limit
# Keywords the rules read, and sshd's built-in defaults (OpenSSH >= 7.0)
DEFAULTS = {
    "port": "22",
    "permitrootlogin": "prohibit-password",
    "passwordauthentication": "yes",
    "permitemptypasswords": "no",
    "kbdinteractiveauthentication": "yes",
    "usepam": "no",
    "pubkeyauthentication": "yes",
    "listenaddress": "",
    "allowusers": "",
    "denyusers": "",
}
ALIASES = {"challengeresponseauthentication": "kbdinteractiveauthentication"}
CUMULATIVE = frozenset({"port", "listenaddress"})

_KEY_VALUE = re.compile(r"([A-Za-z0-9]+)\s*(?:=\s*|\s+)(.*)")

Loader = Callable[[str], list[tuple[str, str]]]  # glob pattern → [(path, text)]


@dataclass
class _State:
    settings: list[SshSetting]
    seen_global: set[str]
    seen_match: set[tuple[str, str]]


def _split(text: str) -> tuple[str, str]:
    """``Keyword value`` or ``Keyword = value`` → (lower-case keyword, value)."""
    m = _KEY_VALUE.match(text)
    keyword, value = (m[1], m[2]) if m else (text, "")
    keyword = keyword.lower()
    return ALIASES.get(keyword, keyword), value.strip().strip('"')


def parse_sshd_config(text: str, path: str, load: Loader) -> list[SshSetting]:
    """The settings that matter, in effect: global first values (defaults filled in for
    the keywords never written) followed by every Match override."""
    state = _State([], set(), set())
    _parse(text, path, load, state, None, 0)
    defaults = [
        SshSetting(k, v, None, None)
        for k, v in DEFAULTS.items()
        if v and k not in state.seen_global
    ]
    globals_ = [s for s in state.settings if s.match is None]
    return globals_ + defaults + [s for s in state.settings if s.match is not None]


def _parse(
    text: str, path: str, load: Loader, state: _State, match: str | None, depth: int
) -> None:
    if depth > MAX_DEPTH:
        return
    for line in active_lines(text, path):
        keyword, value = _split(line.text)
        if keyword == "match":
            match = None if value.lower() == "all" else value
            continue
        if keyword == "include":
            for pattern in value.split():
                full = pattern if pattern.startswith("/") else f"{SSH_DIR}/{pattern}"
                for inc_path, inc_text in load(full):
                    _parse(inc_text, inc_path, load, state, match, depth + 1)
            continue
        if keyword not in DEFAULTS:
            continue
        if match is None:
            if keyword in state.seen_global and keyword not in CUMULATIVE:
                continue
            state.seen_global.add(keyword)
        else:
            if (match, keyword) in state.seen_match and keyword not in CUMULATIVE:
                continue
            state.seen_match.add((match, keyword))
        state.settings.append(SshSetting(keyword, value, line, match))


def parse_ports(settings: list[SshSetting]) -> tuple[int, ...]:
    """Global ports, including those given on ListenAddress ``host:port`` lines."""
    ports = [
        int(s.value)
        for s in settings
        if s.keyword == "port" and s.match is None and s.value.isdigit()
    ]
    for s in settings:
        if s.keyword == "listenaddress" and s.match is None and s.value:
            host_port = s.value.split()[0]
            tail = host_port.rsplit("]:", 1)[-1] if host_port.startswith("[") else host_port
            if tail.count(":") == 1 and tail.split(":")[1].isdigit():
                ports.append(int(tail.split(":")[1]))
    return tuple(sorted(set(ports)))


def _loader(fs: RootFS) -> Loader:
    def load(pattern: str) -> list[tuple[str, str]]:
        directory, _, name = pattern.rpartition("/")
        paths = [
            f"{directory}/{n}" for n in fs.listdir(directory or "/") if fnmatch.fnmatch(n, name)
        ]
        found: list[tuple[str, str]] = []
        for p in paths:
            try:
                found.append((p, fs.read_text(p)))
            except OSError:
                continue
        return found

    return load


def _lines(fs: RootFS, path: str) -> tuple[FileLine, ...]:
    try:
        return tuple(active_lines(fs.read_text(path), path))
    except OSError:
        return ()


def read_ssh(fs: RootFS) -> SshFacts:
    """sshd's effective settings and the TCP wrappers files; OSError when there is no
    sshd_config (no SSH server installed)."""
    read_at = time.time()
    settings = parse_sshd_config(fs.read_text(SSHD_CONFIG), SSHD_CONFIG, _loader(fs))
    return SshFacts(
        settings=tuple(settings),
        ports=parse_ports(settings),
        hosts_allow=_lines(fs, HOSTS_ALLOW),
        hosts_deny=_lines(fs, HOSTS_DENY),
        read_at=read_at,
    )

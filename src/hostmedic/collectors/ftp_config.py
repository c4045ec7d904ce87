"""Parse the configuration of vsftpd, pure-ftpd and ProFTPD into :class:`FtpConfig`.

Pure: text in, settings out, with each server's documented defaults (vsftpd.conf(5) of
vsftpd 3.0.3, pure-ftpd 1.0.50's pure-ftpd.conf, ProFTPD 1.3.8's directives) for what the
file leaves out. Lines that cannot be understood and values out of range are recorded in
``problems`` (the server itself would refuse or ignore them), never raised.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from hostmedic.facts.ftp import FtpConfig

MAX_INCLUDE_DEPTH = 8
MAX_INCLUDED_FILES = 200
_TRUE = {"yes", "true", "1", "on"}
_FALSE = {"no", "false", "0", "off"}


def _port(value: str) -> int | None:
    return int(value) if value.isdigit() and 0 < int(value) <= 65535 else None


def _count(value: str) -> int | None:
    """A client limit: 0 / none = unlimited (None)."""
    return int(value) if value.isdigit() and int(value) > 0 else None


def _bool(value: str) -> bool | None:
    low = value.strip().lower()
    return True if low in _TRUE else False if low in _FALSE else None


def _pasv_range(low: int | None, high: int | None) -> tuple[int | None, int | None, str | None]:
    """A passive range, or (None, None, why) when it is unset or unusable."""
    if low is None or high is None:
        return None, None, None
    if low > high:
        return None, None, f"passive range {low}-{high} is empty (min > max)"
    return low, high, None


# --- vsftpd ----------------------------------------------------------------------------

VSFTPD_DEFAULT_LOG = "/var/log/vsftpd.log"
# The settings the checks depend on (what evidence lines cite).
_VSFTPD_CHECKED = {
    *("listen", "listen_ipv6", "listen_port", "listen_address", "listen_address6"),
    *("pasv_enable", "pasv_min_port", "pasv_max_port", "pasv_address", "port_enable"),
    *("connect_from_port_20", "ftp_data_port", "max_clients", "max_per_ip"),
    *("idle_session_timeout", "xferlog_enable", "xferlog_std_format", "dual_log_enable"),
    "vsftpd_log_file",
}


def parse_vsftpd(text: str, path: str, overrides: Iterable[str] = ()) -> FtpConfig:
    """vsftpd.conf (``setting=value`` lines), then ``-oSETTING=VALUE`` command-line
    overrides, over vsftpd's defaults."""
    values: dict[str, tuple[str, str]] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[a-z0-9_]+", key):
            problems.append(f"{path}:{number}: not a setting: {line[:80]}")
            continue
        values[key] = (value.strip(), f"{path}:{number}")
    for override in overrides:
        key, _, value = override.removeprefix("-o").partition("=")
        values[key] = (value.strip(), "command line")

    def get(key: str, default: str) -> str:
        return values.get(key, (default, ""))[0]

    def flag(key: str, default: bool) -> bool:
        got = _bool(get(key, "YES" if default else "NO"))
        if got is None:
            problems.append(f"{values[key][1]}: {key}={get(key, '')} is not YES/NO")
            return default
        return got

    listen_ipv6 = flag("listen_ipv6", False)
    low, high, why = _pasv_range(_port(get("pasv_min_port", "0")), _port(get("pasv_max_port", "0")))
    if why:
        problems.append(why)
    logs = []
    if (flag("xferlog_enable", False) and not flag("xferlog_std_format", False)) or flag(
        "dual_log_enable", False
    ):
        logs.append(get("vsftpd_log_file", VSFTPD_DEFAULT_LOG))
    return FtpConfig(
        control_port=_port(get("listen_port", "21")) or 21,
        listen_address=get("listen_address", "") or get("listen_address6", "") or None,
        ipv4=True,  # listen_ipv6 sockets are dual-stack; inetd mode is inetd's choice
        ipv6=listen_ipv6,
        passive_enabled=flag("pasv_enable", True),
        passive_min_port=low,
        passive_max_port=high,
        passive_address=get("pasv_address", "") or None,
        active_enabled=flag("port_enable", True),
        active_data_port=(
            _port(get("ftp_data_port", "20")) if flag("connect_from_port_20", False) else None
        ),
        max_clients=_count(get("max_clients", "0")),
        max_per_ip=_count(get("max_per_ip", "0")),
        idle_timeout_s=_count(get("idle_session_timeout", "300")),
        log_files=tuple(logs),
        source=tuple(
            f"{k}={v} ({where})" for k, (v, where) in values.items() if k in _VSFTPD_CHECKED
        ),
        problems=tuple(problems),
    )


# --- pure-ftpd -------------------------------------------------------------------------

# Long option / config keyword → the short option pure-ftpd's wrapper turns it into.
_PURE_KEYWORDS = {
    "bind": "-S",
    "passiveportrange": "-p",
    "forcepassiveip": "-P",
    "maxclientsnumber": "-c",
    "maxclientsperip": "-C",
    "maxidletime": "-I",
    "ipv4only": "-4",
    "ipv6only": "-6",
}
_PURE_FLAGS = {"-4", "-6"}
_PURE_NAMES = {
    "-S": "Bind",
    "-p": "PassivePortRange",
    "-P": "ForcePassiveIP",
    "-c": "MaxClientsNumber",
    "-C": "MaxClientsPerIP",
    "-I": "MaxIdleTime",
    "-4": "IPV4Only",
    "-6": "IPV6Only",
}


def parse_pure_ftpd(pairs: Iterable[tuple[str, str, str]]) -> FtpConfig:
    """pure-ftpd settings as ``(keyword or -option, value, where)`` triples — from a
    ``pure-ftpd.conf`` file, Debian's ``/etc/pure-ftpd/conf/<Keyword>`` files, or the
    command line (see :func:`pure_ftpd_file_pairs`, :func:`pure_ftpd_dir_pairs`,
    :func:`pure_ftpd_argv_pairs`) — over pure-ftpd's defaults (port 21, 50 clients,
    15-minute idle timeout, any passive port, IPv4 and IPv6)."""
    settings: dict[str, tuple[str, str]] = {}
    for keyword, value, where in pairs:
        option = _PURE_KEYWORDS.get(keyword.lower().lstrip("-"), keyword)
        if option in _PURE_KEYWORDS.values():
            settings[option] = (value.strip(), where)
    problems: list[str] = []

    def get(option: str) -> str | None:
        return settings[option][0] if option in settings else None

    port, address = 21, None
    if (bind := get("-S")) is not None:
        host, _, port_text = bind.rpartition(",")
        port = _port(port_text.strip()) or 21
        address = host.strip() or None
    low = high = None
    if (span := get("-p")) is not None:
        parts = re.split(r"[\s:]+", span.strip())
        if len(parts) == 2:
            low, high, why = _pasv_range(_port(parts[0]), _port(parts[1]))
            problems += [why] if why else []
        else:
            problems.append(f"PassivePortRange {span!r} is not 'min max' ({settings['-p'][1]})")
    only4 = _bool(get("-4") or "no") or False
    only6 = _bool(get("-6") or "no") or False
    idle_min = _count(get("-I") or "15")
    return FtpConfig(
        control_port=port,
        listen_address=address,
        ipv4=not only6,
        ipv6=not only4,
        passive_enabled=True,
        passive_min_port=low,
        passive_max_port=high,
        passive_address=get("-P"),
        active_enabled=True,
        active_data_port=20,
        max_clients=_count(get("-c") or "50"),
        max_per_ip=_count(get("-C") or "0"),
        idle_timeout_s=idle_min * 60 if idle_min else None,
        source=tuple(f"{_PURE_NAMES[k]}={v} ({where})" for k, (v, where) in settings.items()),
        problems=tuple(problems),
    )


def pure_ftpd_file_pairs(text: str, path: str) -> list[tuple[str, str, str]]:
    """``Keyword value`` lines of a pure-ftpd.conf file."""
    pairs = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if line:
            keyword, _, value = line.partition(" ")
            pairs.append((keyword, value, f"{path}:{number}"))
    return pairs


def pure_ftpd_dir_pairs(files: dict[str, str], directory: str) -> list[tuple[str, str, str]]:
    """Debian's wrapper directory: one file per keyword, its first line the value."""
    return [
        (name, (text.strip().splitlines() or [""])[0], f"{directory}/{name}")
        for name, text in sorted(files.items())
    ]


def pure_ftpd_argv_pairs(argv: Iterable[str]) -> list[tuple[str, str, str]]:
    """Options of a pure-ftpd command line (``-p 30000:35000``, ``--bind=,2121``…)."""
    pairs: list[tuple[str, str, str]] = []
    words = list(argv)
    i = 0
    while i < len(words):
        word = words[i]
        name, eq, inline = word.partition("=")
        option = _PURE_KEYWORDS.get(name.lstrip("-"), name) if name.startswith("--") else name
        if option in _PURE_FLAGS:
            pairs.append((option, "yes", "command line"))
        elif option in _PURE_KEYWORDS.values():
            value = inline if eq else (words[i + 1] if i + 1 < len(words) else "")
            pairs.append((option, value, "command line"))
            i += 0 if eq else 1
        elif len(word) > 2 and word[:2] in _PURE_KEYWORDS.values() and not word.startswith("--"):
            pairs.append((word[:2], word[2:], "command line"))  # -p30000:35000
        i += 1
    return pairs


# --- ProFTPD ---------------------------------------------------------------------------

_PROFTPD_DEFAULT_LOG = "/var/log/proftpd/proftpd.log"
# The directives the checks depend on (what evidence lines cite).
_PROFTPD_CHECKED = {
    *("port", "passiveports", "masqueradeaddress", "maxinstances", "maxclients"),
    *("maxclientsperhost", "timeoutidle", "defaultaddress", "useipv6", "systemlog"),
}
# Contexts whose directives apply to the main server (``<VirtualHost>`` / ``<Anonymous>``
# and others configure something else and are skipped).
_APPLIED_CONTEXTS = {"global", "ifmodule", "ifdefine", "ifversion", "ifos"}


def parse_proftpd(text: str, path: str, read: Callable[[str], dict[str, str]]) -> FtpConfig:
    """proftpd.conf with its ``Include`` files (``read(pattern)`` returns the files a path
    or glob names, by path: the caller does the I/O, relative to ``--root``)."""
    directives: dict[str, tuple[list[str], str, str]] = {}
    problems: list[str] = []
    budget = [MAX_INCLUDED_FILES]
    _proftpd_lines(text, path, read, directives, problems, depth=0, budget=budget)

    def get(name: str) -> list[str] | None:
        return directives[name][0] if name in directives else None

    def first(name: str) -> str | None:
        values = get(name)
        return values[0] if values else None

    low = high = None
    if (ports := get("passiveports")) is not None:
        if len(ports) == 2:
            low, high, why = _pasv_range(_port(ports[0]), _port(ports[1]))
            problems += [why] if why else []
        else:
            problems.append(f"PassivePorts needs 'min max' ({directives['passiveports'][1]})")
    limits = [
        _count(v[0]) for v in (get("maxinstances"), get("maxclients")) if v and v[0] != "none"
    ]
    known = [n for n in limits if n is not None]
    per_host = get("maxclientsperhost")
    idle = get("timeoutidle")
    log = get("systemlog")
    return FtpConfig(
        control_port=_port((get("port") or ["21"])[0]) or 21,
        listen_address=first("defaultaddress"),
        ipv4=True,
        ipv6=_bool((get("useipv6") or ["on"])[0]) is not False,
        passive_enabled=True,
        passive_min_port=low,
        passive_max_port=high,
        passive_address=first("masqueradeaddress"),
        active_enabled=True,
        active_data_port=20,
        max_clients=min(known) if known else None,
        max_per_ip=_count(per_host[0]) if per_host and per_host[0] != "none" else None,
        idle_timeout_s=_count(idle[0]) if idle else 600,
        log_files=(log[0],) if log and log[0] != "none" else (_PROFTPD_DEFAULT_LOG,),
        source=tuple(
            f"{name}={' '.join(v)} ({where})"
            for n, (v, where, name) in directives.items()
            if n in _PROFTPD_CHECKED
        ),
        problems=tuple(problems),
    )


def _proftpd_lines(
    text: str,
    path: str,
    read: Callable[[str], dict[str, str]],
    directives: dict[str, tuple[list[str], str, str]],
    problems: list[str],
    depth: int,
    budget: list[int],
) -> None:
    skipping: list[str] = []  # the stack of open contexts; any not applied → skip lines
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("</"):
            if skipping:
                skipping.pop()
            continue
        if line.startswith("<"):
            skipping.append(line[1:].split()[0].rstrip(">").lower() if len(line) > 1 else "?")
            continue
        if any(c not in _APPLIED_CONTEXTS for c in skipping):
            continue
        words = line.split()
        name, args = words[0].lower(), [w.strip('"') for w in words[1:]]
        if name == "include" and args:
            if depth >= MAX_INCLUDE_DEPTH or budget[0] <= 0:
                problems.append(f"{path}:{number}: Include not followed (too deep or too many)")
                continue
            for included, body in sorted(read(args[0]).items()):
                budget[0] -= 1
                _proftpd_lines(body, included, read, directives, problems, depth + 1, budget)
            continue
        directives[name] = (args, f"{path}:{number}", words[0])

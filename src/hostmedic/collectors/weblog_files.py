"""Which access logs to read, and in which format: the files the operator named, or the
ones nginx / Apache / IIS write at their usual places and where their configuration says
(``access_log``, ``CustomLog``), rotated siblings included (``access.log.1``,
``access.log.2.gz``, ``access.log-20261123.gz``). Error logs are left out.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass

from hostmedic.analysis.weblog_formats import (
    COMBINED,
    COMMON,
    IIS,
    FormatError,
    LogFormat,
    apache_format,
    nginx_format,
)
from hostmedic.collectors.webserver_config import ServerConfig, read_server_configs
from hostmedic.errors import UsageError

LOG_DIRS = (
    "var/log/nginx",
    "var/log/apache2",
    "var/log/httpd",
    "usr/local/nginx/logs",
    "usr/local/apache2/logs",
    "www/wwwlogs",  # BT panel
    "inetpub/logs/LogFiles",  # IIS, on a Windows disk mounted with --root
)
_ROTATION = re.compile(r"(?:[.-]\d+)*(?:\.gz)?$")
MAX_FILES = 500


@dataclass(frozen=True, slots=True)
class FoundLog:
    """A log file to read, with the format its server's configuration declares (None:
    tell it from the first lines)."""

    path: str
    fmt: LogFormat | None
    mtime: float
    size_bytes: int


def base_name(path: str) -> str:
    """``/var/log/nginx/access.log.2.gz`` → ``/var/log/nginx/access.log``."""
    return _ROTATION.sub("", path) or path


def _looks_like_access_log(name: str) -> bool:
    lowered = name.lower()
    if "error" in lowered or lowered.endswith((".pid", ".sock", ".conf")):
        return False
    stem = base_name(lowered)
    return "access" in lowered or stem.endswith(("_log", ".log")) or lowered.startswith("u_ex")


def _files_in(directory: str) -> list[str]:
    """Access-log-looking files of a directory and, for IIS, of its W3SVC* folders."""
    out: list[str] = []
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return out
    for entry in entries:
        if entry.is_dir(follow_symlinks=False) and entry.name.upper().startswith("W3SVC"):
            out.extend(_files_in(entry.path))
        elif entry.is_file() and _looks_like_access_log(entry.name):
            out.append(entry.path)
    return out


def resolve_format(spec: str, configs: list[ServerConfig]) -> LogFormat:
    """``--format``: an nginx definition (``$remote_addr …``), an Apache one (``%h …``),
    ``combined`` / ``common`` / ``iis``, or the name of a ``log_format`` in the config."""
    try:
        if "$" in spec:
            return nginx_format("custom", spec)
        if "%" in spec:
            return apache_format("custom", spec)
    except FormatError as exc:
        raise UsageError("error.weblogs.bad_format", value=spec, detail=str(exc)) from exc
    builtin = {"combined": COMBINED, "common": COMMON, "iis": IIS, "w3c": IIS}
    if spec.lower() in builtin:
        return builtin[spec.lower()]
    for conf in configs:
        if spec in conf.formats:
            return _declared(conf, spec) or COMBINED
    raise UsageError("error.weblogs.unknown_format", value=spec)


def _declared(conf: ServerConfig, name: str) -> LogFormat | None:
    """The format a config's access-log line names (a nickname or an inline string)."""
    definition = conf.formats.get(name)
    if definition is None and "%" in name and conf.kind == "apache":
        definition = name
    if definition is None:
        return {"combined": COMBINED, "common": COMMON}.get(name)
    try:
        if conf.kind == "nginx":
            return nginx_format(name, definition)
        return apache_format(name, definition)
    except FormatError:
        return None


def _configured(root: str, configs: list[ServerConfig]) -> dict[str, LogFormat | None]:
    """Base path of every configured access log → its declared format."""
    found: dict[str, LogFormat | None] = {}
    for conf in configs:
        for path, fmt_name in conf.logs:
            pattern = re.sub(r"\$\{?\w+\}?", "*", path)  # access_log /var/log/$host.log
            if not os.path.isabs(pattern):
                base = "etc/nginx" if conf.kind == "nginx" else "etc/httpd"
                pattern = os.path.join("/", base, pattern)
            full = os.path.join(root, pattern.lstrip("/"))
            for match in glob.glob(full) or [full]:
                found.setdefault(match, _declared(conf, fmt_name))
    return found


def server_names(configs: list[ServerConfig]) -> tuple[str, ...]:
    """Host names the servers answer for (their own site, for telling hot-linkers)."""
    names = {n for c in configs for n in c.server_names if "*" not in n and "~" not in n}
    names |= {n[2:] for c in configs for n in c.server_names if n.startswith("*.")}
    return tuple(sorted(n for n in names if n and n != "localhost"))


def find_logs(root: str, explicit: tuple[str, ...]) -> tuple[list[FoundLog], list[ServerConfig]]:
    """The logs to read (oldest first, by modification time) and the configs read.

    ``explicit`` paths (files or directories) replace discovery; otherwise the configured
    access logs and the usual log directories under ``root`` are searched.
    """
    configs = read_server_configs(root)
    declared = _configured(root, configs)
    candidates: list[str] = []
    if explicit:
        for path in explicit:
            candidates.extend(_files_in(path) if os.path.isdir(path) else [path])
    else:
        for base in declared:
            siblings = glob.glob(glob.escape(base) + "*")
            candidates.extend(p for p in siblings if base_name(p) == base)
        for directory in LOG_DIRS:
            candidates.extend(_files_in(os.path.join(root, directory)))
    seen: set[str] = set()
    found: list[FoundLog] = []
    for path in candidates:
        real = os.path.realpath(path)
        if real in seen or len(found) >= MAX_FILES:
            continue
        seen.add(real)
        try:
            st = os.stat(path)
        except OSError:
            if explicit:
                found.append(FoundLog(path, None, 0.0, -1))
            continue
        if not os.path.isfile(path):
            continue
        fmt = declared.get(path, declared.get(base_name(path)))
        found.append(FoundLog(path, fmt, st.st_mtime, st.st_size))
    found.sort(key=lambda f: (f.mtime, f.path))
    return found, configs

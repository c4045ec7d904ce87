"""What the web servers' own configuration says about their access logs: nginx
``access_log`` / ``log_format`` / ``server_name``, Apache ``CustomLog`` / ``LogFormat`` /
``ServerName``, following ``include`` lines. Read-only, relative to ``root`` (``/`` live,
another system's disk with ``--root``). Parsing is pure and separate from reading.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
from dataclasses import dataclass, field

NGINX_MAIN = (
    "etc/nginx/nginx.conf",
    "usr/local/nginx/conf/nginx.conf",
    "usr/local/openresty/nginx/conf/nginx.conf",
    "www/server/nginx/conf/nginx.conf",  # BT panel (宝塔), common on Chinese cloud servers
)
APACHE_MAIN = (
    "etc/apache2/apache2.conf",
    "etc/httpd/conf/httpd.conf",
    "usr/local/apache2/conf/httpd.conf",
    "www/server/apache/conf/httpd.conf",
)
APACHE_VARIABLES = {"APACHE_LOG_DIR": "/var/log/apache2"}
MAX_FILES = 200  # include loops and huge trees stop here
MAX_BYTES = 4 * 1024 * 1024


@dataclass(slots=True)
class ServerConfig:
    """Access logs a server writes (path → format name or inline definition), the formats
    it defines, and the host names it serves. ``kind`` is "nginx" or "apache"."""

    kind: str
    logs: list[tuple[str, str]] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)
    server_names: set[str] = field(default_factory=set)
    includes: list[str] = field(default_factory=list)


_NGINX_TOKEN = re.compile(
    r"""\s*(?:\#[^\n]*|"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|([{};])|([^\s;{}"'\#]+))"""
)


def _nginx_statements(text: str) -> list[list[str]]:
    """Simple statements (``word … ;``) of an nginx config, blocks flattened."""
    statements: list[list[str]] = []
    words: list[str] = []
    for match in _NGINX_TOKEN.finditer(text):
        double, single, punct, bare = match.groups()
        if punct:
            if punct == ";" and words:
                statements.append(words)
            words = []
        elif double is not None or single is not None:
            words.append(double if double is not None else single)
        elif bare is not None:
            words.append(bare)
    return statements


def parse_nginx(text: str, into: ServerConfig | None = None) -> ServerConfig:
    """Fold one nginx config file's directives into ``into``."""
    conf = into or ServerConfig("nginx")
    for words in _nginx_statements(text):
        name, args = words[0], words[1:]
        if name == "log_format" and len(args) >= 2:
            parts = [a for a in args[1:] if not a.startswith("escape=")]
            conf.formats[args[0]] = "".join(parts)
        elif name == "access_log" and args and args[0] != "off":
            if not args[0].startswith("syslog:"):
                fmt = args[1] if len(args) > 1 and "=" not in args[1] else "combined"
                conf.logs.append((args[0], fmt))
        elif name == "server_name":
            conf.server_names.update(a.lower() for a in args if a not in ("_", '""', ""))
        elif name == "include" and args:
            conf.includes.append(args[0])
    return conf


def _apache_expand(word: str) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: APACHE_VARIABLES.get(m.group(1), m.group(0)), word)


def parse_apache(text: str, into: ServerConfig | None = None) -> ServerConfig:
    """Fold one Apache config file's directives into ``into``."""
    conf = into or ServerConfig("apache")
    for raw in text.replace("\\\n", " ").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            words = shlex.split(line, comments=False, posix=True)
        except ValueError:
            continue
        name, args = words[0].lower(), words[1:]
        if name == "logformat" and len(args) >= 2:
            conf.formats[args[1]] = args[0]
        elif name == "customlog" and len(args) >= 2 and not args[0].startswith("|"):
            conf.logs.append((_apache_expand(args[0]), args[1]))
        elif name in ("servername", "serveralias"):
            conf.server_names.update(a.lower().split(":")[0] for a in args)
        elif name in ("include", "includeoptional") and args:
            conf.includes.append(_apache_expand(args[0]))
    return conf


def _under(root: str, path: str) -> str:
    return os.path.join(root, path.lstrip("/"))


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read(MAX_BYTES).decode("utf-8", "replace")
    except OSError:
        return None


def read_server_configs(root: str) -> list[ServerConfig]:
    """Every nginx and Apache configuration found under ``root``, includes followed
    (relative includes resolve against the main file's directory, as both servers do)."""
    found: list[ServerConfig] = []
    for kind, mains, parse in (
        ("nginx", NGINX_MAIN, parse_nginx),
        ("apache", APACHE_MAIN, parse_apache),
    ):
        for main in mains:
            main_path = _under(root, main)
            text = _read(main_path)
            if text is None:
                continue
            conf = ServerConfig(kind)
            base = os.path.dirname(main_path)
            if kind == "apache" and main.endswith("conf/httpd.conf"):
                base = os.path.dirname(base)  # ServerRoot: includes are relative to it
            seen = {main_path}
            queue = [text]
            while queue and len(seen) < MAX_FILES:
                parse(queue.pop(), conf)
                pending, conf.includes = conf.includes, []
                for pattern in pending:
                    full = (
                        _under(root, pattern)
                        if pattern.startswith("/")
                        else os.path.join(base, pattern)
                    )
                    for path in sorted(glob.glob(full)):
                        if path not in seen and os.path.isfile(path):
                            seen.add(path)
                            more = _read(path)
                            if more is not None:
                                queue.append(more)
            found.append(conf)
    return found

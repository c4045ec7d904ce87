"""Finding the logs of another system's disk (``--root``): nginx and Apache configs with
includes, custom formats and server names; the usual directories; rotations; IIS;
error logs left out; files older than the window not opened."""

import os

from hostmedic.collectors.weblog_files import base_name, find_logs, server_names
from hostmedic.collectors.weblogs import LogRequest, collect_weblogs
from hostmedic.collectors.webserver_config import parse_apache, parse_nginx
from hostmedic.settings import Settings
from tests.unit import weblog_samples as S

NGINX_CONF = """
user www-data;
http {
    log_format timed '$remote_addr [$time_iso8601] "$request" '
                     '$status $body_bytes_sent "$http_referer" "$http_user_agent"';
    access_log /var/log/nginx/access.log;   # combined
    include conf.d/*.conf;
}
"""
SITE_CONF = """
server {
    listen 80;
    server_name www.example.com example.com *.img.example.com;  # a comment; with { braces }
    access_log /srv/logs/$host.timed.log timed buffer=32k;
    access_log syslog:server=unix:/dev/log;
    access_log off;
}
"""
APACHE_CONF = r"""
LogFormat "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\"" combined
LogFormat "%h %t \"%r\" %>s %O" tiny
<VirtualHost *:80>
    ServerName shop.example.org
    ServerAlias www.shop.example.org:80
    CustomLog ${APACHE_LOG_DIR}/shop_access.log tiny
    CustomLog "|/usr/bin/rotatelogs /x 86400" combined
</VirtualHost>
IncludeOptional sites-enabled/*.conf
"""


def _timed(lines):
    out = []
    for t, text in lines:
        ip, rest = text.split(" - - [", 1)
        request = rest.split('"', 2)[1]
        status, size = rest.split('" ', 1)[1].split(" ", 2)[:2]
        stamp = __import__("time").strftime(
            "%Y-%m-%dT%H:%M:%S+08:00", __import__("time").gmtime(int(t) + 8 * 3600)
        )
        out.append((t, f'{ip} [{stamp}] "{request}" {status} {size} "-" "curl/8"\n'))
    return out


def make_root(tmp_path):
    root = tmp_path / "disk"
    (root / "etc/nginx/conf.d").mkdir(parents=True)
    (root / "etc/nginx/nginx.conf").write_text(NGINX_CONF)
    (root / "etc/nginx/conf.d/site.conf").write_text(SITE_CONF)
    (root / "etc/apache2").mkdir(parents=True)
    (root / "etc/apache2/apache2.conf").write_text(APACHE_CONF)
    logs = root / "var/log/nginx"
    logs.mkdir(parents=True)
    S.write(logs / "access.log", S.healthy(minutes=30, start=S.T0 + 1800))
    S.write(logs / "access.log.1", S.healthy(minutes=30, start=S.T0))
    old = S.write(
        logs / "access.log.2.gz", S.healthy(minutes=30, start=S.T0 - 86400), compress=True
    )
    os.utime(old, (S.T0 - 80000, S.T0 - 80000))
    (logs / "error.log").write_text("2026/11/18 19:00:00 [error] 1#1: oops\n")
    (root / "srv/logs").mkdir(parents=True)
    S.write(root / "srv/logs/www.example.com.timed.log", _timed(S.healthy(minutes=60)))
    (root / "var/log/apache2").mkdir(parents=True)
    (root / "var/log/apache2/shop_access.log").write_text("not a log line at all\n")
    iis = root / "inetpub/logs/LogFiles/W3SVC1"
    iis.mkdir(parents=True)
    (iis / "u_ex261118.log").write_bytes(
        b"#Fields: date time c-ip cs-uri-stem sc-status sc-bytes\n"
        b"2026-11-18 11:30:00 203.0.113.5 /a.zip 200 1000\n"
    )
    return root


def test_configs_are_parsed_with_their_quirks():
    conf = parse_nginx(NGINX_CONF)
    parse_nginx(SITE_CONF, conf)
    assert conf.logs == [
        ("/var/log/nginx/access.log", "combined"),
        ("/srv/logs/$host.timed.log", "timed"),
    ]
    assert conf.formats["timed"].startswith('$remote_addr [$time_iso8601] "$request" $status')
    assert server_names([conf]) == ("example.com", "img.example.com", "www.example.com")
    apache = parse_apache(APACHE_CONF)
    assert apache.logs == [("/var/log/apache2/shop_access.log", "tiny")]
    assert apache.formats["tiny"] == '%h %t "%r" %>s %O'
    assert apache.server_names == {"shop.example.org", "www.shop.example.org"}
    assert apache.includes == ["sites-enabled/*.conf"]


def test_base_names_of_rotations():
    for name in (
        "access.log.1",
        "access.log.2.gz",
        "access.log-20261123",
        "access.log-20261123.gz",
    ):
        assert base_name("/var/log/nginx/" + name) == "/var/log/nginx/access.log"


def test_logs_found_under_root_with_their_formats(tmp_path):
    root = make_root(tmp_path)
    found, configs = find_logs(str(root), ())
    names = {os.path.relpath(f.path, root): f.fmt.name if f.fmt else None for f in found}
    assert names == {
        "var/log/nginx/access.log": "combined",
        "var/log/nginx/access.log.1": "combined",
        "var/log/nginx/access.log.2.gz": "combined",
        "srv/logs/www.example.com.timed.log": "timed",
        "var/log/apache2/shop_access.log": "tiny",
        "inetpub/logs/LogFiles/W3SVC1/u_ex261118.log": None,
    }
    assert {c.kind for c in configs} == {"nginx", "apache"}


def test_collect_under_root(tmp_path):
    root = make_root(tmp_path)
    facts = collect_weblogs(LogRequest(root=str(root)), Settings().weblogs)
    by_name = {os.path.relpath(s.path, root): s for s in facts.sources}
    assert (
        by_name["var/log/nginx/access.log.2.gz"].skipped_key == "reason.weblogs.older_than_window"
    )
    assert by_name["var/log/apache2/shop_access.log"].skipped_key == "reason.weblogs.unknown_format"
    assert by_name["srv/logs/www.example.com.timed.log"].lines_in_window == 2400
    assert (
        by_name["var/log/nginx/access.log"].lines_in_window
        + by_name["var/log/nginx/access.log.1"].lines_in_window
        == 2400
    )
    iis = by_name["inetpub/logs/LogFiles/W3SVC1/u_ex261118.log"]
    assert iis.format_name == "iis-w3c" and iis.lines_in_window == 1
    assert facts.requests == 4801
    assert facts.own_hosts == (
        "example.com",
        "img.example.com",
        "shop.example.org",
        "www.example.com",
        "www.shop.example.org",
    )
    assert not facts.own_hosts_inferred


def test_empty_logs_are_said_not_guessed(tmp_path):
    import pytest

    from hostmedic.errors import FactUnavailable

    logs = tmp_path / "var/log/nginx"
    logs.mkdir(parents=True)
    (logs / "access.log").write_bytes(b"")
    with pytest.raises(FactUnavailable) as raised:
        collect_weblogs(LogRequest(root=str(tmp_path)), Settings().weblogs)
    assert raised.value.key == "reason.weblogs.all_empty"
    S.write(logs / "access.log.1", S.healthy(minutes=5))
    facts = collect_weblogs(LogRequest(root=str(tmp_path)), Settings().weblogs)
    assert {os.path.basename(s.path): s.skipped_key for s in facts.sources} == {
        "access.log": "reason.weblogs.empty",
        "access.log.1": "",
    }


def test_unreadable_logs_name_the_file(tmp_path, monkeypatch):
    import errno

    import pytest

    import hostmedic.collectors.weblogs as collector
    from hostmedic.errors import FactUnavailable

    def denied(path, size=0):
        raise PermissionError(errno.EACCES, "Permission denied", path)

    path = S.write(tmp_path / "access.log", S.healthy(minutes=2))
    monkeypatch.setattr(collector, "read_sample", denied)
    with pytest.raises(FactUnavailable) as raised:
        collect_weblogs(LogRequest(files=(str(path),)), Settings().weblogs)
    assert raised.value.key == "reason.unreadable" and raised.value.params["path"] == str(path)

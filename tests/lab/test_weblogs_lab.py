"""A real nginx on loopback writes its own access logs (a custom ``log_format`` defined in
its config, and Apache's common layout), real HTTP clients make a small CC-shaped burst,
big downloads with a foreign referer and a 404; then ``hostmedic logs --root`` finds the
log through nginx's config and names the burst, its address and its lines.

nginx runs (workers as root: pytest's temporary directories are private) with its prefix inside ``ROOT/etc/nginx`` and relative log paths, so the same
config reads correctly both for nginx and for hostmedic under ``--root``. Every request
goes to 127.0.0.1; counts and time are bounded; nginx is stopped by pid.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scenarios.test_scenarios import run

BURST = 150  # requests from one address inside one minute (the config's threshold: 100)
TIMED = (
    "'$remote_addr [$time_iso8601] \"$request\" $status $body_bytes_sent '\n"
    '        \'$request_time "$http_referer" "$http_user_agent" $host\''
)
CONFIG = """
user root;
worker_processes 1;
daemon off;
pid logs/nginx.pid;
error_log logs/error.log;
events {{ worker_connections 64; }}
http {{
    log_format timed {timed};
    log_format clf '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent';
    server {{
        listen 127.0.0.1:{port};
        server_name www.lab.example;
        root www;
        access_log logs/access.log timed;
        access_log logs/clf.log clf;
    }}
}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def nginx_root(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    if shutil.which("nginx") is None:
        pytest.skip("needs nginx (nginx-light)")
    root = tmp_path / "root"
    prefix = root / "etc/nginx"
    (prefix / "logs").mkdir(parents=True)
    (prefix / "www/files").mkdir(parents=True)
    (prefix / "www/index.html").write_text("hello\n")
    (prefix / "www/files/big.zip").write_bytes(b"\0" * 2_000_000)
    port = _free_port()
    (prefix / "nginx.conf").write_text(CONFIG.format(timed=TIMED, port=port))
    proc = subprocess.Popen(
        ["timeout", "120", "nginx", "-p", f"{prefix}/", "-c", "nginx.conf"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(
                "nginx did not start: " + proc.stderr.read().decode() if proc.stderr else ""
            )
        yield root, port
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)


def _traffic(port: int) -> int:
    """Returns the number of requests made; the burst stays inside one minute."""
    if time.time() % 60 > 45:
        time.sleep(61 - time.time() % 60)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    sent = 0
    browser = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/121.0"}
    for _ in range(BURST):
        conn.request("GET", "/index.html?u=admin", headers=browser)
        conn.getresponse().read()
        sent += 1
    for _ in range(3):
        conn.request(
            "GET", "/files/big.zip", headers={**browser, "Referer": "https://bbs.other.example/t/1"}
        )
        conn.getresponse().read()
        sent += 1
    conn.request(
        "GET", "/missing.php", headers={"User-Agent": "Mozilla/5.0 (compatible; Baiduspider/2.0)"}
    )
    conn.getresponse().read()
    conn.close()
    return sent + 1


@pytest.mark.lab
def test_real_nginx_logs_found_through_its_config(
    nginx_root: tuple[Path, int], tmp_path: Path
) -> None:
    root, port = nginx_root
    sent = _traffic(port)
    time.sleep(0.5)  # nginx writes each line at the end of its request; let the last land
    config = tmp_path / "hostmedic.toml"
    config.write_text("[weblogs]\nip_per_minute_warning = 100\nhotlink_min_bytes = 1000000\n")
    result = run("logs", "--root", str(root), "--config", str(config), "--json")
    doc = json.loads(result.stdout)
    by_path = {Path(s["path"]).name: s for s in doc["sources"]}
    assert by_path["access.log"]["format_name"] == "timed"  # the log_format from nginx.conf
    assert by_path["clf.log"]["format_name"] == "common"
    assert (
        by_path["access.log"]["lines_total"] == sent
        and by_path["access.log"]["malformed_lines"] == 0
    )
    assert doc["requests"] == 2 * sent
    assert doc["own_hosts"] == ["www.lab.example"]
    failed = {(f["rule_id"], f["title_key"]) for f in doc["findings"] if f["status"] == "failed"}
    assert ("weblogs.cc_attack", "finding.weblogs.cc_attack.few_ips.title") in failed
    cc = next(f for f in doc["findings"] if f["rule_id"] == "weblogs.cc_attack")
    assert cc["params"]["ips"] == "127.0.0.1" and cc["params"]["peak_per_minute"] >= BURST
    assert cc["params"]["path"] == "/index.html"
    sources = {e["source"].rsplit(":", 1)[0] for e in cc["evidence"]}
    assert any(s.endswith("logs/access.log") for s in sources)
    # every request came from 127.0.0.1 within one minute: the span is the whole file
    span = next(
        e["source"] for e in cc["evidence"] if e["source"].split(":")[0].endswith("access.log")
    )
    first, last = map(int, span.rsplit(":", 1)[1].split("-"))
    assert (first, last) == (1, sent)
    hot = next(f for f in doc["findings"] if f["rule_id"] == "weblogs.hotlinking")
    assert hot["status"] == "failed" and hot["params"]["hosts"] == "bbs.other.example"
    statuses = {s["status"]: s["requests"] for s in doc["statuses"]}
    assert statuses[404] == 2 and statuses[200] == 2 * (sent - 1)

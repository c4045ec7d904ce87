"""The probes' socket code against servers this test starts on 127.0.0.1 (loopback only):
TCP connect outcomes, the HTTP redirect bound, gzip and truncation, DNS ids and the
fallback to TCP for truncated answers."""

import gzip
import json
import socket
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from hostmedic.probes import dns, http
from hostmedic.probes.connect import ConnectProbe, run_connects
from hostmedic.probes.tcp import probe_ports

WIRE = json.loads((Path(__file__).parents[1] / "fixtures" / "probe" / "wire.json").read_text())


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/loop"):
            n = int(self.path[5:] or 0)
            self.send_response(302)
            self.send_header("Location", f"/loop{n + 1}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"<html><title>zipped</title></html>"
        if self.path == "/big":
            body = b"x" * (http.MAX_BODY + 10)
        headers = {"Content-Type": "text/html"}
        if self.path == "/gzip":
            body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
        self.send_response(200)
        for k, v in {
            **headers,
            "Content-Length": str(len(body)),
            "Set-Cookie": "HWWAFSESID=secret; path=/",
        }.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def web() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_redirects_are_followed_but_bounded(web):
    result = http.fetch(f"http://127.0.0.1:{web}/loop0", timeout_s=2)
    assert len(result.redirects) == http.MAX_REDIRECTS and result.status == 302
    assert result.final_url == f"http://127.0.0.1:{web}/loop5"
    assert [h.host for h in result.redirects] == ["127.0.0.1"] * 5


def test_gzip_bodies_are_decoded_and_cookie_values_dropped(web):
    result = http.fetch(f"http://127.0.0.1:{web}/gzip", timeout_s=2)
    assert result.title == "zipped" and result.address == "127.0.0.1"
    assert ("set-cookie", "HWWAFSESID") in result.headers
    assert "secret" not in json.dumps(result.headers)


def test_big_bodies_are_cut(web):
    result = http.fetch(f"http://127.0.0.1:{web}/big", timeout_s=2)
    assert result.body_truncated and result.body_length == http.MAX_BODY


def test_refused_and_silent_servers(closed_port):
    assert http.fetch(f"http://127.0.0.1:{closed_port}/", timeout_s=1).error == "refused"
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        result = http.fetch(f"http://127.0.0.1:{silent.getsockname()[1]}/", timeout_s=0.3)
    assert result.error == "timeout" and result.status is None


def test_connect_outcomes_on_loopback(web, closed_port):
    ports = probe_ports("127.0.0.1", (web, closed_port), attempts=2, timeout_s=1, gap_s=0.01)
    assert [(p.port, p.state, len(p.attempts)) for p in ports] == [
        (web, "open", 2),
        (closed_port, "refused", 2),
    ]
    assert ports[0].best_ms is not None and ports[1].attempts[0].detail == "ECONNREFUSED"
    (bad,) = run_connects([ConnectProbe("::1" if socket.has_ipv6 else "bad", closed_port, 0.0)], 1)
    assert bad.outcome in ("refused", "error")


def _udp_server(reply: bytes) -> tuple[socket.socket, threading.Thread]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))

    def serve() -> None:
        for _ in range(4):
            try:
                query, peer = sock.recvfrom(512)
            except OSError:
                return
            sock.sendto(query[:2] + reply[2:] if reply[:2] != b"\xff\xff" else reply, peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return sock, thread


def test_dns_query_against_a_local_resolver():
    sock, _ = _udp_server(bytes.fromhex(WIRE["dns_a"]))
    try:
        answer = dns.query("www.lab.test", "A", f"127.0.0.1:{sock.getsockname()[1]}", 1, 1)
    finally:
        sock.close()
    assert (answer.rcode, answer.answers) == ("NOERROR", ("203.0.113.10",))


def test_dns_answers_with_a_foreign_id_are_not_trusted():
    sock, _ = _udp_server(b"\xff\xff" + bytes.fromhex(WIRE["dns_a"])[2:])
    try:
        answer = dns.query("www.lab.test", "A", f"127.0.0.1:{sock.getsockname()[1]}", 0.5, 2)
    finally:
        sock.close()
    assert (answer.rcode, answer.error) == ("ERROR", "answer with a foreign id")


def test_dns_truncated_answer_falls_back_to_tcp():
    full = bytes.fromhex(WIRE["dns_a"])
    truncated = full[:2] + struct.pack("!H", struct.unpack("!H", full[2:4])[0] | 0x0200) + full[4:]
    udp, _ = _udp_server(truncated)
    port = udp.getsockname()[1]
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", port))
    tcp.listen(1)

    def serve_tcp() -> None:
        conn, _ = tcp.accept()
        with conn:
            size = struct.unpack("!H", conn.recv(2))[0]
            query = conn.recv(size)
            answer = query[:2] + full[2:]
            conn.sendall(struct.pack("!H", len(answer)) + answer)

    threading.Thread(target=serve_tcp, daemon=True).start()
    try:
        answer = dns.query("www.lab.test", "A", f"127.0.0.1:{port}", 1, 1)
    finally:
        udp.close()
        tcp.close()
    assert answer.answers == ("203.0.113.10",)


def test_silent_resolver_times_out(closed_port):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        answer = dns.query("x.lab.test", "A", f"127.0.0.1:{silent.getsockname()[1]}", 0.2, 2)
    assert answer.rcode == "TIMEOUT"


@pytest.mark.parametrize("text", ["nonsense", "198.51.100.1:0", "[2001:db8::1]:70000", "1.2.3"])
def test_bad_resolver_addresses(text):
    with pytest.raises(ValueError):
        dns.split_resolver(text)


def test_resolver_address_forms():
    assert dns.split_resolver("198.51.100.53") == ("198.51.100.53", 53)
    assert dns.split_resolver("198.51.100.53:5353") == ("198.51.100.53", 5353)
    assert dns.split_resolver("[2001:db8::53]:53") == ("2001:db8::53", 53)
    assert dns.split_resolver("2001:db8::53") == ("2001:db8::53", 53)


def test_getaddrinfo_is_bounded():
    def slow() -> int:
        threading.Event().wait(5)
        return 1

    with pytest.raises(TimeoutError):
        dns.with_timeout(slow, 0.05)
    assert dns.with_timeout(lambda: 7, 1) == 7

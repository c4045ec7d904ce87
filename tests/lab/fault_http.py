"""Small servers of the reachability fault lab, one per process (run inside a namespace).

``static``  serves one page for every path (the hijacker's site, another site).
``tcp``     accepts, writes a banner line and closes (a database-like / ssh-like port).
``proxy``   passes requests to an upstream web server, except where a rule hits: a WAF or
            green-net block page for matching paths, the ICP-filing notice for requests
            by domain name, or the upstream page with an ad script injected (ISP injection).
Every server stops by itself after ``--seconds`` (a test that dies cannot leave it behind).
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import re
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SHOP = (
    '<!DOCTYPE html><html><head><title>Shop</title><script src="/app.js"></script></head>'
    "<body><h1>shop.test</h1><p>welcome</p></body></html>\n"
)
AD_SCRIPT = '<script src="http://ads.test/x.js"></script>\n'
PAGES = {
    "shop": (200, {}, SHOP),
    "hijacked": (200, {}, SHOP.replace("welcome", "deals") + AD_SCRIPT),
    "other": (200, {}, "<html><head><title>Another site</title></head><body>ok</body></html>\n"),
    "waf": (
        405,
        {},
        "<html><head><title>405</title></head><body><p>很抱歉，由于您访问的URL有可能对网站造成"
        '安全威胁，您的访问被阻断。</p><img src="https://errors.aliyun.com/images/TB1.png">'
        "</body></html>\n",
    ),
    "green": (403, {}, "<html><body><p>该网页存在违规内容，已被屏蔽。</p></body></html>\n"),
    "icp": (
        403,
        {"Server": "Beaver"},
        "<html><head><title>Non-compliance ICP Filing</title></head><body>"
        "<p>该域名当前备案状态不符合访问要求</p></body></html>\n",
    ),
}


def _send(handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: str) -> None:
    data = body.encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "text/html; charset=utf-8")
    handler.send_header("Content-Length", str(len(data)))
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split(":")[0].strip("[]"))
    except ValueError:
        return False
    return True


def make_handler(args: argparse.Namespace) -> type[BaseHTTPRequestHandler]:
    rules = [(re.compile(r.split("=", 1)[0]), r.split("=", 1)[1]) for r in args.rule]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: object) -> None:
            return None

        def do_GET(self) -> None:
            if args.mode == "static":
                _send(self, *PAGES[args.page])
                return
            host = self.headers.get("Host", "")
            for pattern, kind in rules:
                if not pattern.search(self.path):
                    continue
                if kind == "icp" and _is_address(host):
                    continue  # the filing check applies to domains only
                if kind in PAGES:
                    _send(self, *PAGES[kind])
                    return
            up_host, up_port = args.upstream.rsplit(":", 1)
            conn = http.client.HTTPConnection(up_host, int(up_port), timeout=5)
            try:
                conn.request("GET", self.path, headers={"Host": host or up_host})
                response = conn.getresponse()
                body = response.read().decode("utf-8", "replace")
            except OSError:
                _send(self, 502, {}, "<html><body>bad gateway</body></html>")
                return
            finally:
                conn.close()
            if any(kind == "inject" and p.search(self.path) for p, kind in rules):
                body = body.replace("</html>", "</html>" + AD_SCRIPT, 1)
            _send(self, response.status, {}, body)

    return Handler


class _Banner(socketserver.BaseRequestHandler):
    banner = b""

    def handle(self) -> None:
        self.request.sendall(self.banner)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["static", "tcp", "proxy"])
    p.add_argument("--bind", default="0.0.0.0")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--page", default="shop", choices=sorted(PAGES))
    p.add_argument("--banner", default="ready")
    p.add_argument("--upstream", default="")
    p.add_argument("--rule", action="append", default=[], help="PATH_REGEX=waf|green|icp|inject")
    p.add_argument("--seconds", type=float, default=600.0)
    args = p.parse_args()
    server: socketserver.BaseServer
    if args.mode == "tcp":
        _Banner.banner = (args.banner + "\r\n").encode()
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        server = socketserver.ThreadingTCPServer((args.bind, args.port), _Banner)
    else:
        ThreadingHTTPServer.allow_reuse_address = True
        server = ThreadingHTTPServer((args.bind, args.port), make_handler(args))
    server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    threading.Timer(args.seconds, server.shutdown).start()
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

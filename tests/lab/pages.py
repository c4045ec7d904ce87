"""A lab HTTP server that answers like the pages seed 004 talks of (run inside the target).

``/beian`` answers as Alibaba Cloud's ICP-filing interception does (403, ``Server:
Beaver``, the 'Non-compliance ICP Filing' title, a beian-block link); ``/waf`` as Alibaba
Cloud WAF's block page (405, errors.aliyun.com image); ``/inject`` is the lab site's page
with a script appended after ``</html>`` (on-path injection); anything else is the lab
site. Markers come from recordings quoted in ``data/block_pages.toml``.

Usage: ``python pages.py ADDRESS PORT`` — prints READY once listening; exits on SIGTERM.
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SITE = (
    "<!doctype html><html><head><title>Lab site</title>"
    '<script src="/app.js"></script></head><body>hello</body></html>\n'
)
PAGES = {
    "/beian": (
        403,
        "Beaver",
        "<html><head><title>Non-compliance ICP Filing</title></head><body>"
        '<iframe src="http://www.aliyun.com/beian/beian-block?id=1"></iframe></body></html>',
    ),
    "/waf": (
        405,
        "Tengine",
        '<html><body><div class="message">很抱歉，由于您访问的URL有可能对网站'
        '造成安全威胁，您的访问被阻断。</div><img src="https://errors.aliyun.com/images/'
        'TB15QGaHpXXXXXOaXXXXia39XXX-660-117.png"></body></html>',
    ),
    "/inject": (200, "nginx", SITE + '<script src="http://198.51.100.66/ad.js"></script>\n'),
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status, server, body = PAGES.get(self.path, (200, "nginx", SITE))
        data = body.encode("utf-8")
        self.send_response_only(status)
        self.send_header("Server", server)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        return


if __name__ == "__main__":
    server = ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), Handler)
    print("READY", flush=True)
    server.serve_forever()

"""Deterministic access logs for the web-log tests: a healthy small site, and the same
site with one planted problem each (a CC attack, a crawler flood, big downloads,
hot-linking, a 502 spike). Addresses are documentation ranges; nothing is sent."""

from __future__ import annotations

import gzip
import random
import time
from pathlib import Path

T0 = 1_795_000_000 - 1_795_000_000 % 3600  # a whole hour, UTC
OFFSET_S = 8 * 3600  # the log is written on +0800, like a server in China
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
BAIDU = "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)"
GOOGLE = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
OWN = "https://www.example.com/"


def line(
    ip: str,
    t: float,
    path: str = "/",
    status: int = 200,
    size: int = 5000,
    referer: str = "-",
    agent: str = BROWSER,
    method: str = "GET",
) -> str:
    """One combined-format line, on the log's +0800 clock."""
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0800", time.gmtime(int(t) + OFFSET_S))
    return f'{ip} - - [{stamp}] "{method} {path} HTTP/1.1" {status} {size} "{referer}" "{agent}"\n'


def healthy(minutes: int = 60, start: int = T0, seed: int = 1) -> list[tuple[float, str]]:
    """A quiet site: ~40 requests a minute from 60 visitors, pages with their assets, a
    little Googlebot, 1 % 404s, no server errors."""
    rng = random.Random(seed)
    visitors = [f"198.51.100.{i}" for i in range(1, 61)]
    out = []
    for minute in range(minutes):
        for k in range(40):
            t = start + minute * 60 + k * 1.5
            ip = rng.choice(visitors)
            r = rng.random()
            if r < 0.05:
                out.append((t, line("66.249.66.1", t, f"/news/{k}.html", agent=GOOGLE)))
            elif r < 0.06:
                out.append((t, line(ip, t, "/old-page.html", 404, 150, OWN)))
            elif r < 0.5:
                out.append((t, line(ip, t, f"/static/site{k % 5}.css", 200, 8000, OWN)))
            elif r < 0.6:
                out.append((t, line(ip, t, f"/img/photo{k % 9}.jpg", 200, 60000, OWN)))
            else:
                out.append((t, line(ip, t, f"/news/{k % 20}.html", 200, 12000, OWN)))
    return out


def cc_attack(start: int = T0) -> list[tuple[float, str]]:
    """Minutes 40-44: three addresses each send 500 requests a minute to /login.php, and
    300 addresses send 1,200 a minute to /search with random queries."""
    rng = random.Random(2)
    out = []
    for minute in range(40, 45):
        base = start + minute * 60
        for i in range(1500):
            ip = f"203.0.113.{10 + i % 3}"
            t = base + i * 0.04
            out.append((t, line(ip, t, "/login.php", 200, 900, method="POST")))
        for i in range(1200):
            t = base + i * 0.05
            ip = f"198.18.{i % 300 // 250}.{i % 300 % 250 + 1}"
            q = f"/search?q={rng.getrandbits(32):x}"
            out.append((t, line(ip, t, q, 200, 3000)))
    return out


def crawler_flood(start: int = T0) -> list[tuple[float, str]]:
    """Baiduspider fetching 60 pages a minute all hour (a real, slow crawl)."""
    return [
        (t, line(f"220.181.108.{k % 20 + 1}", t, f"/product/{minute}-{k}", 200, 30000, agent=BAIDU))
        for minute in range(60)
        for k in range(60)
        for t in [start + minute * 60 + k + 0.5]
    ]


def downloads(start: int = T0, foreign: bool = False) -> list[tuple[float, str]]:
    """Two mp3 downloads a minute of 8 MB each; with ``foreign``, linked from a forum."""
    referer = "https://bbs.forum.example.net/thread-7.html" if foreign else OWN
    return [
        (t, line("198.51.100.200", t, f"/music/song{minute % 4}.mp3", 200, 8_000_000, referer))
        for minute in range(60)
        for t in (start + minute * 60 + 7.25, start + minute * 60 + 37.25)
    ]


def bad_gateway(start: int = T0) -> list[tuple[float, str]]:
    """Minutes 50-52: the PHP backend is down — 150 requests a minute answered 502."""
    return [
        (t, line(f"198.51.100.{k % 50 + 1}", t, "/index.php", 502, 150, OWN))
        for minute in range(50, 53)
        for k in range(150)
        for t in [start + minute * 60 + k * 0.4 + 0.25]
    ]


def write(path: Path, *parts: list[tuple[float, str]], compress: bool = False) -> Path:
    """Write the parts merged in time order (as a server writes them)."""
    text = "".join(text for _, text in sorted(p for part in parts for p in part))
    if compress:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="ascii")
    return path

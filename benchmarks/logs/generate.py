"""Deterministic combined-format access logs for the web-log benchmark and tests.

A seeded generator (no traffic is sent: addresses are data) writes a log whose shape is
close to a real busy site: Zipf-distributed clients and URLs, a mix of browsers and
crawlers (baiduspider, googlebot, bytespider…), static assets, big downloads (mp3, zip),
images hot-linked from foreign sites, a few 404/502/504, and — in the last hour — a CC
attack: a handful of addresses hammering ``/login.php`` and a swarm of addresses hitting
``/search`` with random queries. Usage::

    python benchmarks/logs/generate.py OUT.log --size-mb 1024 [--seed 7] [--hours 24]
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import random
import time
from collections.abc import Iterator
from pathlib import Path

BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.43",
    "Mozilla/5.0 (Linux; Android 13; SM-S9180) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/116.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
)
CRAWLERS = (
    "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Sogou web spider/4.0(+http://www.sogou.com/docs/help/webmasters.htm#07)",
    "Mozilla/5.0 (Linux; Android 5.0) AppleWebKit/537.36 (KHTML, like Gecko) Mobile Safari/"
    "537.36 (compatible; Bytespider; spider-feedback@bytedance.com)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
)
PAGES = ("/", "/index.html", "/news/{n}.html", "/product/{n}", "/api/v1/items?id={n}")
ASSETS = ("/static/app.{n}.js", "/static/site.{n}.css", "/img/p{n}.jpg", "/img/icon{n}.png")
DOWNLOADS = ("/music/track{n}.mp3", "/files/setup{n}.zip", "/video/clip{n}.flv")
OWN_REFERER = "https://www.example.com/"
FOREIGN_REFERERS = ("https://bbs.hotlinker.example.net/thread-9.html", "https://blog.other.test/")


def _zipf_cdf(n: int, s: float) -> list[float]:
    weights = [1.0 / (k**s) for k in range(1, n + 1)]
    return list(itertools.accumulate(weights))


class _Zipf:
    """Draw ranks 0..n-1 with a Zipf(s) law from a seeded generator."""

    def __init__(self, rng: random.Random, n: int, s: float) -> None:
        self._rng, self._cdf = rng, _zipf_cdf(n, s)

    def __call__(self) -> int:
        return bisect.bisect_left(self._cdf, self._rng.random() * self._cdf[-1])


def _address(rng: random.Random) -> str:
    return (
        f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    )


def lines(seed: int, start_s: int, hours: float, count: int) -> Iterator[str]:
    """``count`` log lines spread evenly over ``hours`` from ``start_s`` (UTC epoch)."""
    rng = random.Random(seed)
    clients = [_address(rng) for _ in range(100_000)]
    pick_client, pick_n = _Zipf(rng, len(clients), 1.05), _Zipf(rng, 5000, 1.1)
    attackers = [f"203.0.113.{i}" for i in range(10, 15)]
    swarm = [f"198.18.{i // 250}.{i % 250 + 1}" for i in range(2000)]
    span = hours * 3600
    attack_from = start_s + span - 2400  # the last 40 minutes, ending 10 minutes early
    attack_to = start_s + span - 600
    stamp_cache: dict[int, str] = {}
    for i in range(count):
        t = start_s + int(i * span / count)
        stamp = stamp_cache.get(t)
        if stamp is None:
            stamp_cache.clear()
            stamp = stamp_cache[t] = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(t))
        r = rng.random()
        ua = rng.choice(BROWSERS)
        referer = OWN_REFERER
        status = 200
        if attack_from <= t < attack_to and r < 0.30:
            if r < 0.12:
                ip, path, ua, referer = rng.choice(attackers), "/login.php", BROWSERS[0], "-"
            else:
                ip = rng.choice(swarm)
                path, referer = f"/search?q={rng.getrandbits(40):x}", "-"
            size = rng.randrange(2000, 6000)
            status = 200 if rng.random() < 0.7 else 502
        else:
            ip = clients[pick_client()]
            n = pick_n()
            if r < 0.10:
                ua, ip = rng.choice(CRAWLERS), f"220.181.108.{n % 200 + 1}"
                path, size = rng.choice(PAGES).format(n=n), rng.randrange(5000, 60000)
            elif r < 0.12:
                path, size = (
                    rng.choice(DOWNLOADS).format(n=n % 50),
                    rng.randrange(2_000_000, 9_000_000),
                )
                if rng.random() < 0.3:
                    referer = rng.choice(FOREIGN_REFERERS)
            elif r < 0.55:
                path, size = rng.choice(ASSETS).format(n=n % 300), rng.randrange(300, 90000)
                if rng.random() < 0.25:
                    status, size = 304, 0
            else:
                path, size = rng.choice(PAGES).format(n=n), rng.randrange(3000, 40000)
                referer = (
                    "https://www.baidu.com/s?wd=example" if rng.random() < 0.3 else OWN_REFERER
                )
            if rng.random() < 0.01:
                status, size = rng.choice((404, 404, 404, 502, 504)), 150
        yield (f'{ip} - - [{stamp}] "GET {path} HTTP/1.1" {status} {size} "{referer}" "{ua}"\n')


def write(
    path: Path, size_mb: float, seed: int = 7, hours: float = 24.0, start_s: int = 1_795_000_000
) -> int:
    """Write about ``size_mb`` MiB of log lines to ``path``; returns the line count."""
    approx_line = 215
    count = int(size_mb * 1024 * 1024 / approx_line)
    with path.open("w", encoding="ascii", buffering=1 << 20) as f:
        batch: list[str] = []
        for line in lines(seed, start_s, hours, count):
            batch.append(line)
            if len(batch) >= 10_000:
                f.write("".join(batch))
                batch.clear()
        f.write("".join(batch))
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--size-mb", type=float, default=1024)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hours", type=float, default=24.0)
    args = parser.parse_args()
    n = write(args.out, args.size_mb, args.seed, args.hours)
    print(f"{args.out}: {n} lines, {args.out.stat().st_size} bytes")


if __name__ == "__main__":
    main()

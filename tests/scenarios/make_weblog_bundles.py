"""Write the web-log scenario bundles (run once by hand; the JSON files are committed).

``weblogs_attack.json``: one hour of a small site's nginx log (+0800) with a CC attack
(three addresses on /login.php, 300 on /search), mp3 downloads hot-linked from a forum,
three minutes of 502s and two malformed lines; an older rotation (gzip) sits next to it.
``weblogs_crawled.json``: Baiduspider crawling all hour. ``weblogs_healthy.json``: the
same site on a quiet hour. Paths are shown as on the server (the temporary root is cut off).

    .venv/bin/python tests/scenarios/make_weblog_bundles.py
"""

import dataclasses
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from hostmedic.collectors.weblogs import LogRequest, collect_weblogs  # noqa: E402
from hostmedic.facts.bundle import dump_bundle  # noqa: E402
from hostmedic.settings import Settings  # noqa: E402
from tests.unit import weblog_samples as S  # noqa: E402


def bundle(root: Path, name: str) -> None:
    facts = collect_weblogs(LogRequest(root=str(root)), Settings().weblogs)
    facts = dataclasses.replace(facts, read_at=float(facts.until_s + 120))
    text = json.dumps(dump_bundle({"weblogs": facts}), ensure_ascii=False, indent=1)
    (HERE / "bundles" / name).write_text(text.replace(str(root), "") + "\n", encoding="utf-8")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, parts in (
            ("weblogs_healthy.json", [S.healthy()]),
            ("weblogs_crawled.json", [S.healthy(), S.crawler_flood()]),
            (
                "weblogs_attack.json",
                [S.healthy(), S.cc_attack(), S.downloads(foreign=True), S.bad_gateway()],
            ),
        ):
            root = Path(tmp) / name
            logs = root / "var/log/nginx"
            logs.mkdir(parents=True)
            S.write(logs / "access.log.1.gz", S.healthy(start=S.T0 - 3600), compress=True)
            path = S.write(logs / "access.log", *parts)
            if "attack" in name:
                lines = path.read_text().splitlines(keepends=True)
                lines[100:100] = ["\x16\x03\x01 not a log line\n"]
                lines[2000:2000] = ['203.0.113.77 - - [bad time] "GET / HTTP/1.1" 200 1 "-" "-"\n']
                path.write_text("".join(lines))
            bundle(root, name)


if __name__ == "__main__":
    main()

"""What a fetched page says about itself, pure: its text, title and scripts.

Two fetches of the same page are compared by their scripts (seed 004 "被插入广告": an
operator or ISP injects a script into plain-HTTP pages), so each page is reduced to the
list of its external script URLs and a short hash of each inline script. The stdlib HTML
parser never raises on malformed markup, which is what a block page or a hostile server
may send; the body is decoded by its declared charset, else UTF-8, else GB18030 (the
Chinese clouds' block pages are not always UTF-8).
"""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser

MAX_SCRIPTS = 64
_CHARSET = re.compile(rb"""charset\s*=\s*["']?([A-Za-z0-9_\-]+)""", re.IGNORECASE)


def decode_body(body: bytes, content_type: str | None) -> str:
    """Text of a response body: declared charset (header, then <meta>), UTF-8, GB18030."""
    candidates: list[str] = []
    for source in (content_type.encode("latin-1", "replace") if content_type else b"", body[:2048]):
        match = _CHARSET.search(source)
        if match:
            candidates.append(match.group(1).decode("ascii"))
    for charset in [*candidates, "utf-8", "gb18030"]:
        try:
            return body.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return body.decode("utf-8", "replace")


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title: str | None = None
        self.scripts: list[str] = []
        self._in_title = False
        self._inline: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and self.title is None:
            self._in_title, self.title = True, ""
        elif tag == "script":
            src = next((v for k, v in attrs if k == "src" and v), None)
            if src is not None:
                self._add(src.strip())
            else:
                self._inline = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag == "script" and self._inline is not None:
            code = "".join(self._inline).strip()
            if code:
                self._add("inline:" + hashlib.sha256(code.encode()).hexdigest()[:12])
            self._inline = None

    def handle_data(self, data: str) -> None:
        if self._in_title and self.title is not None and len(self.title) < 512:
            self.title += data
        if self._inline is not None:
            self._inline.append(data)

    def _add(self, script: str) -> None:
        if len(self.scripts) < MAX_SCRIPTS:
            self.scripts.append(script[:300])


def page_summary(text: str) -> tuple[str | None, tuple[str, ...]]:
    """(title, scripts) of an HTML page; scripts are external URLs as written, and
    ``inline:<sha256/12>`` for inline code, in page order."""
    parser = _PageParser()
    try:
        parser.feed(text)
        parser.close()
    except (AssertionError, ValueError):
        pass  # malformed declarations (``<![if …``) stop the stdlib parser: keep what it saw
    title = " ".join(parser.title.split()) if parser.title is not None else None
    return (title[:200] if title else title), tuple(parser.scripts)

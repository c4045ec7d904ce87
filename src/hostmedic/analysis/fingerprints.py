"""Which known non-site page a fetch landed on, from ``data/block_pages.toml``. Pure.

An ICP-filing notice, a cloud WAF's block page or an injected script is evidence for a
specific branch of seed 004's public-access tree (1.1-A 插入广告, 1.1-B.1-A 异常跳转 to a
filing / WAF / 绿网 page). The markers are data; this module compiles them once and
matches a :class:`PageView`. The condition language is documented in the data file.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources

from hostmedic.errors import ParseError

KINDS = ("icp_filing", "waf_block", "ddos_block", "green_net", "isp_block", "injection")
_FLAGS = re.IGNORECASE | re.DOTALL


@dataclass(frozen=True, slots=True)
class PageView:
    """What matching looks at: the final response plus every URL/host of the chain."""

    status: int
    headers: tuple[tuple[str, str], ...]
    cookies: tuple[str, ...]
    body: str
    body_length: int
    title: str | None
    urls: tuple[str, ...]
    hosts: tuple[str, ...]


Condition = Callable[[PageView], bool]


@dataclass(frozen=True, slots=True)
class BlockPage:
    """One compiled entry of the data file."""

    page_id: str
    kind: str
    vendor: str
    all_of: tuple[Condition, ...]
    any_of: tuple[Condition, ...]

    def matches(self, page: PageView) -> bool:
        if not all(c(page) for c in self.all_of):
            return False
        return not self.any_of or any(c(page) for c in self.any_of)


def _regex(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text, _FLAGS)
    except re.error as exc:
        raise ParseError(f"bad regular expression {text!r}: {exc}") from exc


def _search(rx: re.Pattern[str], pick: Callable[[PageView], tuple[str, ...]]) -> Condition:
    return lambda p: any(rx.search(v) for v in pick(p))


def compile_condition(text: str) -> Condition:
    """One condition of the data file's language → a predicate on a PageView."""
    if text.startswith("status>="):
        low = int(text[8:])
        return lambda p: p.status >= low
    if text.startswith("status:"):
        code = int(text[7:])
        return lambda p: p.status == code
    if text.startswith("size<"):
        limit = int(text[5:])
        return lambda p: p.body_length < limit
    if text.startswith("cookie:"):
        name = text[7:].lower()
        return lambda p: any(c.lower() == name for c in p.cookies)
    if text.startswith("header:") and "=~" in text:
        name, pattern = text[7:].split("=~", 1)
        rx, key = _regex(pattern), name.lower()
        return lambda p: any(k == key and rx.search(v) for k, v in p.headers)
    fields: dict[str, Callable[[PageView], tuple[str, ...]]] = {
        "body=~": lambda p: (p.body,),
        "title=~": lambda p: (p.title or "",),
        "host=~": lambda p: p.hosts,
        "url=~": lambda p: p.urls,
    }
    for prefix, pick in fields.items():
        if text.startswith(prefix):
            return _search(_regex(text[len(prefix) :]), pick)
    raise ParseError(f"unknown condition {text!r}")


def parse_block_pages(text: str) -> tuple[BlockPage, ...]:
    """Compile the data file's text; ParseError on an unknown kind or condition."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ParseError(f"block pages: {exc}") from exc
    pages = []
    for entry in document.get("page", []):
        try:
            page_id, kind = str(entry["id"]), str(entry["kind"])
            if kind not in KINDS:
                raise ParseError(f"{page_id}: unknown kind {kind!r}")
            pages.append(
                BlockPage(
                    page_id,
                    kind,
                    str(entry.get("vendor", "")),
                    tuple(compile_condition(c) for c in entry.get("all", [])),
                    tuple(compile_condition(c) for c in entry.get("any", [])),
                )
            )
        except (KeyError, ValueError) as exc:  # ParseError is a ValueError too
            raise ParseError(f"block pages entry {entry!r}: {exc}") from exc
    return tuple(pages)


@cache
def block_pages() -> tuple[BlockPage, ...]:
    """The packaged data file, compiled once."""
    text = resources.files("hostmedic").joinpath("data/block_pages.toml").read_text("utf-8")
    return parse_block_pages(text)


def match_page(page: PageView, pages: tuple[BlockPage, ...] | None = None) -> tuple[str, ...]:
    """Ids of every entry the page matches, in data-file order."""
    return tuple(p.page_id for p in (block_pages() if pages is None else pages) if p.matches(page))


def kind_of(page_id: str) -> str | None:
    """The kind (``icp_filing``, ``waf_block``…) of a fingerprint id, None if unknown."""
    return next((p.kind for p in block_pages() if p.page_id == page_id), None)

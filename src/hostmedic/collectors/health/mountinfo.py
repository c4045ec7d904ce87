"""``/proc/self/mountinfo`` parsed: every mount with its id, parent, device and type.

The disk, hidden-directory and busy-mount checks all start from here. Pure parsing;
paths keep the kernel's octal escapes decoded (``\\040`` is a space).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from hostmedic.errors import ParseError

_OCTAL = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True, slots=True)
class Mount:
    mount_id: int
    parent_id: int
    major: int
    minor: int
    root: str
    mount_point: str
    options: str
    fstype: str
    source: str


def unescape(path: str) -> str:
    """Decode the kernel's ``\\ooo`` escapes (space, tab, newline, backslash)."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), path)


def parse_mountinfo(text: str) -> list[Mount]:
    """All mounts, in the kernel's order (a parent before its children); malformed lines
    raise :class:`ParseError` — a truncated mount table must not look like a short one."""
    mounts = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        left, sep, right = line.partition(" - ")
        head, tail = left.split(), right.split()
        if not sep or len(head) < 6 or len(tail) < 2:
            raise ParseError(f"mountinfo line {number}: {line[:80]!r}")
        try:
            major, minor = (int(x) for x in head[2].split(":"))
            mounts.append(
                Mount(
                    mount_id=int(head[0]),
                    parent_id=int(head[1]),
                    major=major,
                    minor=minor,
                    root=unescape(head[3]),
                    mount_point=unescape(head[4]),
                    options=head[5],
                    fstype=tail[0],
                    source=unescape(tail[1]),
                )
            )
        except ValueError as exc:
            raise ParseError(f"mountinfo line {number}: {line[:80]!r}") from exc
    return mounts


@cache
def health_data() -> dict[str, Any]:
    """The shipped name lists of the health checks (data/health.toml)."""
    text = resources.files("hostmedic").joinpath("data/health.toml").read_text("utf-8")
    return tomllib.loads(text)


def is_pseudo(m: Mount) -> bool:
    """A filesystem that holds no user data on a disk (proc, cgroup, squashfs images…)."""
    return m.fstype in health_data()["filesystems"]["pseudo"]


def stack_level(m: Mount, mounts: list[Mount]) -> int:
    """How many mounts lie below ``m`` on the same mount point (0 = the bottom one). The
    kernel's listing order is not always parent-first, so the parent chain decides."""
    by_id = {x.mount_id: x for x in mounts}
    level, seen = 0, {m.mount_id}
    parent = by_id.get(m.parent_id)
    while (
        parent is not None and parent.mount_point == m.mount_point and parent.mount_id not in seen
    ):
        level += 1
        seen.add(parent.mount_id)
        parent = by_id.get(parent.parent_id)
    return level


def top_down(mounts: list[Mount]) -> list[Mount]:
    """Deepest mount points first; on one mount point, the top of the stack first."""
    return sorted(
        mounts,
        key=lambda m: (-len(m.mount_point.rstrip("/").split("/")), -stack_level(m, mounts)),
    )


def containing_mount(mounts: list[Mount], path: str) -> Mount | None:
    """The mount a path lives on: the top one on the longest matching mount point."""
    for m in top_down(mounts):
        point = m.mount_point.rstrip("/") or "/"
        if path == point or path.startswith(point if point == "/" else point + "/"):
            return m
    return None

"""Look under mount points, run inside a private mount namespace.

``hostmedic`` starts this module with ``unshare --mount --propagation private``: in that
throwaway namespace each mount is detached (``umount -l``), deepest first, and the
directory it covered is listed. Nothing changes for the rest of the machine — the
namespace ends with this process — and nothing is written. Standard library only, so
that nothing is imported after the mounts are gone.

Input (stdin): a JSON list of mount points, children before parents. Output (stdout): one
JSON object per mount point: ``{"mount_point", "entries", "sample", "files",
"hidden_bytes", "truncated"}`` or ``{"mount_point", "error"}``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import stat
import sys
import time

MNT_DETACH = 2
SAMPLE = 5
MAX_ENTRIES = 20_000
MAX_SECONDS = 2.0


def _printable(name: str) -> str:
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def measure(path: str, budget: list[int], deadline: float) -> dict[str, object]:
    """Entries at the top, a sample of their names, and the files (non-empty regular
    files and symlinks: data, unlike the device nodes, empty placeholders and empty
    directories an image leaves under /dev) and their bytes below, within the shared budget."""
    top = sorted(os.listdir(path))
    total, files, truncated = 0, 0, False
    stack = [os.path.join(path, n) for n in top]
    while stack:
        if budget[0] <= 0 or time.monotonic() > deadline:
            truncated = True
            break
        budget[0] -= 1
        entry = stack.pop()
        try:
            st = os.lstat(entry)
        except OSError:
            continue
        # empty files are placeholders (a container image's /dev/console), not data
        if (stat.S_ISREG(st.st_mode) and st.st_size > 0) or stat.S_ISLNK(st.st_mode):
            files += 1
            total += st.st_blocks * 512
        elif stat.S_ISDIR(st.st_mode):
            try:
                stack.extend(os.path.join(entry, n) for n in os.listdir(entry))
            except OSError:
                continue
    return {
        "entries": len(top),
        "sample": [_printable(n) for n in top[:SAMPLE]],
        "files": files,
        "hidden_bytes": total,
        "truncated": truncated,
    }


def main() -> int:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    points = json.load(sys.stdin)
    budget = [MAX_ENTRIES]
    deadline = time.monotonic() + MAX_SECONDS
    out = []
    for point in points:
        try:
            mounted = os.stat(point)
        except OSError as exc:
            out.append({"mount_point": point, "error": exc.strerror or str(exc)})
            continue
        if libc.umount2(point.encode("utf-8", "surrogateescape"), MNT_DETACH) != 0:
            out.append({"mount_point": point, "error": os.strerror(ctypes.get_errno())})
            continue
        try:
            below = os.stat(point)
            if (below.st_dev, below.st_ino) == (mounted.st_dev, mounted.st_ino):
                # a directory bind-mounted onto itself (``ip netns`` does this): the
                # "hidden" entries are the very ones shown
                out.append({"mount_point": point, "entries": 0, "same_directory": True})
                continue
            out.append({"mount_point": point, **measure(point, budget, deadline)})
        except OSError as exc:
            out.append({"mount_point": point, "error": exc.strerror or str(exc)})
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())

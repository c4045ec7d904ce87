"""The files of the machine under diagnosis: ``/`` when live, or another machine's disk
mounted somewhere with ``--root DIR`` (seed 004's "back up the disk, investigate,
reinstall" path).

Every file-based check reads through :class:`RootFS`, so one code path serves both. Paths
are the *machine's* paths (``/etc/passwd``); symbolic links are resolved the way the
machine itself would see them, as if ``DIR`` were ``/`` (a chroot): an absolute link target
(``/bin -> /usr/bin``) restarts at ``DIR``, and ``..`` never climbs above it. So a hostile
disk cannot make hostmedic read the host's files instead of its own. Only regular files are
opened (a FIFO planted as ``/etc/rc.local`` must not hang the run), and reads are bounded.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import stat

MAX_SYMLINKS = 40  # the kernel's own limit (ELOOP)
DEFAULT_READ_LIMIT = 4 << 20


class RootFS:
    """Read-only access to the files of the machine rooted at ``root``."""

    def __init__(self, root: str = "/") -> None:
        self.root = os.path.realpath(root)

    @property
    def live(self) -> bool:
        """True when the machine is the one hostmedic runs on."""
        return self.root == "/"

    def host_path(self, path: str) -> str:
        """Where the machine's ``path`` is on this host, symlinks resolved inside the root.

        Components that do not exist are appended as they are (opening them then fails
        with ENOENT); a symlink loop raises ``OSError(ELOOP)``.
        """
        return self._join(self._resolve(path))

    def real_path(self, path: str) -> str:
        """The machine's own name for ``path`` with every symlink resolved
        (``/bin/ps`` → ``/usr/bin/ps`` on a merged-/usr system)."""
        return "/" + "/".join(self._resolve(path))

    def _resolve(self, path: str) -> list[str]:
        pending = [p for p in path.split("/") if p not in ("", ".")]
        resolved: list[str] = []
        hops = 0
        while pending:
            part = pending.pop(0)
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = self._join([*resolved, part])
            try:
                st = os.lstat(candidate)
            except OSError:
                resolved.append(part)
                continue
            if not stat.S_ISLNK(st.st_mode):
                resolved.append(part)
                continue
            hops += 1
            if hops > MAX_SYMLINKS:
                raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            pending = [p for p in target.split("/") if p not in ("", ".")] + pending
        return resolved

    def _join(self, parts: list[str]) -> str:
        if self.root == "/":
            return "/" + "/".join(parts)
        return os.path.join(self.root, *parts) if parts else self.root

    def stat(self, path: str) -> os.stat_result:
        """``stat`` of the machine's ``path`` (symlinks resolved inside the root)."""
        return os.lstat(self.host_path(path))

    def is_dir(self, path: str) -> bool:
        """True for a directory (after resolving links inside the root)."""
        try:
            return stat.S_ISDIR(self.stat(path).st_mode)
        except OSError:
            return False

    def is_file(self, path: str) -> bool:
        """True for a regular file (after resolving links inside the root)."""
        try:
            return stat.S_ISREG(self.stat(path).st_mode)
        except OSError:
            return False

    def exists(self, path: str) -> bool:
        """True when anything is at ``path``."""
        try:
            self.stat(path)
        except OSError:
            return False
        return True

    def listdir(self, path: str) -> list[str]:
        """Sorted names in a directory; an unreadable or missing one is empty."""
        try:
            return sorted(os.listdir(self.host_path(path)))
        except OSError:
            return []

    def glob(self, directory: str, pattern: str) -> list[str]:
        """Machine paths of the entries of ``directory`` matching a shell ``pattern``."""
        base = directory.rstrip("/") or ""
        return [f"{base}/{n}" for n in self.listdir(directory) if fnmatch.fnmatch(n, pattern)]

    def open_regular(self, path: str) -> int:
        """A read-only descriptor of the machine's regular file ``path`` (caller closes).

        Raises OSError for anything that is not a regular file (a FIFO, a device, a
        directory) without blocking on it.
        """
        fd = os.open(self.host_path(path), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(errno.EINVAL, "not a regular file", path)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def read_bytes(self, path: str, limit: int = DEFAULT_READ_LIMIT, offset: int = 0) -> bytes:
        """At most ``limit`` bytes of a regular file, from ``offset`` on."""
        fd = self.open_regular(path)
        with os.fdopen(fd, "rb") as f:
            f.seek(offset)
            return f.read(limit)

    def read_text(self, path: str, limit: int = DEFAULT_READ_LIMIT) -> str:
        """A text file, decoded as UTF-8 with undecodable bytes replaced."""
        return self.read_bytes(path, limit).decode("utf-8", "replace")

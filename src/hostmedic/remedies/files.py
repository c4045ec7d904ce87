"""File helpers the remedies share: read a file with its metadata, replace its bytes
atomically keeping mode and owner, capture and restore metadata (mode, owner, times,
extended attributes, the immutable / append-only flags trojans set with ``chattr +i``),
and the paths no remedy may touch.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import os
import stat
import struct
import sys
from dataclasses import dataclass
from typing import Any

from hostmedic.remedies.model import ActionFailed, FixContext, Refused

FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602
FS_IMMUTABLE_FL = 0x00000010
FS_APPEND_FL = 0x00000020
_PSEUDO = ("/proc", "/sys", "/dev", "/run/systemd")
_TEMP_UNDER_DEV = ("/dev/shm", "/dev/mqueue")  # plain tmpfs where malware hides: allowed


@dataclass(frozen=True, slots=True)
class FileState:
    """A regular file's bytes and the metadata a rewrite must keep."""

    data: bytes
    mode: int
    uid: int
    gid: int


def read_state(path: str, limit: int) -> FileState:
    """Bytes and metadata of a regular file (Refused for anything else or too large)."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise Refused("error.fix.no_file", path=path, detail=exc.strerror or str(exc)) from exc
    if not stat.S_ISREG(st.st_mode):
        raise Refused("error.fix.not_regular", path=path)
    if st.st_size > limit:
        raise Refused("error.fix.too_big", path=path, size=st.st_size)
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    return FileState(data, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)


def write_like(path: str, state: FileState, data: bytes) -> None:
    """Replace ``path``'s bytes atomically (write beside it, fsync, rename), keeping the
    mode and owner it had."""
    temp = f"{path}.hostmedic-{os.getpid()}"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fchown(fd, state.uid, state.gid)
            os.fchmod(fd, state.mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise ActionFailed(
            "error.cannot_write", path=path, detail=exc.strerror or str(exc)
        ) from exc


def _mapped_files() -> set[str]:
    """Files mapped by init and by hostmedic itself (libc, the loader, the interpreter):
    moving one of those can take the machine down."""
    found: set[str] = set()
    for pid in ("1", "self"):
        try:
            with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as f:
                found.update(
                    line.split(None, 5)[5].strip() for line in f if len(line.split(None, 5)) == 6
                )
        except OSError:
            continue
    return {p for p in found if p.startswith("/")}


def forbidden_path(path: str, ctx: FixContext) -> bool:
    """Paths no remedy may change: pseudo filesystems, hostmedic's state and code, and the
    files init or hostmedic have mapped."""
    real = os.path.realpath(path)
    temp = any(real.startswith(p + "/") for p in _TEMP_UNDER_DEV)
    if not temp and any(real == p or real.startswith(p + "/") for p in _PSEUDO):
        return True
    package = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))  # hostmedic/
    own = [os.path.realpath(ctx.state_dir), package, os.path.realpath(sys.prefix)]
    if any(real == p or real.startswith(p + "/") for p in own):
        return True
    return ctx.live and real in _mapped_files()


def get_flags(path: str) -> int:
    """The inode flags ``lsattr`` shows (0 where the filesystem has none, e.g. tmpfs)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return 0
    try:
        buf = fcntl.ioctl(fd, FS_IOC_GETFLAGS, struct.pack("i", 0))
        return int(struct.unpack("i", buf)[0])
    except OSError as exc:
        if exc.errno in (errno.ENOTTY, errno.EOPNOTSUPP, errno.EINVAL):
            return 0
        raise ActionFailed("error.fix.flags", path=path, detail=exc.strerror or str(exc)) from exc
    finally:
        os.close(fd)


def set_flags(path: str, flags: int) -> None:
    """Set inode flags (what ``chattr`` does; needs CAP_LINUX_IMMUTABLE for +i / +a)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("i", flags))
    except OSError as exc:
        raise ActionFailed("error.fix.flags", path=path, detail=exc.strerror or str(exc)) from exc
    finally:
        os.close(fd)


def metadata(path: str) -> dict[str, Any]:
    """Mode, owner, times (ns), extended attributes (base64) and inode flags of a file."""
    st = os.lstat(path)
    xattrs: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for name in os.listxattr(path, follow_symlinks=False):
            value = os.getxattr(path, name, follow_symlinks=False)
            xattrs[name] = base64.b64encode(value).decode("ascii")
    return {
        "mode": stat.S_IMODE(st.st_mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
        "atime_ns": st.st_atime_ns,
        "mtime_ns": st.st_mtime_ns,
        "size": st.st_size,
        "xattrs": xattrs,
        "flags": get_flags(path),
    }


def apply_metadata(path: str, meta: dict[str, Any]) -> list[str]:
    """Put recorded metadata back (owner, mode, xattrs, times); returns what could not be
    restored (e.g. a ``security.*`` attribute the filesystem refuses)."""
    missed: list[str] = []
    os.chown(path, meta["uid"], meta["gid"], follow_symlinks=False)
    os.chmod(path, meta["mode"])  # after chown: chown clears setuid bits
    for name, value in meta.get("xattrs", {}).items():
        try:
            os.setxattr(path, name, base64.b64decode(value), follow_symlinks=False)
        except OSError as exc:
            missed.append(f"xattr {name}: {exc.strerror}")
    os.utime(path, ns=(meta["atime_ns"], meta["mtime_ns"]), follow_symlinks=False)
    return missed

"""An open directory fd of the cgroup-v2 root, to attach cgroup eBPF programs to.

A ``BPF_PROG_TYPE_CGROUP_SKB`` program attached to the root of the cgroup-v2 hierarchy runs
for every socket of the machine (every cgroup inherits it). Attaching needs an fd of that
directory, which needs cgroup2 mounted somewhere:

* most systemd hosts mount it at ``/sys/fs/cgroup`` (hybrid ones at
  ``/sys/fs/cgroup/unified``): :func:`find_cgroup2_root` finds it in ``/proc/self/mountinfo``;
* where it is not mounted, hostmedic must not mount it on the host (diagnosis never changes
  the visible system): :func:`open_cgroup2_root` forks a short-lived child that unshares
  its mount namespace, makes every mount private, mounts cgroup2 over an existing
  directory *inside that private namespace*, opens it and passes the fd back over a unix
  socket (SCM_RIGHTS). The child exits; the fd keeps the (invisible) mount alive exactly as
  long as hostmedic holds it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from hostmedic.errors import FactUnavailable, ParseError

CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
# Existing directories the child may mount over (in its private namespace only).
MOUNT_POINTS = ("/sys/fs/cgroup", "/mnt", "/tmp", "/")
_CHILD_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Mount:
    """One line of /proc/self/mountinfo, the fields hostmedic uses."""

    root: str  # the mounted subtree of the filesystem ("/" = its root)
    mount_point: str
    fstype: str


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[Mount]:
    """Parse /proc/PID/mountinfo; ParseError on a line without the `` - `` separator."""
    mounts = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        head, sep, tail = line.partition(" - ")
        fields, rest = head.split(), tail.split()
        if not sep or len(fields) < 5 or not rest:
            raise ParseError(f"mountinfo line {n} is not in the kernel's format")
        mounts.append(Mount(_unescape(fields[3]), _unescape(fields[4]), rest[0]))
    return mounts


def find_cgroup2_root(mounts: list[Mount]) -> str | None:
    """Mount point of the cgroup-v2 hierarchy's root (the first one), or None."""
    for m in mounts:
        if m.fstype == "cgroup2" and m.root == "/":
            return m.mount_point
    return None


def _check(ret: int) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _child_mount_and_send(libc: ctypes.CDLL, sock: socket.socket) -> None:
    """In the forked child: private mount namespace, mount cgroup2, send the fd back."""
    _check(libc.unshare(CLONE_NEWNS))
    # without this, the mount below could propagate back to the host's namespace
    _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None))
    for target in MOUNT_POINTS:
        if os.path.isdir(target):
            _check(libc.mount(b"cgroup2", target.encode(), b"cgroup2", 0, None))
            fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
            socket.send_fds(sock, [b"ok"], [fd])
            return
    raise OSError(errno.ENOENT, "no directory to mount cgroup2 on")


def _open_private_mount() -> int:
    # loaded before the fork: find_library may run ldconfig, which a forked child must not
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:  # the child: report the errno as text, never return into the caller
        status = 0
        try:
            parent.close()
            _child_mount_and_send(libc, child)
        except OSError as exc:
            status = 1
            child.sendall(f"err {exc.errno} {exc.strerror}".encode())
        finally:
            os._exit(status)
    child.close()
    try:
        parent.settimeout(_CHILD_TIMEOUT_S)
        msg, fds, _flags, _addr = socket.recv_fds(parent, 256, 1)
    except OSError as exc:
        raise FactUnavailable(f"mounting cgroup2 privately failed: {exc}") from exc
    finally:
        parent.close()
        os.waitpid(pid, 0)
    if not fds:
        raise FactUnavailable(
            f"cannot mount cgroup2 in a private mount namespace: {msg.decode(errors='replace')}"
        )
    os.set_inheritable(fds[0], False)
    return fds[0]


def open_cgroup2_root(
    *, mountinfo: Path = Path("/proc/self/mountinfo"), mounted: bool = True
) -> int:
    """An O_RDONLY directory fd of the cgroup-v2 root; the caller closes it.

    Uses the host's cgroup2 mount when there is one (``mounted=False`` skips it, for
    tests), else a private mount nobody else can see. FactUnavailable when neither works
    (no cgroup2 in the kernel, not permitted).
    """
    if mounted:
        try:
            where = find_cgroup2_root(parse_mountinfo(mountinfo.read_text()))
        except (OSError, ParseError):
            where = None
        if where is not None:
            try:
                return os.open(where, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError:
                pass  # unreadable or vanished: the private mount may still work
    try:
        filesystems = Path("/proc/filesystems").read_text()
    except OSError:
        filesystems = ""
    if "\tcgroup2\n" not in filesystems:
        raise FactUnavailable("the kernel has no cgroup v2 (cgroup2 is not in /proc/filesystems)")
    return _open_private_mount()

"""Minimal raw netlink plumbing shared by the netlink-based collectors.

Only what the collectors need: open a ``AF_NETLINK`` socket (optionally inside another
network namespace), send one request, receive datagrams into a reused buffer, and split a
buffer into ``(type, flags, seq, payload)`` messages. Framing errors raise
:class:`~hostmedic.errors.ParseError`; a kernel ``NLMSG_ERROR`` becomes :class:`OSError`
with the kernel's errno. Kept dependency-free (no pyroute2) because the collectors parse
thousands of messages per run and a generic library was measured ~25x slower.

EINTR needs no handling here: since PEP 475 Python retries interrupted ``recv``/``send``
itself unless a signal handler raises.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

from hostmedic.errors import FactUnavailable, ParseError

NETLINK_SOCK_DIAG = 4
SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
CLONE_NEWNET = 0x40000000

NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSG_OVERRUN = 4

NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300  # NLM_F_ROOT | NLM_F_MATCH

NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
NLMSG_HDRLEN = NLMSGHDR.size
NLATTR = struct.Struct("=HH")  # len, type
NLA_TYPE_MASK = 0x3FFF  # strips NLA_F_NESTED / NLA_F_NET_BYTEORDER
_ERRNO = struct.Struct("=i")
MAX_ERRNO = 4095  # linux/err.h

DEFAULT_RCVBUF = 1 << 20
DEFAULT_TIMEOUT = 5.0  # a dump reply never takes this long; bounds a wedged read

T = TypeVar("T")


def split_messages(data: bytes | memoryview) -> Iterator[tuple[int, int, int, memoryview]]:
    """Yield ``(type, flags, seq, payload)`` for each netlink message in ``data``.

    The payload is a zero-copy memoryview slice. Raises ParseError for a truncated header,
    an ``nlmsg_len`` below the header size (this includes zero, which would otherwise loop
    forever) or one that runs past the end of the buffer.
    """
    view = data if isinstance(data, memoryview) else memoryview(data)
    end = len(view)
    off = 0
    unpack = NLMSGHDR.unpack_from
    while off < end:
        if end - off < NLMSG_HDRLEN:
            raise ParseError(f"truncated netlink header at offset {off}: {end - off} bytes left")
        length, mtype, flags, seq, _pid = unpack(view, off)
        if length < NLMSG_HDRLEN:
            raise ParseError(f"netlink message at offset {off} has impossible length {length}")
        if off + length > end:
            raise ParseError(
                f"netlink message at offset {off} claims {length} bytes, only {end - off} left"
            )
        yield mtype, flags, seq, view[off + NLMSG_HDRLEN : off + length]
        off += (length + 3) & ~3  # NLMSG_ALIGN; padding after the last message may be absent


def split_attributes(payload: memoryview, start: int) -> Iterator[tuple[int, memoryview]]:
    """Yield ``(type, value)`` for each netlink attribute in ``payload[start:]``.

    Raises ParseError when an attribute header is truncated or its length is below 4 or
    beyond the enclosing message.
    """
    end = len(payload)
    off = start
    unpack = NLATTR.unpack_from
    while off < end:
        if end - off < NLATTR.size:
            raise ParseError(f"truncated netlink attribute header at offset {off}")
        length, atype = unpack(payload, off)
        if length < NLATTR.size or off + length > end:
            raise ParseError(f"netlink attribute type {atype} has bad length {length}")
        yield atype & NLA_TYPE_MASK, payload[off + NLATTR.size : off + length]
        off += (length + 3) & ~3


def raise_for_error(payload: memoryview) -> None:
    """Turn an ``NLMSG_ERROR`` (or an ``NLMSG_DONE`` carrying an error) payload into OSError.

    An error code of 0 is an acknowledgement and returns quietly.
    """
    if len(payload) < _ERRNO.size:
        raise ParseError("netlink error message too short to hold an error code")
    (code,) = _ERRNO.unpack_from(payload, 0)
    if code:
        err = -code
        if not 0 < err <= MAX_ERRNO:  # the kernel only sends -errno; anything else is garbage
            raise ParseError(f"netlink error message with implausible error code {code}")
        raise OSError(err, os.strerror(err))


def pack_message(mtype: int, flags: int, seq: int, payload: bytes) -> bytes:
    """Build one netlink message (header + payload); the port id is left for the kernel."""
    return NLMSGHDR.pack(NLMSG_HDRLEN + len(payload), mtype, flags, seq, 0) + payload


class NetlinkSocket:
    """A raw netlink socket with a large preallocated receive buffer.

    ``recv()`` returns a memoryview into the internal buffer that is only valid until the
    next ``recv()``; callers parse it immediately. Not thread-safe.
    """

    def __init__(
        self,
        protocol: int,
        groups: int = 0,
        rcvbuf: int = DEFAULT_RCVBUF,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> None:
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, protocol)
        except OSError as exc:
            raise FactUnavailable(f"cannot open netlink protocol {protocol}: {exc}") from exc
        try:
            _raise_rcvbuf(sock, rcvbuf)
            sock.bind((0, groups))
            sock.settimeout(timeout)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._buf = bytearray(max(rcvbuf, 65536))
        self._view = memoryview(self._buf)
        self._seq = 0

    def fileno(self) -> int:
        """The socket's file descriptor, for select()/poll()."""
        return self._sock.fileno()

    def setblocking(self, flag: bool) -> None:
        """``False``: non-blocking (recv raises BlockingIOError); ``True``: block, no timeout."""
        self._sock.setblocking(flag)

    def settimeout(self, timeout: float | None) -> None:
        """Blocking mode with a timeout (None: block forever)."""
        self._sock.settimeout(timeout)

    def add_membership(self, group: int) -> None:
        """Join multicast group number ``group`` (1-based, as in the kernel headers)."""
        self._sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)

    def request(self, mtype: int, flags: int, payload: bytes) -> int:
        """Send one request to the kernel and return the sequence number used."""
        self._seq = (self._seq + 1) & 0xFFFFFFFF or 1
        self._sock.sendto(pack_message(mtype, flags, self._seq, payload), (0, 0))
        return self._seq

    def recv(self) -> memoryview:
        """Receive one datagram (possibly many messages) into the shared buffer."""
        n = self._sock.recv_into(self._buf, 0, socket.MSG_TRUNC)
        if n > len(self._buf):
            # Never happens with a 1 MiB buffer; if it does the tail is lost, so say so.
            raise ParseError(f"netlink datagram of {n} bytes exceeds {len(self._buf)}-byte buffer")
        return self._view[:n]

    def close(self) -> None:
        """Close the socket; safe to call twice."""
        self._sock.close()

    def __enter__(self) -> NetlinkSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _raise_rcvbuf(sock: socket.socket, size: int) -> None:
    # SO_RCVBUFFORCE ignores net.core.rmem_max but needs CAP_NET_ADMIN; fall back quietly.
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, size)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


def _setns(fd: int) -> None:
    if hasattr(os, "setns"):  # Python 3.12+
        os.setns(fd, CLONE_NEWNET)
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def run_in_netns(netns_path: str, factory: Callable[[], T]) -> T:
    """Call ``factory()`` on a short-lived thread that first joins the netns at ``netns_path``.

    Sockets created by ``factory`` stay bound to that namespace after the thread exits, while
    the calling thread's namespace is never touched (setns affects only the calling thread).
    Raises FactUnavailable when the path is missing or joining is not permitted.
    """
    try:
        fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        raise FactUnavailable(f"network namespace {netns_path} does not exist") from exc
    except PermissionError as exc:
        raise FactUnavailable(f"no permission to open network namespace {netns_path}") from exc
    result: list[T] = []
    failure: list[BaseException] = []

    def body() -> None:
        try:
            _setns(fd)
            result.append(factory())
        except BaseException as exc:  # re-raised in the caller's thread below
            failure.append(exc)

    try:
        worker = threading.Thread(target=body, name="hostmedic-netns", daemon=True)
        worker.start()
        worker.join()
    finally:
        os.close(fd)
    if failure:
        error = failure[0]
        if isinstance(error, OSError) and error.errno in (errno.EPERM, errno.EACCES):
            raise FactUnavailable(
                f"needs CAP_SYS_ADMIN to enter network namespace {netns_path}"
            ) from error
        if isinstance(error, OSError) and error.errno == errno.EINVAL:
            raise FactUnavailable(f"{netns_path} is not a network namespace") from error
        raise error
    return result[0]

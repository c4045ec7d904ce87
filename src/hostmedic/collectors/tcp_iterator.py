"""Loads the changed-only ``iter/tcp`` program and runs it in a network namespace per tick.

One program, one socket storage map and one link serve every monitored namespace: the
storage lives on each socket, and an iterator instance walks the namespace of the thread
that creates it (a container's is created on a helper thread that entered it). The
program and its record layout are in :mod:`hostmedic.collectors.tcp_iter_program`. Needs
kernel BTF and the TCP iterator with socket storage and socket cookies from tracing
programs (about 5.12+); :class:`TcpIterator` raises FactUnavailable otherwise and the
monitor keeps the sock_diag dump.
"""

from __future__ import annotations

import os

from hostmedic.collectors import bpf
from hostmedic.collectors import netlink as nl
from hostmedic.collectors.bpf import BpfError
from hostmedic.collectors.btf import KIND_FUNC, vmlinux_btf
from hostmedic.collectors.sockdiag import SocketRecord
from hostmedic.collectors.tcp_iter_program import (
    COUNT_SIZE,
    ITER_TARGET,
    PROGRAM_NAME,
    RECORD_SIZE,
    STORAGE_SIZE,
    build_program,
    layout_from_btf,
    parse_output,
)
from hostmedic.errors import FactUnavailable, ParseError

# An upper bound on one run's output: 600,000 sockets' records (the first run reports all).
MAX_OUTPUT = 600_000 * RECORD_SIZE


class TcpIterator:
    """The loaded program; :meth:`read` runs it once in a namespace."""

    def __init__(self) -> None:
        fds: list[int] = []
        try:
            btf = vmlinux_btf()
            layout = layout_from_btf(btf)
            target = btf.find(ITER_TARGET, (KIND_FUNC,))
            fds.extend(bpf.sk_storage_create(STORAGE_SIZE, PROGRAM_NAME))
            storage = fds[-1]
            count = bpf.map_create(bpf.MAP_TYPE_ARRAY, 4, COUNT_SIZE, 1, PROGRAM_NAME)
            fds.append(count)
            prog = bpf.prog_load(
                bpf.PROG_TYPE_TRACING, build_program(layout, storage, count), PROGRAM_NAME,
                attach_type=bpf.ATTACH_TRACE_ITER, attach_btf_id=target,
            )  # fmt: skip
            fds.append(prog)
            self._link = bpf.link_create(prog, 0, bpf.ATTACH_TRACE_ITER, "creating the iterator")
        except (BpfError, KeyError, ParseError) as exc:
            for fd in fds:
                os.close(fd)
            raise FactUnavailable(f"the changed-only TCP iterator cannot load: {exc}") from exc
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        self._fds = [*fds, self._link]
        self.prog_id = bpf.object_id(prog)

    def read(self, netns_path: str | None = None) -> tuple[list[SocketRecord], int | None]:
        """The TCP sockets of a namespace that are new or moved since the last run there
        (``netns_path``; None: the calling thread's), and how many full sockets the
        namespace has (None when the run was cut short). Raises OSError, ParseError, or
        FactUnavailable when the namespace cannot be entered."""
        return parse_output(self.output(netns_path))

    def output(self, netns_path: str | None = None, limit: int = MAX_OUTPUT) -> bytes:
        """What one run in a namespace prints, unparsed, cut at ``limit`` bytes (the sockets
        the run walked count as reported all the same)."""
        if not self._fds:
            raise ValueError("TcpIterator is closed")
        link = self._link
        if netns_path is None:
            fd = bpf.iter_create(link)
        else:
            fd = nl.run_in_netns(netns_path, lambda: bpf.iter_create(link))
        return bpf.iter_read(fd, limit)

    def close(self) -> None:
        """Free the link, program and maps (the sockets' slots go with the map); idempotent."""
        while self._fds:
            os.close(self._fds.pop())

    def __enter__(self) -> TcpIterator:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

"""The in-kernel UDP/ICMP counter alone, read every second: an ablation for ``packet_cost.py``.

``--hash`` keeps connected sockets off the fast path (every datagram through the hash map),
to measure what the fast path saves; ``--noop`` attaches programs that only return 1 to the
same hooks instead, to measure the hooks themselves (the floor of any cgroup_skb counter;
``--hook egress`` or ``ingress``: one of the two);
``--noop-tracepoint NAME`` attaches such a program to a BTF tracepoint (``tp_btf``), to
measure what that kind of hook costs (e.g. ``net_dev_start_xmit``, once per packet sent).
Usage (root)::

    .venv/bin/python benchmarks/bandwidth/counter_only.py --seconds 30 [--hash | --noop]
    .venv/bin/python benchmarks/bandwidth/counter_only.py --noop --hook ingress
    .venv/bin/python benchmarks/bandwidth/counter_only.py --noop-tracepoint net_dev_start_xmit
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import struct
import time
from collections.abc import Iterator

from hostmedic.collectors import bpf
from hostmedic.collectors.btf import KIND_TYPEDEF, vmlinux_btf
from hostmedic.collectors.cgroup_skb import CgroupSkbCounter
from hostmedic.collectors.cgroupfs import open_cgroup2_root

ATTACH_TRACE_RAW_TP = 23  # BPF_TRACE_RAW_TP: a BTF tracepoint (tp_btf)
HOOKS = {"ingress": bpf.ATTACH_CGROUP_INET_INGRESS, "egress": bpf.ATTACH_CGROUP_INET_EGRESS}


@contextlib.contextmanager
def noop_hooks(hooks: list[int]) -> Iterator[None]:
    """``return 1`` on cgroup_skb ``hooks`` of the cgroup-v2 root, as long as the block."""
    code = bpf.assemble([bpf.mov_imm(bpf.R0, 1), bpf.exit_()])
    fds: list[int] = []
    cgroup = open_cgroup2_root()
    try:
        for hook in hooks:
            fds.append(bpf.prog_load(bpf.PROG_TYPE_CGROUP_SKB, code, "hm_noop"))
            fds.append(bpf.link_create(fds[-1], cgroup, hook, "attaching"))
        yield
    finally:
        for fd in (*reversed(fds), cgroup):
            os.close(fd)


@contextlib.contextmanager
def noop_tracepoint(name: str) -> Iterator[None]:
    """A program that only returns 0 on the BTF tracepoint ``name``, as long as the block."""
    code = bpf.assemble([bpf.mov_imm(bpf.R0, 0), bpf.exit_()])
    target = vmlinux_btf().find(f"btf_trace_{name}", (KIND_TYPEDEF,))
    prog = bpf.prog_load(
        bpf.PROG_TYPE_TRACING, code, "hm_noop", attach_type=ATTACH_TRACE_RAW_TP,
        attach_btf_id=target,
    )  # fmt: skip
    try:  # BPF_RAW_TRACEPOINT_OPEN without a name: the program's own BTF target
        attr = ctypes.create_string_buffer(struct.pack("=QI", 0, prog), 128)
        link = bpf.bpf(bpf.RAW_TRACEPOINT_OPEN, attr, f"attaching to {name}")
        try:
            yield
        finally:
            os.close(link)
    finally:
        os.close(prog)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--hash", action="store_true", help="no fast path for connected sockets")
    ap.add_argument("--noop", action="store_true", help="programs that only return 1")
    ap.add_argument("--hook", choices=sorted(HOOKS), help="--noop on this cgroup hook only")
    ap.add_argument("--noop-tracepoint", metavar="NAME", help="a no-op program on a tracepoint")
    args = ap.parse_args()
    end = time.monotonic() + args.seconds
    if args.noop or args.noop_tracepoint:
        hooks = [HOOKS[args.hook]] if args.hook else list(HOOKS.values())
        with noop_tracepoint(args.noop_tracepoint) if args.noop_tracepoint else noop_hooks(hooks):
            time.sleep(args.seconds)
        return 0
    with CgroupSkbCounter(fast_path=not args.hash) as counter:
        while time.monotonic() < end:
            time.sleep(1)
            counter.read()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

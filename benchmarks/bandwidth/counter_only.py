"""The in-kernel UDP/ICMP counter alone, read every second: an ablation for ``packet_cost.py``.

``--hash`` keeps connected sockets off the fast path (every datagram through the hash map),
to measure what the fast path saves; ``--noop`` attaches programs that only return 1 to the
same hooks instead, to measure the hooks themselves (the floor of any cgroup_skb counter).
Usage (root)::

    .venv/bin/python benchmarks/bandwidth/counter_only.py --seconds 30 [--hash | --noop]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Iterator

from hostmedic.collectors import bpf
from hostmedic.collectors.cgroup_skb import CgroupSkbCounter
from hostmedic.collectors.cgroupfs import open_cgroup2_root


@contextlib.contextmanager
def noop_hooks() -> Iterator[None]:
    """``return 1`` on both cgroup_skb hooks of the cgroup-v2 root, as long as the block."""
    code = bpf.assemble([bpf.mov_imm(bpf.R0, 1), bpf.exit_()])
    fds: list[int] = []
    cgroup = open_cgroup2_root()
    try:
        for hook in (bpf.ATTACH_CGROUP_INET_INGRESS, bpf.ATTACH_CGROUP_INET_EGRESS):
            fds.append(bpf.prog_load(bpf.PROG_TYPE_CGROUP_SKB, code, "hm_noop"))
            fds.append(bpf.link_create(fds[-1], cgroup, hook, "attaching"))
        yield
    finally:
        for fd in (*reversed(fds), cgroup):
            os.close(fd)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--hash", action="store_true", help="no fast path for connected sockets")
    ap.add_argument("--noop", action="store_true", help="programs that only return 1")
    args = ap.parse_args()
    end = time.monotonic() + args.seconds
    if args.noop:
        with noop_hooks():
            time.sleep(args.seconds)
        return 0
    with CgroupSkbCounter(fast_path=not args.hash) as counter:
        while time.monotonic() < end:
            time.sleep(1)
            counter.read()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

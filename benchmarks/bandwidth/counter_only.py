"""The in-kernel UDP/ICMP counter alone, read every second: an ablation for ``packet_cost.py``.

``--hash`` keeps connected sockets off the socket-storage fast path (every datagram through
the hash map), to measure what the fast path saves. Usage (root)::

    .venv/bin/python benchmarks/bandwidth/counter_only.py --seconds 30 [--hash]
"""

from __future__ import annotations

import argparse
import time

from hostmedic.collectors.cgroup_skb import CgroupSkbCounter


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--hash", action="store_true", help="no socket-storage fast path")
    args = ap.parse_args()
    with CgroupSkbCounter(fast_path=not args.hash) as counter:
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            time.sleep(1)
            counter.read()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A bounded sprayer for ``packet_cost.py --sender spray``: the outbound-flood pattern of a
compromised server (seeds 000-003: one socket, many destinations). One *unconnected* UDP
socket sends 16-byte datagrams with ``sendto()`` round-robin to ``--ports`` ports of one
lab address, until ``--seconds`` have passed or ``--count`` datagrams are sent, whichever
comes first. Every datagram takes hostmedic's hash-map path (no slot: the socket has no
peer of its own). Usage (in a lab namespace; lab addresses only)::

    python benchmarks/bandwidth/spray.py 198.18.0.2 --port 5201 --ports 64 --seconds 5
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import time

BATCH = 4096  # datagrams between two looks at the clock
LAB = (ipaddress.ip_network("198.18.0.0/15"), ipaddress.ip_network("2001:db8::/32"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("address")
    ap.add_argument("--port", type=int, default=5201)
    ap.add_argument("--ports", type=int, default=64)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--count", type=int, default=10_000_000)
    ap.add_argument("--payload", type=int, default=16)
    args = ap.parse_args()
    target = ipaddress.ip_address(args.address)
    if not any(target in net for net in LAB):
        ap.error(f"{target} is not a lab address")
    family = socket.AF_INET6 if target.version == 6 else socket.AF_INET
    peers = [(str(target), args.port + i) for i in range(args.ports)] * (BATCH // args.ports + 1)
    peers = peers[:BATCH]
    data = bytes(args.payload)
    end = time.monotonic() + args.seconds
    sent = 0
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        send = s.sendto
        while sent < args.count and time.monotonic() < end:
            for peer in peers:
                send(data, peer)
            sent += len(peers)
    print(sent)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""What the in-kernel counter's own program costs per packet, from the kernel's BPF stats.

``packet_cost.py`` measures the machine's whole CPU per flood packet; on a 2-vCPU VM its
run-to-run noise (±5-10 %) is larger than the few per cent a monitor costs. This script
isolates the part hostmedic's code controls: with ``BPF_ENABLE_STATS`` the kernel times
every run of every program (``run_time_ns`` / ``run_cnt`` in ``bpf_prog_info``), so the
egress program's nanoseconds per packet are read directly, under the same pinned
``iperf3 -u -l 16`` flood as ``packet_cost.py`` (connected UDP socket, remote receiver).
Variants: hostmedic's counter with the slot cache for connected sockets and without it
(every datagram through the hash map, the socket named by its cookie), the counter under
``spray.py`` instead (an unconnected socket: the hash map, the socket named by its tag),
then tiny programs that each make one helper call, to show what a call costs. Timing
every run adds its own ~60 ns (two clock reads), which the ``return 1`` program measures
and the "minus" column subtracts. The hook machinery around the program
(``__cgroup_bpf_run_filter_skb``) is the same for every variant and is not in these
figures; the share column divides the program's own time by the machine's busy time per
packet.

Root, iperf3, nftables, taskset. ``hmB-*`` namespaces, lab addresses, bounded runs::

    .venv/bin/python benchmarks/bandwidth/program_cost.py --rounds 5
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from packet_cost import (  # noqa: E402
    busy_jiffies,
    flood_argv,
    receiver,
    start_server,
    tx_packets,
)
from tests.lab.veth import Lab, veth_lab  # noqa: E402

from hostmedic.collectors import bpf  # noqa: E402
from hostmedic.collectors.cgroup_skb import CgroupSkbCounter  # noqa: E402
from hostmedic.collectors.cgroupfs import open_cgroup2_root  # noqa: E402

ENABLE_STATS, STATS_RUN_TIME = 32, 0
_INFO_SIZE = 208  # through run_time_ns (offset 192) and run_cnt (200)
SK_FULLSOCK = 95  # a helper hostmedic no longer calls (it costs 17 ns here)
SPRAYED = "hostmedic, unconnected sprayer"  # the variant flooded by spray.py


def _attr(fmt: str, *values: int) -> ctypes.Array[ctypes.c_char]:
    return ctypes.create_string_buffer(struct.pack(fmt, *values), 128)


def run_stats(prog_id: int) -> tuple[int, int]:
    """(run_time_ns, run_cnt) of a program, as the kernel counts them while stats are on."""
    prog_fd = bpf.bpf(bpf.PROG_GET_FD_BY_ID, _attr("=I", prog_id), "opening a program by id")
    info = ctypes.create_string_buffer(_INFO_SIZE)
    try:
        attr = _attr("=IIQ", prog_fd, _INFO_SIZE, ctypes.addressof(info))
        bpf.bpf(bpf.OBJ_GET_INFO_BY_FD, attr, "reading program info")
    finally:
        os.close(prog_fd)
    run_time_ns, run_cnt = struct.unpack_from("=QQ", info, 192)
    return int(run_time_ns), int(run_cnt)


@contextlib.contextmanager
def counter(fast: bool) -> Iterator[int]:
    """hostmedic's counter; yields its egress program's id."""
    with CgroupSkbCounter(fast_path=fast) as c:
        yield c.prog_ids[-1]  # the last loaded: the egress program
        c.read()


@contextlib.contextmanager
def probe(body: list[bpf.Insn | bpf.Label]) -> Iterator[int]:
    """A tiny egress program (``body`` with r6 = skb, r8 = skb->sk, then return 1)."""
    code = bpf.assemble([
        bpf.mov_reg(bpf.R6, bpf.R1),
        bpf.ldx(8, bpf.R8, bpf.R6, 168),  # skb->sk
        bpf.jmp_imm(bpf.JEQ, bpf.R8, 0, "out"),
        *body,
        bpf.Label("out"),
        bpf.mov_imm(bpf.R0, 1),
        bpf.exit_(),
    ])  # fmt: skip
    prog = bpf.prog_load(bpf.PROG_TYPE_CGROUP_SKB, code, "hm_probe")
    cgroup = open_cgroup2_root()
    try:
        link = bpf.link_create(prog, cgroup, bpf.ATTACH_CGROUP_INET_EGRESS, "attaching")
        try:
            yield bpf.object_id(prog)
        finally:
            os.close(link)
    finally:
        os.close(cgroup)
        os.close(prog)


def helper_probes(storage_fd: int) -> dict[str, list[bpf.Insn | bpf.Label]]:
    """What one helper call costs in the same hook: each body calls one of them."""
    storage_get = [
        *bpf.ld_map_fd(bpf.R1, storage_fd),
        bpf.mov_reg(bpf.R2, bpf.R8),
        bpf.mov_imm(bpf.R3, 0),
        bpf.mov_imm(bpf.R4, bpf.SK_STORAGE_GET_F_CREATE),
        bpf.call(bpf.FN_SK_STORAGE_GET),
    ]
    return {
        "return 1": [],
        "bpf_get_socket_cookie": [bpf.mov_reg(bpf.R1, bpf.R6), bpf.call(bpf.FN_GET_SOCKET_COOKIE)],
        "bpf_sk_fullsock": [bpf.mov_reg(bpf.R1, bpf.R8), bpf.call(SK_FULLSOCK)],
        "bpf_sk_storage_get": storage_get,
    }


def one_run(
    lab: Lab, attach: AbstractContextManager[int], packets: int, spray: bool
) -> dict[str, float]:
    """One flood of ``packets`` datagrams: iperf3's connected socket, or ``spray``."""
    sender = "spray" if spray else "iperf3"
    server = start_server(lab, sender)
    flood = flood_argv(sender, 60, packets)
    try:
        with attach as egress:
            time.sleep(0.5)
            (t0, n0), p0, j0 = run_stats(egress), tx_packets(lab), busy_jiffies()
            subprocess.run(["ip", "netns", "exec", lab.a, "taskset", "-c", "0", *flood],
                           capture_output=True, check=True, timeout=120)  # fmt: skip
            (t1, n1), p1, j1 = run_stats(egress), tx_packets(lab), busy_jiffies()
    finally:
        if server is not None:
            server.wait(timeout=30)
    busy_ns = (j1 - j0) / os.sysconf("SC_CLK_TCK") * 1e9
    return {"prog_ns": (t1 - t0) / max(n1 - n0, 1), "busy_ns": busy_ns / max(p1 - p0, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--packets", type=int, default=500_000)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("program_cost.py needs root", file=sys.stderr)
        return 2
    stats_fd = bpf.bpf(ENABLE_STATS, _attr("=I", STATS_RUN_TIME), "enabling BPF stats")
    blob, key_type, value_type = bpf.u64_array_btf(2)
    btf_fd = bpf.btf_load(blob)
    storage_fd = bpf.map_create(
        bpf.MAP_TYPE_SK_STORAGE, 4, 16, 0, "hm_probe",
        flags=bpf.MAP_F_NO_PREALLOC, btf=(btf_fd, key_type, value_type),
    )  # fmt: skip
    probes = helper_probes(storage_fd)
    variants: dict[str, Callable[[], AbstractContextManager[int]]] = {
        "hostmedic, fast path": lambda: counter(True),
        "hostmedic, hash map only": lambda: counter(False),
        SPRAYED: lambda: counter(True),
        **{name: (lambda body=body: probe(body)) for name, body in probes.items()},
    }
    results: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    try:
        with veth_lab() as lab:
            receiver(lab, "remote")
            for rnd in range(args.rounds):
                for name, attach in variants.items():
                    r = one_run(lab, attach(), args.packets, name == SPRAYED)
                    results[name].append(r)
                    print(f"[{rnd}] {name}: program {r['prog_ns']:.1f} ns/packet, "
                          f"machine {r['busy_ns']:.0f} ns/packet", flush=True)  # fmt: skip
    finally:
        for fd in (storage_fd, btf_fd, stats_fd):
            os.close(fd)
    base = statistics.median(r["prog_ns"] for r in results["return 1"])
    print("| egress program | ns/packet with stats (median) | minus `return 1` | share of the"
          " machine's ns/packet |")  # fmt: skip
    print("| --- | ---: | ---: | ---: |")
    for name, runs in results.items():
        prog = statistics.median(r["prog_ns"] for r in runs)
        busy = statistics.median(r["busy_ns"] for r in runs)
        own = prog - base
        print(f"| {name} | {prog:.1f} | {own:.1f} | {100 * own / busy:.2f} % of {busy:.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Live tests of the eBPF connect tracer: real connect()s from child processes we start.

Traffic goes only to loopback and to 198.18.0.1 on the loopback of a network namespace
these tests create (prefix ``hmC-``), which is deleted afterwards even on failure.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostmedic.collectors import bpf
from hostmedic.collectors.btf import read_vmlinux_btf
from hostmedic.collectors.connect_tracer import (
    ConnectEvent,
    ConnectTracer,
    build_program,
    layout_from_btf,
)
from hostmedic.errors import FactUnavailable

pytestmark = pytest.mark.lab

# The child names itself so the comm check is exact, makes N connects that close at once,
# and reports its local endpoints. With port 0 it serves itself (used inside a netns).
_CHILD = r"""
import json, socket, sys
comm, host, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with open("/proc/self/comm", "w") as f:
    f.write(comm)
family = socket.AF_INET6 if ":" in host else socket.AF_INET
srv = None
if port == 0:
    srv = socket.socket(family)
    srv.bind((host, 0))
    srv.listen(64)
    port = srv.getsockname()[1]
local = []
for _ in range(n):
    c = socket.socket(family)
    c.settimeout(5)
    c.connect((host, port))
    local.append(list(c.getsockname()[:2]))
    c.close()
    if srv is not None:
        srv.accept()[0].close()
print(json.dumps({"port": port, "local": local}))
"""


@pytest.fixture
def tracer() -> Iterator[ConnectTracer]:
    if os.geteuid() != 0:
        pytest.skip("loading BPF programs needs root")
    try:
        t = ConnectTracer()
    except FactUnavailable as exc:
        pytest.skip(f"connect tracer unavailable here: {exc}")
    try:
        yield t
    finally:
        t.close()


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("creating network namespaces needs root")
    name = f"hmC-ct-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True, timeout=10)
        subprocess.run(
            ["ip", "-n", name, "addr", "add", "198.18.0.1/32", "dev", "lo"], check=True, timeout=10
        )
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=10)


def _run_child(argv_prefix: list[str], comm: str, host: str, port: int, n: int) -> tuple[int, dict]:
    """Start the child (we own its pid), wait for it, return (pid, its report)."""
    proc = subprocess.Popen(
        [*argv_prefix, sys.executable, "-c", _CHILD, comm, host, str(port), str(n)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode == 0
    return proc.pid, json.loads(out)


def _plain(ip: str) -> str:
    return ip.removeprefix("::ffff:")


def _tuples(events: list[ConnectEvent], pid: int) -> set[tuple[str, int, str, int]]:
    return {(e.local_ip, e.local_port, e.remote_ip, e.remote_port) for e in events if e.pid == pid}


def _listener(family: int, host: str) -> socket.socket:
    srv = socket.socket(family)
    srv.bind((host, 0))
    srv.listen(64)  # backlog > connects: the handshakes complete without accept()
    return srv


def test_short_ipv4_connections_get_the_childs_pid_and_comm(tracer: ConnectTracer) -> None:
    with _listener(socket.AF_INET, "127.0.0.1") as srv:
        port = srv.getsockname()[1]
        pid, report = _run_child([], "hmC-conn4", "127.0.0.1", port, 20)
    events = [e for e in tracer.drain() if e.pid == pid]
    expected = {("127.0.0.1", p, "127.0.0.1", port) for _ip, p in report["local"]}
    assert len(expected) == 20
    assert _tuples(events, pid) == expected
    assert {e.comm for e in events} == {"hmC-conn4"}
    assert all(e.family == socket.AF_INET and e.established for e in events)
    assert {e.netns_inode for e in events} == {os.stat("/proc/self/ns/net").st_ino}
    assert all(e.pid != pid for e in tracer.drain())  # drained entries were deleted


def test_ipv6_and_v4_mapped_connections(tracer: ConnectTracer) -> None:
    with _listener(socket.AF_INET6, "::1") as srv6, _listener(socket.AF_INET, "127.0.0.1") as srv4:
        port6, port4 = srv6.getsockname()[1], srv4.getsockname()[1]
        pid6, rep6 = _run_child([], "hmC-conn6", "::1", port6, 5)
        pidm, repm = _run_child([], "hmC-connm", "::ffff:127.0.0.1", port4, 5)
    events = tracer.drain()
    assert _tuples(events, pid6) == {("::1", p, "::1", port6) for _ip, p in rep6["local"]}
    # v4-mapped endpoints are reported as plain IPv4 on an AF_INET6 socket, like sockdiag.
    mapped = {(_plain(ip), p, "127.0.0.1", port4) for ip, p in repm["local"]}
    assert _tuples(events, pidm) == mapped
    assert {e.family for e in events if e.pid in (pid6, pidm)} == {socket.AF_INET6}


def test_connections_inside_another_netns(tracer: ConnectTracer, netns: str) -> None:
    pid, report = _run_child(["ip", "netns", "exec", netns], "hmC-connns", "198.18.0.1", 0, 20)
    port = report["port"]
    events = [e for e in tracer.drain() if e.pid == pid]
    expected = {("198.18.0.1", p, "198.18.0.1", port) for _ip, p in report["local"]}
    assert len(expected) == 20
    assert _tuples(events, pid) == expected
    assert {e.comm for e in events} == {"hmC-connns"}
    assert {e.netns_inode for e in events} == {os.stat(f"/run/netns/{netns}").st_ino}


def test_refused_connect_is_recorded_as_not_established(tracer: ConnectTracer) -> None:
    with _listener(socket.AF_INET, "127.0.0.1") as srv:
        port = srv.getsockname()[1]
    with socket.socket() as c, pytest.raises(ConnectionRefusedError):
        c.connect(("127.0.0.1", port))  # the port was just closed
    mine = [e for e in tracer.drain() if e.pid == os.getpid() and e.remote_port == port]
    assert len(mine) == 1 and not mine[0].established


def _bpf_fds() -> set[int]:
    found = set()
    for entry in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(entry)
        except OSError:
            continue  # the directory's own fd, already closed
        if "bpf" in target:
            found.add(int(entry.name))
    return found


def test_close_detaches_and_frees_everything() -> None:
    if os.geteuid() != 0:
        pytest.skip("loading BPF programs needs root")
    before = _bpf_fds()
    try:
        tracer = ConnectTracer(max_entries=4096)
    except FactUnavailable as exc:
        pytest.skip(f"connect tracer unavailable here: {exc}")
    with tracer:
        prog_id = tracer.prog_id
        assert len(_bpf_fds() - before) == 4  # two maps, the program, the link
        assert bpf.prog_exists(prog_id)
    assert _bpf_fds() == before
    with pytest.raises(ValueError):
        tracer.drain()
    # The kernel frees the program after an RCU grace period; poll (bounded).
    for _ in range(300):
        if not bpf.prog_exists(prog_id):
            break
        time.sleep(0.01)
    assert not bpf.prog_exists(prog_id)


def _root() -> None:
    if os.geteuid() != 0:
        pytest.skip("bpf(2) needs root")


def test_map_wrappers_batch_and_iteration() -> None:
    _root()
    for pop in (bpf.map_pop_batch, bpf.map_pop_iter):
        fd = bpf.map_create(bpf.MAP_TYPE_LRU_HASH, 8, 4, 8192, "hmC_test")
        try:
            for i in range(3000):
                bpf.map_update(fd, i.to_bytes(8, "little"), (i * 7).to_bytes(4, "little"))
            assert bpf.map_lookup(fd, (5).to_bytes(8, "little"), 4) == (35).to_bytes(4, "little")
            entries = pop(fd, 8, 4)
            assert {
                int.from_bytes(k, "little"): int.from_bytes(v, "little") for k, v in entries
            } == {i: i * 7 for i in range(3000)}
            assert bpf.map_next_key(fd, None, 8) is None  # popped entries are gone
            assert not bpf.map_delete(fd, (5).to_bytes(8, "little"))
        finally:
            os.close(fd)


def test_verifier_log_is_returned_on_rejection() -> None:
    _root()
    # Returns r0 without ever setting it: the verifier must refuse. (Reading uninitialised
    # stack would not do: privileged loaders are allowed to since 5.x.)
    bad = bpf.assemble([bpf.exit_()])
    with pytest.raises(bpf.BpfError) as info:
        bpf.prog_load(bpf.PROG_TYPE_RAW_TRACEPOINT, bad, "hmC_bad")
    assert "R0 !read_ok" in info.value.log


def test_generic_probe_read_variant_also_verifies() -> None:
    """The pre-5.5 fallback (bpf_probe_read instead of bpf_probe_read_kernel) must load too."""
    _root()
    try:
        layout = layout_from_btf(read_vmlinux_btf())
    except FactUnavailable as exc:
        pytest.skip(str(exc))
    fds = [
        bpf.map_create(bpf.MAP_TYPE_LRU_HASH, 8, 32, 1024, "hmC_p"),
        bpf.map_create(bpf.MAP_TYPE_LRU_HASH, 16, 72, 1024, "hmC_e"),
    ]
    try:
        code = build_program(layout, fds[0], fds[1], bpf.FN_PROBE_READ)
        fds.append(bpf.prog_load(bpf.PROG_TYPE_RAW_TRACEPOINT, code, "hmC_pr"))
    finally:
        for fd in fds:
            os.close(fd)

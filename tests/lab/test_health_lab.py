"""Host-health problems planted for real on this machine, then ``hostmedic diagnose
--only health`` run against them: a CPU hog running from /tmp under a kernel-thread name,
zombie piles, a deleted-but-open big file, full loop-mounted filesystems (space and
inodes), a busy mount, a mount hiding files, a fast-growing process and a fork storm.
Each has a healthy counterpart in the same run that must not be named.

The machine may be shared with other tests, so the assertions are about the planted
processes and paths only, and the runaway threshold is lowered through the config (a
busy 2-core CI must not starve the hog below it).
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from tests.lab.health_world import World, diagnose, failed, fill_inodes, fill_space, mentions

pytestmark = pytest.mark.lab

ZOMBIE_PARENT = """
import os, signal, sys
def leave(*_):
    while True:
        try:
            os.wait()
        except ChildProcessError:
            os._exit(0)
signal.signal(signal.SIGTERM, leave)
for _ in range(int(sys.argv[1])):
    if os.fork() == 0:
        os._exit(0)
print("ready", flush=True)
sys.stdin.read()
leave()
"""
HOLD_DELETED = """
import os, sys, time
path, size = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
os.posix_fallocate(fd, 0, size)
os.unlink(path)
print("ready", flush=True)
time.sleep(120)
"""
GROW = """
import time
blocks = [bytearray(b"x") * (8 << 20)]
print("ready", flush=True)
for _ in range(40):  # 8 MiB every 0.1 s, 320 MiB at most
    blocks.append(bytearray(b"x") * (8 << 20))
    time.sleep(0.1)
time.sleep(120)
"""
SPAWN = """
import os, signal, sys, time
end = time.monotonic() + float(sys.argv[1])
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))  # finish: reap every child first
alive = 0
print("ready", flush=True)
while time.monotonic() < end and not stop:
    while alive and os.waitpid(-1, os.WNOHANG)[0]:
        alive -= 1
    if alive >= 300:
        time.sleep(0.005)
        continue
    if os.fork() == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        time.sleep(0.3)
        os._exit(0)
    alive += 1
while alive:
    os.wait()
    alive -= 1
"""


def ready(proc: subprocess.Popen) -> None:
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"


def py(world: World, code: str, *args: str, stdin: bool = False) -> subprocess.Popen:
    proc = world.start(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
    )
    ready(proc)
    return proc


@pytest.fixture(scope="module")
def planted():
    """Plant everything, run hostmedic once, hand the report and the planted things out."""
    with World() as world:
        d = world.dir
        full = world.loop_fs("full", 16)
        fill_space(full)
        inodes = world.loop_fs("inodes", 16, inodes=64)
        assert fill_inodes(inodes) > 0
        hidden = d / "hidden"
        hidden.mkdir()
        (hidden / "secret.txt").write_text("data written before the disk was mounted\n")
        spare = world.loop_fs("spare", 16)
        world.later(lambda: None)
        # mount the spare filesystem a second time, over the directory with the file
        device = subprocess.check_output(["findmnt", "-no", "SOURCE", str(spare)], text=True)
        world.mount(device.strip(), hidden)
        hog_exe = d / "kworkerx"
        shutil.copy("/usr/bin/yes", hog_exe)
        idle_exe = d / "idlebin"
        shutil.copy("/usr/bin/sleep", idle_exe)
        # a raised priority keeps the hog pegged when the machine is busy (2-core CI)
        hog = world.start(["nice", "-n", "-15", str(hog_exe)], stdout=subprocess.DEVNULL)
        idle = world.start([str(idle_exe), "120"])
        sleeper = world.start(["/usr/bin/sleep", "120"], cwd=full)
        zombies = py(world, ZOMBIE_PARENT, "30", stdin=True)
        few = py(world, ZOMBIE_PARENT, "3", stdin=True)
        big = py(world, HOLD_DELETED, str(d / "big.bin"), str(160 << 20))
        small = py(world, HOLD_DELETED, str(d / "small.bin"), str(1 << 20))
        quiet = py(world, "import time\nprint('ready', flush=True)\ntime.sleep(120)")
        grower = py(world, GROW)
        config = d / "config.toml"
        config.write_text("[health]\nrunaway_thread_percent = 50.0\n")
        doc = diagnose(
            "--duration",
            "3",
            "--mount",
            str(full),
            "--mount",
            str(spare),
            "--mount",
            str(d / "nowhere"),
            config=str(config),
        )
        yield {
            "doc": doc,
            "dir": d,
            "full": full,
            "inodes": inodes,
            "hidden": hidden,
            "spare": spare,
            "hog": hog.pid,
            "idle": idle.pid,
            "sleeper": sleeper.pid,
            "zombies": zombies.pid,
            "few": few.pid,
            "big": big.pid,
            "small": small.pid,
            "grower": grower.pid,
            "quiet": quiet.pid,
        }


def test_cpu_hog_from_tmp_is_suspicious_and_pegged(planted):
    doc, hog, idle = planted["doc"], planted["hog"], planted["idle"]
    top = [f for f in failed(doc, "health.cpu_top_consumer") if f["params"]["pid"] == hog]
    assert [(f["severity"], f["params"]["kind"]) for f in top] == [("critical", "suspicious")]
    assert {c["key"] for c in top[0]["clues"]} >= {
        "clue.exe_in_temp",
        "clue.imitates_kernel_thread",
    }
    assert f"exe={planted['dir']}/kworkerx" in top[0]["evidence"][0]["excerpt"]
    assert "threads=1 " in top[0]["evidence"][0]["excerpt"]
    loop = [f for f in failed(doc, "health.runaway_thread") if f["params"]["pid"] == hog]
    assert loop and loop[0]["severity"] == "warning" and loop[0]["params"]["tid"] == hog
    assert not mentions(failed(doc, "health.cpu_top_consumer"), f"pid={idle} ")


def test_zombie_pile_names_its_parent(planted):
    doc = planted["doc"]
    rows = failed(doc, "health.zombies")
    mine = [f for f in rows if f["params"]["parent_pid"] == planted["zombies"]]
    assert [(f["severity"], f["params"]["count"]) for f in mine] == [("warning", 30)]
    assert "e.g. pids=" in mine[0]["evidence"][0]["excerpt"]
    assert not [f for f in rows if f["params"]["parent_pid"] == planted["few"]]


def test_deleted_but_open_file(planted):
    rows = failed(planted["doc"], "health.deleted_open")
    mine = [f for f in rows if f["params"]["pid"] == planted["big"]]
    assert len(mine) == 1 and mine[0]["severity"] == "warning"
    assert mine[0]["params"]["path"] == f"{planted['dir']}/big.bin"
    assert mine[0]["params"]["size_bytes"] >= 160 << 20
    assert f"fd={mine[0]['params']['fd']} " in mine[0]["evidence"][0]["excerpt"]
    assert not mentions(rows, "small.bin")


def test_full_filesystems(planted):
    doc = planted["doc"]
    space = [
        f
        for f in failed(doc, "health.disk_space")
        if f["params"]["mount_point"] == str(planted["full"])
    ]
    assert [f["severity"] for f in space] == ["critical"] and space[0]["params"][
        "available_bytes"
    ] < 64 << 10
    assert "source=/dev/loop" in space[0]["evidence"][0]["excerpt"]
    inodes = [
        f
        for f in failed(doc, "health.disk_inodes")
        if f["params"]["mount_point"] == str(planted["inodes"])
    ]
    assert [f["severity"] for f in inodes] == ["critical"] and inodes[0]["params"][
        "inodes_free"
    ] == 0
    assert not mentions(failed(doc, "health.disk_space"), str(planted["spare"]))
    assert not mentions(failed(doc, "health.disk_inodes"), str(planted["full"]) + '"')


def test_busy_mount_names_the_process_with_its_cwd_inside(planted):
    doc = planted["doc"]
    rows = failed(doc, "health.mount_busy")
    busy = [f for f in rows if f["params"].get("mount_point") == str(planted["full"])]
    assert len(busy) == 1 and busy[0]["severity"] == "warning"
    lines = [e["excerpt"] for e in busy[0]["evidence"]]
    assert f"cwd pid={planted['sleeper']} name=sleep user=root path={planted['full']}" in lines
    assert "fuser -cu " + str(planted["full"]) in busy[0]["remedy"]
    assert not [f for f in rows if f["params"].get("mount_point") == str(planted["spare"])]
    nowhere = [f for f in rows if f["params"].get("path") == str(planted["dir"] / "nowhere")]
    assert [f["severity"] for f in nowhere] == ["info"]


def test_mount_hiding_files(planted):
    rows = failed(planted["doc"], "health.mount_hidden")
    mine = [f for f in rows if f["params"]["mount_point"] == str(planted["hidden"])]
    assert len(mine) == 1 and mine[0]["severity"] == "warning" and mine[0]["params"]["files"] == 1
    assert "e.g. secret.txt" in mine[0]["evidence"][0]["excerpt"]
    assert not mentions(rows, str(planted["full"])) and not mentions(
        rows, str(planted["spare"]) + " "
    )
    # the hidden file is still there, untouched, and nothing was unmounted for real
    assert subprocess.run(["mountpoint", "-q", str(planted["hidden"])], check=False).returncode == 0


def test_growing_process(planted):
    rows = failed(planted["doc"], "health.memory_growth")
    mine = [f for f in rows if f["params"]["pid"] == planted["grower"]]
    assert len(mine) == 1 and mine[0]["params"]["grown_bytes"] >= 64 << 20
    assert not [f for f in rows if f["params"]["pid"] == planted["quiet"]]


def test_fork_storm_names_the_spawner():
    with World() as world:
        calm = diagnose("--duration", "2")
        spawner = py(world, SPAWN, "8")
        doc = diagnose("--duration", "3")
    rows = failed(doc, "health.fork_storm")
    assert len(rows) == 1 and rows[0]["severity"] in ("warning", "critical")
    assert rows[0]["params"]["forks_per_s"] >= 200
    assert rows[0]["params"]["parent_pid"] == spawner.pid
    assert not mentions(failed(calm, "health.fork_storm"), f"pid={spawner.pid} ")

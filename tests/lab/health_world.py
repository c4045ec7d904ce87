"""Plant host-health problems for real, and take them away again.

Everything made here lives under one temporary directory named ``hmH-…``: loop-mounted
filesystems (image file + ``losetup`` + ``mkfs.ext4``), processes started by the test
(killed by PID), private MariaDB/PostgreSQL instances on private sockets, and a pair of
network namespaces for the gateway ping. :class:`World` undoes everything in reverse
order, also after a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

HOSTMEDIC = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "hostmedic"
PREFIX = "hmH-"


def sh(argv: Sequence[str], timeout: float = 30.0, **kw: object) -> str:
    done = subprocess.run(
        list(argv), capture_output=True, text=True, timeout=timeout, check=False, **kw
    )  # type: ignore[call-overload]
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.returncode} {done.stderr.strip()}")
    return done.stdout


def diagnose(*args: str, netns: str | None = None, config: str | None = None) -> dict:
    """``hostmedic diagnose --only health --json`` (inside ``netns`` when given)."""
    argv = [str(HOSTMEDIC), "diagnose", "--only", "health", "--json", *args]
    if config:
        argv += ["--config", config]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode in (0, 1, 2), done.stderr
    doc = json.loads(done.stdout)
    assert doc["internal_errors"] == []
    return doc


def failed(doc: dict, rule_id: str) -> list[dict]:
    return [f for f in doc["findings"] if f["rule_id"] == rule_id and f["status"] == "failed"]


def mentions(findings: list[dict], needle: str) -> bool:
    return any(needle in json.dumps(f, ensure_ascii=False) for f in findings)


class World:
    """A temporary directory plus the undo steps of everything planted in it."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix=PREFIX))
        self._undo: list[Callable[[], None]] = []

    def __enter__(self) -> World:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def destroy(self) -> None:
        errors = []
        while self._undo:
            step = self._undo.pop()
            try:
                step()
            except Exception as e:  # keep undoing the rest, report at the end
                errors.append(repr(e))
        shutil.rmtree(self.dir, ignore_errors=True)
        assert errors == [], errors

    def later(self, step: Callable[[], None]) -> None:
        self._undo.append(step)

    # processes -------------------------------------------------------------------

    def start(
        self, argv: Sequence[str], stop_signal: int = signal.SIGTERM, **kw: object
    ) -> subprocess.Popen[bytes]:
        """A process stopped by PID when the world ends: ``stop_signal`` first (so a
        parent reaps its children — an orphan's zombie waits for PID 1), then SIGKILL to
        its process group if it is still there after a few seconds."""
        proc = subprocess.Popen(list(argv), start_new_session=True, **kw)  # type: ignore[call-overload]

        def stop() -> None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, stop_signal)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            if proc.stdin:
                proc.stdin.close()

        self.later(stop)
        return proc

    def python(self, code: str, **kw: object) -> subprocess.Popen[bytes]:
        return self.start([sys.executable, "-c", code], **kw)

    # filesystems -----------------------------------------------------------------

    def loop_fs(self, name: str, size_mb: int, inodes: int | None = None) -> Path:
        """An ext4 image of ``size_mb`` on a loop device, mounted under the world."""
        image = self.dir / f"{name}.img"
        with open(image, "wb") as f:
            f.truncate(size_mb * 1024 * 1024)
        sh(
            [
                "mkfs.ext4",
                "-q",
                "-F",
                "-m",
                "0",
                *(["-N", str(inodes)] if inodes else []),
                str(image),
            ]
        )
        device = sh(["losetup", "--find", "--show", str(image)]).strip()
        self.later(lambda: sh(["losetup", "-d", device]))
        point = self.dir / name
        point.mkdir(exist_ok=True)
        self.mount(device, point)
        return point

    def mount(self, device: str, point: Path) -> None:
        sh(["mount", "-t", "ext4", device, str(point)])
        self.later(lambda: sh(["umount", str(point)]))


def fill_space(point: Path) -> None:
    """Write one file until the filesystem has no block left."""
    with open(point / "filler", "wb") as f:
        chunk = b"\0" * (1 << 20)
        with contextlib.suppress(OSError):
            while True:
                f.write(chunk)
                f.flush()
        with contextlib.suppress(OSError):
            while True:  # the last partial megabyte
                f.write(b"\0" * 4096)
                f.flush()


def fill_inodes(point: Path, limit: int = 10000) -> int:
    made = 0
    with contextlib.suppress(OSError):
        for i in range(limit):
            (point / f"f{i}").touch()
            made += 1
    return made


def wait_for(check: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.05)

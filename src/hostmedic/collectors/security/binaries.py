"""Trojan files on disk (seed 004 §排查病毒木马: ``/usr/bin/.sshd``, ``/usr/bin/.swhd``,
``/usr/bin/bsd-port``, and ps / netstat / lsof / ss replaced, their originals kept in
``/usr/bin/dpkgd``) and the commonly trojaned binaries compared with the checksums their
package shipped (dpkg's md5sums, or ``rpm -V``).

The lists are the shared signature data (process_signatures.toml); one file is hashed once
even when /bin and /usr/bin are the same directory.
"""

from __future__ import annotations

import hashlib
import os
import time

from hostmedic.analysis.verdict import signatures
from hostmedic.collectors.packages import dpkg_present, package_md5sums, rpm_verify
from hostmedic.collectors.rootfs import RootFS
from hostmedic.facts.security import (
    CHECK_MISMATCH,
    CHECK_NO_RECORD,
    CHECK_OK,
    BinaryCheck,
    FileFacts,
    PlantedFile,
)

HASH_LIMIT = 256 << 20  # a bigger "system binary" is not hashed (and is odd by itself)
DIR_SAMPLE = 20


def _planted(fs: RootFS, path: str) -> PlantedFile | None:
    try:
        st = fs.stat(path)
    except OSError:
        return None
    is_dir = fs.is_dir(path)
    entries = tuple(fs.listdir(path)[:DIR_SAMPLE]) if is_dir else ()
    return PlantedFile(path, is_dir, st.st_size, st.st_mtime, entries)


def planted_files(fs: RootFS) -> list[PlantedFile]:
    """The seed's trojan paths that exist on the machine."""
    s = signatures()["suspicious"]
    paths = [p.rstrip("/") for p in s["trojan_paths"]]
    if s["replaced_tools_dir"] not in paths:
        paths.append(s["replaced_tools_dir"])
    return [f for f in (_planted(fs, p) for p in paths) if f is not None]


def candidate_binaries(fs: RootFS) -> list[str]:
    """Machine paths (symlinks resolved) of the checked binaries that exist, each once."""
    s = signatures()["suspicious"]
    found: dict[str, None] = {}
    for name in s["checked_binaries"]:
        for directory in s["binary_dirs"]:
            path = f"{directory}/{name}"
            if fs.is_file(path):
                found.setdefault(fs.real_path(path), None)
    return list(found)


def _digest(fs: RootFS, path: str) -> tuple[str | None, bool]:
    """(md5 of the file, whether it starts with '#!'), md5 None when unreadable/too big."""
    try:
        fd = fs.open_regular(path)
    except OSError:
        return None, False
    with os.fdopen(fd, "rb") as f:
        if os.fstat(f.fileno()).st_size > HASH_LIMIT:
            return None, f.read(2) == b"#!"
        digest = hashlib.md5(usedforsecurity=False)
        head = f.read(1 << 16)
        script = head.startswith(b"#!")
        while head:
            digest.update(head)
            head = f.read(1 << 20)
        return digest.hexdigest(), script


def check_binaries(fs: RootFS) -> tuple[list[BinaryCheck], str | None]:
    """Each candidate binary against the package database, and which database it was."""
    paths = candidate_binaries(fs)
    dpkg = dpkg_present(fs.root)
    recorded = package_md5sums(paths, fs.root) if dpkg else {}
    rpm = None if dpkg else rpm_verify(paths, fs.root)
    checks: list[BinaryCheck] = []
    for path in paths:
        actual, script = _digest(fs, path)
        try:
            mtime: float | None = fs.stat(path).st_mtime
        except OSError:
            mtime = None
        package, expected = recorded.get(path, (None, None))
        if expected is not None:
            status = CHECK_OK if actual == expected else CHECK_MISMATCH
        elif rpm is not None and path in rpm:
            status = CHECK_MISMATCH if rpm[path] else CHECK_OK
        else:
            status = CHECK_NO_RECORD
        checks.append(BinaryCheck(path, package, status, expected, actual, script, mtime))
    return checks, "dpkg" if dpkg else ("rpm" if rpm is not None else None)


def read_files(fs: RootFS) -> FileFacts:
    """Planted trojan files and the binary checks of the machine at ``fs``."""
    read_at = time.time()
    checks, database = check_binaries(fs)
    return FileFacts(tuple(planted_files(fs)), tuple(checks), database, read_at)

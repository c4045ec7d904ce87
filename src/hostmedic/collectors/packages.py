"""Which installed package owns a file (dpkg, or rpm via its own command).

A binary no package owns is one of the runbook's signs of a planted program. Only the
few executables that carry heavy traffic are looked up, so a scan of dpkg's file lists
(with the /bin ↔ /usr/bin merge taken into account) is fast enough and needs no
subprocess on Debian-family systems.
"""

from __future__ import annotations

import os
import shutil
import subprocess

DPKG_INFO = "/var/lib/dpkg/info"


def _path_variants(path: str) -> list[str]:
    variants = [path]
    for merged in ("/bin/", "/sbin/", "/lib/", "/lib64/"):
        if path.startswith("/usr" + merged):
            variants.append(path[4:])
        elif path.startswith(merged):
            variants.append("/usr" + path)
    return variants


def package_owners(paths: list[str], root: str = "/") -> dict[str, str | None]:
    """Map each path to the owning package name, or None when no package owns it.

    Raises nothing: with no package database the result is None for every path, and
    the caller marks the check as not possible (``package_database_present``).
    """
    result: dict[str, str | None] = {p: None for p in paths}
    info_dir = os.path.join(root, DPKG_INFO.lstrip("/"))
    if os.path.isdir(info_dir):
        needles = {v: p for p in paths for v in _path_variants(p)}
        for name in sorted(os.listdir(info_dir)):
            if not name.endswith(".list"):
                continue
            try:
                with open(os.path.join(info_dir, name), encoding="utf-8", errors="replace") as f:
                    lines = set(f.read().splitlines())
            except OSError:
                continue
            for needle, original in needles.items():
                if result[original] is None and needle in lines:
                    result[original] = name[: -len(".list")].split(":")[0]
        return result
    if root == "/" and shutil.which("rpm"):
        for p in paths:
            proc = subprocess.run(
                ["rpm", "-qf", "--queryformat", "%{NAME}", p],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            result[p] = proc.stdout.strip() if proc.returncode == 0 else None
    return result


def package_database_present(root: str = "/") -> bool:
    """True when dpkg's or rpm's database exists, so "no owner" means something."""
    return os.path.isdir(os.path.join(root, DPKG_INFO.lstrip("/"))) or (
        root == "/" and shutil.which("rpm") is not None
    )

"""Which installed package owns a file (dpkg, or rpm via its own command), and the
checksum the package shipped it with.

A binary no package owns is one of the runbook's signs of a planted program; a binary
whose checksum differs from its package's is one of a replaced one (seed 004 §排查病毒木马).
Only a few executables are looked up, so a scan of dpkg's file lists and md5sums (with
the /bin ↔ /usr/bin merge taken into account) is fast enough and needs no subprocess on
Debian-family systems. ``root`` is the machine's root (``--root``): dpkg's database is read
from there, and rpm is asked with ``--root``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from hostmedic.collectors.rootfs import RootFS

DPKG_INFO = "/var/lib/dpkg/info"
DPKG_DIVERSIONS = "/var/lib/dpkg/diversions"
RPM_DB_DIRS = ("/var/lib/rpm", "/usr/lib/sysimage/rpm")
_MD5_LINE = re.compile(r"([0-9a-f]{32}) [ *](\S.*)")


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
    info_dir = RootFS(root).host_path(DPKG_INFO)
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
    if _rpm_usable(root):
        for p in paths:
            proc = subprocess.run(
                [*_rpm(root), "-qf", "--queryformat", "%{NAME}", p],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            result[p] = proc.stdout.strip() if proc.returncode == 0 else None
    return result


def _rpm(root: str) -> list[str]:
    return ["rpm"] if root == "/" else ["rpm", "--root", root]


def _rpm_usable(root: str) -> bool:
    fs = RootFS(root)
    return shutil.which("rpm") is not None and any(fs.is_dir(d) for d in RPM_DB_DIRS)


def package_database_present(root: str = "/") -> bool:
    """True when dpkg's or rpm's database exists, so "no owner" means something."""
    return dpkg_present(root) or _rpm_usable(root)


def dpkg_present(root: str = "/") -> bool:
    """True when the machine has dpkg's database (file lists and md5sums)."""
    return RootFS(root).is_dir(DPKG_INFO)


def parse_md5sums(text: str) -> dict[str, str]:
    """dpkg's ``<package>.md5sums``: ``"/usr/bin/ps" → md5``; malformed lines ignored."""
    sums: dict[str, str] = {}
    for line in text.splitlines():
        m = _MD5_LINE.fullmatch(line.strip())
        if m:
            sums["/" + m[2].lstrip("/")] = m[1]
    return sums


def parse_diversions(text: str) -> set[str]:
    """Paths dpkg-divert moved away (the file there is another package's, by design)."""
    lines = text.splitlines()
    return {lines[i] for i in range(0, len(lines) - 2, 3)}


def package_md5sums(paths: list[str], root: str = "/") -> dict[str, tuple[str, str]]:
    """``path → (package, md5)`` from dpkg's md5sums for the paths that have one.

    Diverted paths are left out: what sits there is legitimately not what the package's
    md5sums describe.
    """
    fs = RootFS(root)
    try:
        diverted = parse_diversions(fs.read_text(DPKG_DIVERSIONS))
    except OSError:
        diverted = set()
    wanted = [p for p in paths if p not in diverted]
    found: dict[str, tuple[str, str]] = {}
    for name in fs.listdir(DPKG_INFO):
        if not name.endswith(".md5sums") or len(found) == len(wanted):
            continue
        try:
            sums = parse_md5sums(fs.read_text(f"{DPKG_INFO}/{name}"))
        except OSError:
            continue
        for path in wanted:
            hit = next((v for v in _path_variants(path) if v in sums), None)
            if path not in found and hit is not None:
                found[path] = (name[: -len(".md5sums")].split(":")[0], sums[hit])
    return found


def parse_rpm_verify(text: str) -> dict[str, bool]:
    """``rpm -V`` output → ``path → digest differs`` (the 3rd flag is ``5``; "missing"
    counts as differing). Only listed paths appear: rpm prints nothing for a good file."""
    result: dict[str, bool] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[-1].startswith("/"):
            flags = parts[0]
            result[parts[-1]] = flags == "missing" or (len(flags) >= 3 and flags[2] == "5")
    return result


def rpm_verify(paths: list[str], root: str = "/") -> dict[str, bool] | None:
    """``path → digest differs`` for rpm-owned paths (``rpm -Vf``), None without rpm."""
    if not _rpm_usable(root) or not paths:
        return None
    proc = subprocess.run(
        [*_rpm(root), "-V", "--nodeps", "--noscripts", "-f", *paths],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    differs = parse_rpm_verify(proc.stdout)
    return {p: differs.get(p, False) for p in paths}

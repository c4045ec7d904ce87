"""Fake machine roots for the security checks (what ``--root DIR`` reads): a healthy
baseline that must raise nothing, and helpers to plant one artifact at a time.

The baseline is a small Debian-like system: merged /usr (``/bin -> usr/bin``), a dpkg
database whose file lists and md5sums match the planted "binaries", package-owned cron
and systemd entries, a hardened sshd_config, old wtmp/btmp/auth.log records.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from hostmedic.collectors.bandwidth import MonitorOptions
from hostmedic.collectors.security import collect_security
from hostmedic.engine import registered_rules, run_rules
from hostmedic.gather import GatherContext
from hostmedic.model import Finding, Status
from hostmedic.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures" / "security"
OLD = time.time() - 90 * 86_400  # the baseline's files are three months old
DAY = 86_400
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDmQv8n0aKp3rJ0b1U6Cq7n0lR3Yw2kH3tXy2lVd1Zr alice@laptop"


class Tree:
    """A machine root under ``path``; paths given to methods are the machine's."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.packages: dict[str, dict[str, bytes]] = {}

    def file(self, machine_path: str, content: str | bytes, mtime: float | None = OLD) -> Path:
        target = self.path / machine_path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
        if mtime is not None:
            os.utime(target, (mtime, mtime))
        return target

    def append(self, machine_path: str, line: str) -> None:
        target = self.path / machine_path.lstrip("/")
        stat = target.stat()
        with target.open("a", encoding="utf-8") as f:
            f.write(line.rstrip("\n") + "\n")
        os.utime(target, (stat.st_atime, stat.st_mtime))

    def link(self, machine_path: str, target: str) -> None:
        where = self.path / machine_path.lstrip("/")
        where.parent.mkdir(parents=True, exist_ok=True)
        where.symlink_to(target)

    def package(self, name: str, files: dict[str, bytes]) -> None:
        """Install files as dpkg package ``name`` (file list and md5sums)."""
        self.packages[name] = files
        for path, content in files.items():
            self.file(path, content)
        info = "/var/lib/dpkg/info"
        self.file(f"{info}/{name}.list", "".join(f"{p}\n" for p in files))
        sums = "".join(f"{hashlib.md5(c).hexdigest()}  {p.lstrip('/')}\n" for p, c in files.items())
        self.file(f"{info}/{name}.md5sums", sums)

    def findings(self, home_country: str = "CN") -> list[Finding]:
        """Run the security category against this root, as ``diagnose --root`` does."""
        ctx = GatherContext(
            Settings(home_country=home_country),
            0,
            MonitorOptions(),
            root=str(self.path),
            live=False,
        )
        findings, errors = run_rules(registered_rules(["security"]), collect_security(ctx))
        assert errors == []
        return findings


def failed(findings: list[Finding], rule_id: str | None = None) -> list[Finding]:
    return [
        f
        for f in findings
        if f.status is Status.FAILED and (rule_id is None or f.rule_id == rule_id)
    ]


def elf(name: str) -> bytes:
    """Bytes that stand in for a program (an ELF header and the name)."""
    return b"\x7fELF\x02\x01\x01\x00" + name.encode() * 64


def healthy_tree(path: Path) -> Tree:
    """A machine with nothing wrong: every check must pass against it."""
    t = Tree(path)
    t.link("/bin", "usr/bin")
    t.link("/sbin", "usr/sbin")
    t.link("/lib", "usr/lib")
    t.file(
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\n"
        "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
        "sync:x:4:65534:sync:/bin:/bin/sync\n"
        "postgres:x:101:101:PostgreSQL administrator:/var/lib/postgresql:/bin/bash\n"
        "alice:x:1000:1000:Alice:/home/alice:/bin/bash\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    )
    day = int(OLD // DAY)
    t.file(
        "/etc/shadow",
        f"root:$6$salt$abcdefghijkl:{day}:0:99999:7:::\n"
        f"daemon:*:{day}:0:99999:7:::\n"
        f"sync:*:{day}:0:99999:7:::\n"
        f"postgres:!:{day}::::::\n"
        f"alice:$y$j9T$salt$hash:{day}:0:99999:7:::\n"
        f"nobody:*:{day}:0:99999:7:::\n",
    )
    t.file("/etc/shells", "# /etc/shells\n/bin/sh\n/usr/bin/sh\n/bin/bash\n/usr/bin/bash\n")
    t.file("/etc/login.defs", "UID_MIN\t\t\t 1000\nUID_MAX\t\t\t60000\n")
    t.file("/home/alice/.ssh/authorized_keys", KEY + "\n")
    t.file("/home/alice/.bashrc", "# ~/.bashrc\nHISTSIZE=1000\nalias ll='ls -l'\n")
    t.file("/root/.bashrc", "export PS1='\\h:\\w\\$ '\numask 022\n")
    t.file("/etc/profile", 'if [ "$(id -u)" -eq 0 ]; then\n  PATH="/usr/local/sbin:/usr/bin"\nfi\n')
    t.file("/etc/profile.d/locale.sh", "export LANG=C.UTF-8\n")
    t.file(
        "/etc/ssh/sshd_config",
        "Include /etc/ssh/sshd_config.d/*.conf\nPort 2222\nPermitRootLogin prohibit-password\n"
        "KbdInteractiveAuthentication no\nUsePAM yes\nSubsystem sftp /usr/lib/openssh/sftp-server\n",
    )
    t.file("/etc/ssh/sshd_config.d/50-keys.conf", "PasswordAuthentication no\n")
    t.file("/etc/hosts.deny", "# none\n")
    for name, files in {
        "procps": {"/usr/bin/ps": elf("ps"), "/usr/bin/top": elf("top")},
        "net-tools": {"/usr/bin/netstat": elf("netstat")},
        "iproute2": {"/usr/bin/ss": elf("ss")},
        "coreutils": {"/usr/bin/ls": elf("ls")},
        "openssh-server": {
            "/usr/sbin/sshd": elf("sshd"),
            "/usr/lib/systemd/system/ssh.service": b"[Unit]\nDescription=OpenBSD Secure Shell\n"
            b"[Service]\nExecStartPre=/usr/sbin/sshd -t\nExecStart=/usr/sbin/sshd -D $SSHD_OPTS\n"
            b"ExecReload=/bin/kill -HUP $MAINPID\n[Install]\nWantedBy=multi-user.target\n",
            "/etc/init.d/ssh": b"#!/bin/sh\n. /lib/lsb/init-functions\nstart-stop-daemon --start "
            b"--exec /usr/sbin/sshd\n",
        },
        "e2fsprogs": {
            "/usr/lib/x86_64-linux-gnu/e2fsprogs/e2scrub_all_cron": b"#!/bin/sh\nexit 0\n",
            "/etc/cron.d/e2scrub_all": b"30 3 * * 0 root test -e /run/systemd/system || "
            b"SERVICE_MODE=1 /usr/lib/x86_64-linux-gnu/e2fsprogs/e2scrub_all_cron\n",
        },
        "logrotate": {
            "/etc/cron.daily/logrotate": b"#!/bin/sh\n/usr/sbin/logrotate /etc/logrotate.conf\n"
        },
        "cron": {"/usr/bin/crontab": elf("crontab")},
    }.items():
        t.package(name, files)
    # an absolute symlink: must resolve inside the tree, not on the host
    t.link(
        "/etc/systemd/system/multi-user.target.wants/ssh.service", "/lib/systemd/system/ssh.service"
    )
    t.link("/etc/rc2.d/S01ssh", "../init.d/ssh")
    t.file(
        "/etc/crontab",
        "SHELL=/bin/sh\n17 * * * * root cd / && run-parts --report /etc/cron.hourly\n",
    )
    t.file("/var/log/wtmp", (FIXTURES / "wtmp.bin").read_bytes()[384 : 384 * 3])  # alice from CN
    t.file("/var/log/btmp", (FIXTURES / "btmp.bin").read_bytes()[-384:])  # one failure
    t.file(
        "/var/log/auth.log",
        "Oct  1 09:00:00 web sshd[1234]: Accepted publickey for alice from 114.215.114.6 port "
        "50022 ssh2: ED25519 SHA256:abc\n"
        "Oct  1 09:00:00 web sshd[1234]: pam_unix(sshd:session): session opened for user alice\n",
        mtime=OLD,
    )
    return t

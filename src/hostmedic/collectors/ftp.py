"""Find the FTP servers of this machine and read what the FTP rules need (seed 004 FTP).

A server is found by its running process (vsftpd, pure-ftpd, proftpd in hostmedic's own
network namespace; the configuration file named on its command line wins) or, when not
running, by its binary plus its configuration file at the usual places. All paths are
read under ``root`` (``--root``); live-only facts (processes, sockets, addresses, the
firewall) are left out there. Read-only: files, /proc, one sock_diag dump, ``nft list``.
"""

from __future__ import annotations

import collections
import glob
import os
import socket
import sqlite3
import time
from typing import TYPE_CHECKING

from hostmedic.collectors import ftp_config, ftp_logs
from hostmedic.errors import FactUnavailable
from hostmedic.facts.ftp import (
    PROFTPD,
    PURE_FTPD,
    VSFTPD,
    Ban,
    FailedLogins,
    FtpConfig,
    FtpFacts,
    FtpServer,
    Listener,
    Refusals,
)
from hostmedic.facts.network import FirewallFacts

if TYPE_CHECKING:
    from hostmedic.gather import Collection, GatherContext

MAX_CONFIG_BYTES = 1 << 20
BINARIES = {
    VSFTPD: ("/usr/sbin/vsftpd",),
    PURE_FTPD: ("/usr/sbin/pure-ftpd",),
    PROFTPD: ("/usr/sbin/proftpd",),
}
CONFIGS = {
    VSFTPD: ("/etc/vsftpd.conf", "/etc/vsftpd/vsftpd.conf"),
    PURE_FTPD: ("/etc/pure-ftpd/conf", "/etc/pure-ftpd/pure-ftpd.conf", "/etc/pure-ftpd.conf"),
    PROFTPD: ("/etc/proftpd/proftpd.conf", "/etc/proftpd.conf"),
}
_TCP_ESTABLISHED, _TCP_LISTEN = 1, 10
DEFAULT_EPHEMERAL_PORTS = (32768, 60999)  # Linux's default net.ipv4.ip_local_port_range


def _path(root: str, path: str) -> str:
    return path if root == "/" else os.path.join(root, path.lstrip("/"))


def _read(root: str, path: str) -> str | None:
    try:
        with open(_path(root, path), "rb") as f:
            return f.read(MAX_CONFIG_BYTES).decode("utf-8", "replace")
    except OSError:
        return None


def _glob(root: str, pattern: str) -> dict[str, str]:
    """Files an ProFTPD ``Include`` names (a file, a directory, a glob), by path."""
    base = _path(root, pattern)
    names = sorted(glob.glob(os.path.join(base, "*"))) if os.path.isdir(base) else glob.glob(base)
    found: dict[str, str] = {}
    for name in names[: ftp_config.MAX_INCLUDED_FILES]:
        shown = "/" + os.path.relpath(name, root) if root != "/" else name
        text = _read("/", name) if os.path.isfile(name) else None
        if text is not None:
            found[shown] = text
    return found


def read_config(kind: str, path: str, root: str, argv: tuple[str, ...] = ()) -> FtpConfig | None:
    """The configuration of one server (None when its file cannot be read)."""
    if kind == VSFTPD:
        text = _read(root, path)
        overrides = [a for a in argv if a.startswith("-o")]
        return None if text is None else ftp_config.parse_vsftpd(text, path, overrides)
    if kind == PURE_FTPD:
        full = _path(root, path)
        if os.path.isdir(full):
            files = {
                n: t for n in os.listdir(full) if (t := _read(root, f"{path}/{n}")) is not None
            }
            pairs = ftp_config.pure_ftpd_dir_pairs(files, path)
        else:
            text = _read(root, path)
            if text is None:
                return None
            pairs = ftp_config.pure_ftpd_file_pairs(text, path)
        return ftp_config.parse_pure_ftpd(pairs + ftp_config.pure_ftpd_argv_pairs(argv))
    text = _read(root, path)
    if text is None:
        return None
    return ftp_config.parse_proftpd(text, path, lambda pattern: _glob(root, pattern))


def _config_from_argv(kind: str, argv: tuple[str, ...]) -> str | None:
    """The configuration file a server's command line names, if it still shows it (ProFTPD
    and pure-ftpd rewrite their process title)."""
    if kind == VSFTPD:
        files = [a for a in argv[1:] if not a.startswith("-")]
        return files[-1] if files else None
    if kind == PROFTPD and "-c" in argv[:-1]:
        return argv[argv.index("-c") + 1]
    files = [a for a in argv[1:] if a.endswith(".conf")]
    return files[-1] if files else None


def _processes() -> dict[tuple[str, str | None], tuple[list[int], tuple[str, ...]]]:
    """Running FTP servers in this network namespace: (kind, config) → (pids, argv)."""
    own = os.stat("/proc/self/ns/net").st_ino
    found: dict[tuple[str, str | None], tuple[list[int], tuple[str, ...]]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/comm", encoding="utf-8", errors="replace") as f:
                comm = f.read().strip()
            if (
                comm not in (VSFTPD, PURE_FTPD, PROFTPD)
                or os.stat(f"/proc/{name}/ns/net").st_ino != own
            ):
                continue
            with open(f"/proc/{name}/cmdline", "rb") as f:
                argv = tuple(a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a)
        except OSError:  # gone, or another user's process without root
            continue
        key = (comm, _config_from_argv(comm, argv))
        found.setdefault(key, ([], argv))[0].append(int(name))
    return found


def _socket_owners(pids: list[int]) -> dict[int, int]:
    owners: dict[int, int] = {}
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                owners.setdefault(int(target[8:-1]), pid)
    return owners


def _tcp_sockets() -> list[tuple[int, str, int, str, int]]:
    """(state, local ip, local port, remote ip, inode) of listening and established TCP
    sockets in this namespace (one sock_diag dump per family)."""
    from hostmedic.collectors.sockdiag import SockDiag

    states = 1 << _TCP_LISTEN | 1 << _TCP_ESTABLISHED
    rows = []
    with SockDiag() as diag:
        for family in (socket.AF_INET, socket.AF_INET6):
            for r in diag.dump(socket.IPPROTO_TCP, family, states):
                rows.append((r.state, r.local_ip, r.local_port, r.remote_ip, r.inode))
    return rows


def _with_sockets(
    server: FtpServer, sockets: list[tuple[int, str, int, str, int]], owners: dict[int, int]
) -> FtpServer:
    """The server with its listening sockets and sessions. ``owners`` maps socket inodes to
    the FTP server processes holding them: a running server owns the listeners its
    processes hold; a server without processes (inetd, socket activation) one that no FTP
    server process holds — so a stopped server never takes another's port."""
    port = server.config.control_port
    listeners = tuple(
        Listener(ip, lport, owners.get(inode))
        for state, ip, lport, _, inode in sockets
        if state == _TCP_LISTEN
        and lport == port
        and (owners.get(inode) in server.pids if server.pids else inode not in owners)
    )
    bound = {x.address for x in listeners}
    wildcard = bool(bound & {"0.0.0.0", "::"})
    per_ip = collections.Counter(
        remote
        for state, local, lport, remote, _ in sockets
        if state == _TCP_ESTABLISHED and lport == port and (wildcard or local in bound)
    )
    return FtpServer(
        server.kind,
        server.config_path,
        server.binary,
        server.pids,
        bool(server.pids or listeners),
        server.config,
        listeners,
        tuple(sorted(per_ip.items(), key=lambda kv: (-kv[1], kv[0]))),
    )


def _ephemeral_ports() -> tuple[int, int]:
    """The kernel's ephemeral port range (where a server without a passive range binds)."""
    text = _read("/", "/proc/sys/net/ipv4/ip_local_port_range") or ""
    parts = text.split()
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return int(parts[0]), int(parts[1])
    return DEFAULT_EPHEMERAL_PORTS


def find_servers(root: str, live: bool) -> tuple[list[FtpServer], list[str]]:
    """Every FTP server found, and notes on configurations that could not be read."""
    servers: list[FtpServer] = []
    notes: list[str] = []
    seen: set[tuple[str, str]] = set()
    for (kind, named), (pids, argv) in (_processes() if live else {}).items():
        path = named or next((p for p in CONFIGS[kind] if os.path.exists(_path(root, p))), None)
        config = read_config(kind, path, root, argv) if path else None
        if config is None:
            notes.append(
                f"{kind} (pid {pids[0]}): configuration {path or '?'} unreadable; defaults assumed"
            )
            # the server's defaults, plus what its command line still says
            config = read_config(kind, os.devnull, "/", argv) or FtpConfig()
        binary = argv[0] if argv and argv[0].startswith("/") else None
        servers.append(FtpServer(kind, path, binary, tuple(sorted(pids)), True, config))
        seen.add((kind, path or ""))
    for kind, binaries in BINARIES.items():
        binary = next((b for b in binaries if os.path.exists(_path(root, b))), None)
        path = next((p for p in CONFIGS[kind] if os.path.exists(_path(root, p))), None)
        if binary is None or path is None or (kind, path) in seen:
            continue
        config = read_config(kind, path, root)
        if config is None:
            notes.append(f"{kind}: {path} unreadable")
            continue
        servers.append(FtpServer(kind, path, binary, (), False, config))
    return servers, notes


def read_ftp(root: str, live: bool, ruleset: FirewallFacts | None) -> FtpFacts:
    """The FTP facts of the machine at ``root`` (FactUnavailable when it has no FTP server)."""
    now = time.time()
    servers, notes = find_servers(root, live)
    if not servers:
        raise FactUnavailable("no FTP server found", key="reason.no_ftp_server")
    addresses: tuple[str, ...] | None = None
    if live:
        try:
            sockets = _tcp_sockets()
            owners = _socket_owners([pid for s in servers for pid in s.pids])
            servers = [_with_sockets(s, sockets, owners) for s in servers]
        except (FactUnavailable, OSError) as exc:
            notes.append(f"sockets not read: {exc}")
        import psutil

        addresses = tuple(
            a.address.split("%")[0]
            for addrs in psutil.net_if_addrs().values()
            for a in addrs
            if a.family in (socket.AF_INET, socket.AF_INET6)
        )
    bans: list[Ban] = ftp_logs.bans_in_ruleset(ruleset) if ruleset is not None else []
    db = _path(root, ftp_logs.FAIL2BAN_DB)
    if os.path.exists(db):
        try:
            bans += ftp_logs.fail2ban_bans(db, now)
        except (sqlite3.Error, OSError) as exc:  # locked, corrupt, unreadable: a note
            notes.append(f"{ftp_logs.FAIL2BAN_DB}: {type(exc).__name__}: {exc}")
    failed: list[FailedLogins] = []
    refusals: list[Refusals] = []
    configured = [f for s in servers for f in s.config.log_files]
    for log in ftp_logs.log_candidates((s.kind for s in servers), configured):
        try:
            text, first_line, cut = ftp_logs.read_tail(_path(root, log))
        except OSError:
            continue
        shown = f"{log} (last {ftp_logs.TAIL_BYTES >> 20} MiB)" if cut else log
        failed += ftp_logs.parse_failed_logins(text, shown, first_line)
        if (refused := ftp_logs.parse_refusals(text, shown, first_line)) is not None:
            refusals.append(refused)
    return FtpFacts(
        servers=tuple(servers),
        machine_addresses=addresses,
        bans=tuple(dict.fromkeys(bans)),
        failed_logins=tuple(failed),
        live=live,
        read_at=now,
        notes=tuple(notes),
        sockets_read=live and not any(n.startswith("sockets not read") for n in notes),
        ephemeral_ports=_ephemeral_ports() if live else DEFAULT_EPHEMERAL_PORTS,
        refusals=tuple(refusals),
    )


def ftp_source(ctx: GatherContext) -> Collection:
    """The ``ftp`` category: FTP facts plus the firewall ruleset they are checked against."""
    from hostmedic.collectors.firewall import read_firewall
    from hostmedic.gather import Instant

    ruleset: FirewallFacts | FactUnavailable
    if ctx.live:
        try:
            ruleset = ctx.once("firewall", read_firewall)
        except FactUnavailable as exc:
            ruleset = exc
    else:
        ruleset = FactUnavailable("not live", key="reason.not_live")
    try:
        ftp: FtpFacts | FactUnavailable = read_ftp(
            ctx.root, ctx.live, ruleset if isinstance(ruleset, FirewallFacts) else None
        )
    except FactUnavailable as exc:
        ftp = exc
    return Instant({"ftp": ftp, "firewall": ruleset})

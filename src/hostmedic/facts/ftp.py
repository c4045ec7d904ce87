"""Facts of the FTP runbook (seed 004 FTP sections): which FTP servers this machine runs,
how they are configured, how many sessions they hold, and which clients are banned.

A server's settings come from its configuration file (or, for pure-ftpd, the command line
its wrapper built), with the server's documented defaults where a setting is absent.
"""

from __future__ import annotations

from dataclasses import dataclass

VSFTPD, PURE_FTPD, PROFTPD = "vsftpd", "pure-ftpd", "proftpd"


@dataclass(frozen=True, slots=True)
class FtpConfig:
    """The settings hostmedic checks, as the server would apply them.

    Ports are TCP ports. ``passive_min_port``/``passive_max_port`` are None when the server
    picks any free port for passive data connections; ``max_clients`` None = unlimited;
    ``active_data_port`` is the source port of active-mode data connections (20, or None
    when the server uses any port or active mode is off). ``source`` names the file and
    line each setting came from (``setting=path:line``), for evidence.
    """

    control_port: int = 21
    listen_address: str | None = None
    ipv4: bool = True
    ipv6: bool = False
    passive_enabled: bool = True
    passive_min_port: int | None = None
    passive_max_port: int | None = None
    passive_address: str | None = None
    active_enabled: bool = True
    active_data_port: int | None = 20
    max_clients: int | None = None
    max_per_ip: int | None = None
    idle_timeout_s: int | None = None
    log_files: tuple[str, ...] = ()
    source: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()  # lines not understood, values out of range (evidence)


@dataclass(frozen=True, slots=True)
class Listener:
    """A listening TCP socket of the server (``address`` as the kernel reports it)."""

    address: str
    port: int
    pid: int | None


@dataclass(frozen=True, slots=True)
class FtpServer:
    """One FTP server found on the machine.

    ``running``: a server process runs in hostmedic's network namespace, or something
    listens on its control port (inetd / socket activation). ``sessions_by_ip``: the
    established control connections per client address (counted from the kernel's socket
    table, so it includes clients that have not logged in yet, as the server's own limit
    does).
    """

    kind: str  # vsftpd, pure-ftpd, proftpd
    config_path: str | None
    binary: str | None
    pids: tuple[int, ...]
    running: bool
    config: FtpConfig
    listeners: tuple[Listener, ...] = ()
    sessions_by_ip: tuple[tuple[str, int], ...] = ()

    @property
    def sessions(self) -> int:
        """Established control connections, all clients together."""
        return sum(n for _, n in self.sessions_by_ip)


@dataclass(frozen=True, slots=True)
class Ban:
    """A client address a fail2ban FTP jail (or the firewall set it fills) blocks."""

    ip: str
    jail: str
    source: str  # the database or ruleset element it was read from
    banned_at: float | None = None
    until: float | None = None  # None: permanent or unknown


@dataclass(frozen=True, slots=True)
class FailedLogins:
    """Failed FTP logins of one client address in one log file."""

    ip: str
    count: int
    log_file: str
    first_line: int
    last_line: int
    users: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Refusals:
    """Connections a server's log says it refused for too many sessions (the 421 reply):
    ``per_address`` of them for the per-client-address limit."""

    log_file: str
    count: int
    per_address: int
    first_line: int
    last_line: int


@dataclass(frozen=True, slots=True)
class FtpFacts:
    """Everything the FTP rules look at. ``machine_addresses`` is None under ``--root``
    (another machine's disk: its addresses are unknown)."""

    servers: tuple[FtpServer, ...]
    machine_addresses: tuple[str, ...] | None
    bans: tuple[Ban, ...]
    failed_logins: tuple[FailedLogins, ...]
    live: bool
    read_at: float
    notes: tuple[str, ...] = ()  # what could not be read (a log, the fail2ban database)
    sockets_read: bool = False  # listeners and sessions were counted (live, sock_diag worked)
    # where a server without a passive range picks its ports (net.ipv4.ip_local_port_range)
    ephemeral_ports: tuple[int, int] = (32768, 60999)
    refusals: tuple[Refusals, ...] = ()

"""Facts of the compromise checks (seed 004: accounts, malicious processes, startup items,
trojans, vulnerable services).

Each group is collected on its own (one unreadable file never hides the others) and names
where every item was read, so a finding can cite the file, line number and line. Times
are Unix seconds; ``read_at`` is when the group was collected (rules take "now" from it).
"""

from __future__ import annotations

from dataclasses import dataclass

from hostmedic.facts.bandwidth import ProcessInfo

# Password states of an account (from /etc/shadow, or /etc/passwd's second field)
PASSWORD_USABLE, PASSWORD_EMPTY, PASSWORD_LOCKED, PASSWORD_UNKNOWN = (
    "usable",
    "empty",
    "locked",
    "unknown",
)


@dataclass(frozen=True, slots=True)
class FileLine:
    """One line of a file, as evidence: where it is and what it says."""

    path: str
    line_no: int
    text: str


@dataclass(frozen=True, slots=True)
class Account:
    """One /etc/passwd entry with what /etc/shadow and the home directory add."""

    name: str
    uid: int
    gid: int
    home: str
    shell: str
    login_shell: bool  # a shell listed in /etc/shells (not nologin, false, sync…)
    password: str  # one of the PASSWORD_* states
    changed_day: int | None  # shadow: days since 1970-01-01 of the last password change
    home_ctime: float | None
    entry: FileLine


@dataclass(frozen=True, slots=True)
class KeyFile:
    """An ``authorized_keys`` file."""

    user: str
    path: str
    mtime: float
    keys: tuple[FileLine, ...]  # key lines, the key body shortened
    redis_marker: FileLine | None  # a Redis dump header (REDIS0…) inside the file
    binary_lines: int  # lines with control bytes: a file written by something else


@dataclass(frozen=True, slots=True)
class AccountFacts:
    accounts: tuple[Account, ...]
    key_files: tuple[KeyFile, ...]
    uid_min: int  # login.defs UID_MIN: below it, a system account
    shadow_read: bool
    skipped_lines: int
    read_at: float


@dataclass(frozen=True, slots=True)
class Login:
    """A successful login from a remote address (wtmp, auth.log / secure, the journal)."""

    user: str
    host: str
    time: float
    method: str  # password, publickey, keyboard-interactive… or "session" (wtmp)
    source: str  # "/var/log/auth.log:1234" or "/var/log/wtmp#17"
    country: str | None


@dataclass(frozen=True, slots=True)
class FailureGroup:
    """Failed logins that share one side: a remote address (``key`` = IP, ``others`` = the
    user names it tried) or a user name (``key`` = user, ``others`` = the addresses)."""

    key: str
    count: int
    others: tuple[str, ...]  # the first few distinct values of the other side
    distinct_others: int
    first_time: float | None
    last_time: float | None
    sources: tuple[str, ...]  # "/var/log/auth.log lines 12-3400", "/var/log/btmp#1-80"
    country: str | None = None


@dataclass(frozen=True, slots=True)
class LoginFacts:
    logins: tuple[Login, ...]  # newest last, bounded
    failures_by_host: tuple[FailureGroup, ...]  # biggest first
    failures_by_user: tuple[FailureGroup, ...]  # most addresses first
    sources: tuple[str, ...]  # what was read
    skipped: int  # records or lines that could not be parsed
    home_country: str | None
    read_at: float


@dataclass(frozen=True, slots=True)
class Listener:
    """A listening TCP socket or a bound, unconnected UDP socket."""

    protocol: str
    ip: str
    port: int
    pid: int | None


@dataclass(frozen=True, slots=True)
class RunningProcess:
    info: ProcessInfo
    exe_on_disk: bool  # a file exists at the executable's path now (after an upgrade)


@dataclass(frozen=True, slots=True)
class HiddenProcess:
    """A process /proc answers for but does not list (a readdir hook), or whose /proc
    directory has something mounted over it."""

    pid: int
    name: str
    exe: str | None
    how: str  # "unlisted" or "mounted_over"


@dataclass(frozen=True, slots=True)
class ProcessFacts:
    processes: tuple[RunningProcess, ...]
    listeners: tuple[Listener, ...]
    hidden: tuple[HiddenProcess, ...]
    pids_probed: int
    read_at: float
    uninspected: tuple[int, ...] = ()  # user processes whose executable could not be read


@dataclass(frozen=True, slots=True)
class PlantedFile:
    """One of the seed's trojan paths, present on disk."""

    path: str
    is_dir: bool
    size: int
    mtime: float
    entries: tuple[str, ...]  # names inside a directory (first few)


# Outcomes of comparing a binary with the package database
CHECK_OK, CHECK_MISMATCH, CHECK_NO_RECORD = "ok", "mismatch", "no_record"


@dataclass(frozen=True, slots=True)
class BinaryCheck:
    """A commonly trojaned system binary compared with the package database."""

    path: str
    package: str | None
    status: str  # one of the CHECK_* outcomes
    expected_md5: str | None  # dpkg's md5sums (rpm -V reports only that it differs)
    actual_md5: str | None
    script: bool  # starts with '#!': a wrapper script where an ELF binary belongs
    mtime: float | None


@dataclass(frozen=True, slots=True)
class FileFacts:
    planted: tuple[PlantedFile, ...]
    binaries: tuple[BinaryCheck, ...]
    database: str | None  # "dpkg", "rpm" or None (no checksums to compare with)
    read_at: float


@dataclass(frozen=True, slots=True)
class StartupEntry:
    """One thing the machine runs by itself: a cron line, an enabled unit's ExecStart, an
    rc.local or profile line, an init script, an ld.so.preload library."""

    kind: str  # cron, systemd, rc_local, init_d, ld_preload, profile
    where: FileLine
    user: str | None  # whose crontab / profile / unit, when known
    command: str
    program: str | None  # the absolute path it runs, when one can be named
    # True when the machine starts this itself (a cron line, an ExecStart, an rc.local line,
    # an enabled script); False for a line inside a script or profile (judged by its text)
    entry_point: bool = False
    program_package: str | None = None
    package_checked: bool = False  # False: no package database to ask


@dataclass(frozen=True, slots=True)
class StartupFacts:
    entries: tuple[StartupEntry, ...]
    sources: tuple[str, ...]
    truncated: bool  # the entry limit was reached
    skipped_lines: int  # malformed crontab lines
    read_at: float


@dataclass(frozen=True, slots=True)
class SshSetting:
    """One sshd_config keyword as written (``where`` None: sshd's built-in default)."""

    keyword: str  # lower case
    value: str
    where: FileLine | None
    match: str | None  # the Match criteria it sits under, None for global


@dataclass(frozen=True, slots=True)
class SshFacts:
    settings: tuple[SshSetting, ...]  # global ones in effect, then Match overrides
    ports: tuple[int, ...]
    hosts_allow: tuple[FileLine, ...]
    hosts_deny: tuple[FileLine, ...]
    read_at: float


@dataclass(frozen=True, slots=True)
class ServiceProbe:
    """What one local service answered to a probe on loopback."""

    service: str  # redis, mysql, jenkins, tomcat_manager, phpmyadmin, weblogic, elasticsearch…
    address: str  # where it was probed (127.0.0.1:6379)
    bind: tuple[str, ...]  # every address it listens on
    pid: int | None
    open: bool  # it answered without credentials (or with one from the tiny built-in list)
    detail: str  # the reply excerpt that decided
    config: tuple[tuple[str, str], ...] = ()  # e.g. Redis CONFIG GET dir / dbfilename


@dataclass(frozen=True, slots=True)
class ServiceFacts:
    probes: tuple[ServiceProbe, ...]
    not_probed: tuple[str, ...]  # listeners not reachable on loopback (bound elsewhere)
    read_at: float


# The fact names of the security category and their types (``--save``/``--from``).
SECURITY_FACT_TYPES: dict[str, type] = {
    "security_accounts": AccountFacts,
    "security_logins": LoginFacts,
    "security_processes": ProcessFacts,
    "security_files": FileFacts,
    "security_startup": StartupFacts,
    "security_ssh": SshFacts,
    "security_services": ServiceFacts,
}

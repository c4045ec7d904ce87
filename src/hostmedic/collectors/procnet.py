"""Socket tables the kernel only exposes as text: /proc/net/icmp{,6} (ping sockets, whose
"port" is the ICMP echo id) and /proc/net/raw{,6} (raw sockets, e.g. ping without
unprivileged ICMP). sock_diag has no handler for ping sockets, hence this module.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from hostmedic.errors import ParseError


@dataclass(frozen=True, slots=True)
class ProcSocket:
    local_ip: str
    local_port: int
    remote_ip: str
    remote_port: int
    inode: int


def _address(hex_addr: str) -> tuple[str, int]:
    addr, _, port = hex_addr.partition(":")
    raw = bytes.fromhex(addr)
    if len(raw) == 4:
        ip = ipaddress.IPv4Address(raw[::-1])
    elif len(raw) == 16:  # four little-endian 32-bit words
        ip6 = ipaddress.IPv6Address(b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4)))
        ip = ip6.ipv4_mapped or ip6  # type: ignore[assignment]
    else:
        raise ValueError(hex_addr)
    return str(ip), int(port, 16)


def parse_proc_net_sockets(text: str) -> list[ProcSocket]:
    """Parse the /proc/net/{udp,icmp,raw}[6] table format (header line first)."""
    rows: list[ProcSocket] = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        try:
            local, remote = _address(fields[1]), _address(fields[2])
            rows.append(ProcSocket(*local, *remote, int(fields[9])))
        except ValueError as exc:
            raise ParseError(f"bad socket table line: {line!r}") from exc
    return rows


def read_proc_net_sockets(*names: str, root: str = "/proc/net") -> list[ProcSocket]:
    """Rows of the named tables; a missing table (no IPv6, module not loaded) is empty."""
    rows: list[ProcSocket] = []
    for name in names:
        try:
            with open(f"{root}/{name}", encoding="ascii") as f:
                rows += parse_proc_net_sockets(f.read())
        except OSError:
            continue
    return rows

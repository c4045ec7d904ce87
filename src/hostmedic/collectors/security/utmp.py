"""wtmp / btmp in pure Python: what ``last`` and ``lastb`` show (seed 004 §账户 Linux 1:
"use last to see the recent logins").

The files are arrays of glibc's ``struct utmp`` (384 bytes on Linux, little-endian on the
architectures clouds run). Only the newest records are read, so a btmp swollen by a long
brute-force run costs a bounded amount; records that make no sense (a truncated tail,
garbage) are counted, not fatal.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from hostmedic.collectors.rootfs import RootFS

# type, (pad), pid, line[32], id[4], user[32], host[256], exit (2 shorts), session,
# tv_sec, tv_usec, addr_v6[16], unused[20]
UTMP = struct.Struct("<h2xi32s4s32s256shhiII16s20s")
RECORD_BYTES = UTMP.size  # 384
LOGIN_PROCESS, USER_PROCESS, DEAD_PROCESS = 6, 7, 8
_MAX_TYPE = 9  # ACCOUNTING, the last type glibc defines
MAX_RECORDS = 50_000


@dataclass(frozen=True, slots=True)
class UtmpRecord:
    """One login record (``index`` counts from the start of the file, 1-based)."""

    index: int
    kind: int
    pid: int
    line: str
    user: str
    host: str
    time: float


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _address(raw: bytes) -> str:
    """ut_addr_v6: an IPv4 address in the first word, or a whole IPv6 address."""
    if raw[4:] == bytes(12):
        return "" if raw[:4] == bytes(4) else str(ipaddress.IPv4Address(raw[:4]))
    return str(ipaddress.IPv6Address(raw))


def parse_utmp(data: bytes, first_index: int = 1) -> tuple[list[UtmpRecord], int]:
    """Records of a wtmp/btmp excerpt that starts on a record boundary, and how many
    records were skipped (unknown type, or the partial record a truncated file ends with)."""
    records: list[UtmpRecord] = []
    skipped = 1 if len(data) % RECORD_BYTES else 0
    for n, offset in enumerate(range(0, len(data) - RECORD_BYTES + 1, RECORD_BYTES)):
        fields = UTMP.unpack_from(data, offset)
        kind, pid, line, _, user, host = fields[:6]
        tv_sec, _, addr = fields[9], fields[10], fields[11]
        if not 0 <= kind <= _MAX_TYPE:
            skipped += 1
            continue
        host_text = _text(host) or _address(addr)
        records.append(
            UtmpRecord(
                first_index + n, kind, pid, _text(line), _text(user), host_text, float(tv_sec)
            )
        )
    return records, skipped


def read_utmp(
    fs: RootFS, path: str, max_records: int = MAX_RECORDS
) -> tuple[list[UtmpRecord], int]:
    """The newest ``max_records`` records of a wtmp/btmp file (OSError when unreadable)."""
    size = fs.stat(path).st_size
    count = size // RECORD_BYTES
    first = max(0, count - max_records)
    data = fs.read_bytes(path, (count - first) * RECORD_BYTES, first * RECORD_BYTES)
    records, skipped = parse_utmp(data, first + 1)
    return records, skipped + (1 if size % RECORD_BYTES else 0)

"""Does the local MySQL / MariaDB let ``root`` in without a real password? (seed 004
§账户 Linux 4 and §排查并修复服务器漏洞 7: "passwords of the MySQL account set too simply").

A minimal client of the MySQL protocol (handshake v10, HandshakeResponse41, the
``mysql_native_password`` and ``caching_sha2_password`` fast-path scrambles): it logs in and
disconnects, nothing else. Only ever pointed at a loopback address, with the tiny built-in
password list. Parsing is split from the socket so it can be tested on recorded bytes.
"""

from __future__ import annotations

import hashlib
import socket
import struct
from dataclasses import dataclass

from hostmedic.errors import ParseError

CLIENT_LONG_PASSWORD = 0x1
CLIENT_PROTOCOL_41 = 0x200
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_PLUGIN_AUTH = 0x80000
CAPABILITIES = (
    CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH
)
NATIVE, CACHING_SHA2 = "mysql_native_password", "caching_sha2_password"
OK, ERR, SWITCH, MORE = 0x00, 0xFF, 0xFE, 0x01
FAST_AUTH_OK = 0x03
MAX_PACKET = 1 << 20


@dataclass(frozen=True, slots=True)
class Handshake:
    server_version: str
    scramble: bytes
    plugin: str


def parse_handshake(payload: bytes) -> Handshake:
    """The server's greeting; ParseError when it is an error packet or not v10."""
    if not payload or payload[0] != 10:
        detail = payload[3:].decode("utf-8", "replace") if payload[:1] == b"\xff" else ""
        raise ParseError(f"not a MySQL v10 handshake {detail}".strip())
    end = payload.find(b"\0", 1)
    if end < 0 or len(payload) < end + 1 + 4 + 8 + 1 + 2:
        raise ParseError("truncated MySQL handshake")
    version = payload[1:end].decode("utf-8", "replace")
    pos = end + 1 + 4
    part1 = payload[pos : pos + 8]
    pos += 8 + 1 + 2 + 1 + 2 + 2  # filler, caps low, charset, status, caps high
    data_len = payload[pos] if pos < len(payload) else 0
    pos += 1 + 10
    part2_len = max(13, data_len - 8)
    part2 = payload[pos : pos + part2_len].rstrip(b"\0")
    pos += part2_len
    plugin_end = payload.find(b"\0", pos)
    plugin = payload[pos : plugin_end if plugin_end >= 0 else None].decode("ascii", "replace")
    return Handshake(version, part1 + part2, plugin or NATIVE)


def scramble(plugin: str, password: str, salt: bytes) -> bytes | None:
    """The auth response for a password (empty password → empty response); None for a
    plugin this client does not speak."""
    if not password:
        return b""
    pw = password.encode()
    if plugin == NATIVE:
        stage1 = hashlib.sha1(pw).digest()
        mix = hashlib.sha1(salt[:20] + hashlib.sha1(stage1).digest()).digest()
        return bytes(a ^ b for a, b in zip(stage1, mix, strict=True))
    if plugin == CACHING_SHA2:
        stage1 = hashlib.sha256(pw).digest()
        mix = hashlib.sha256(hashlib.sha256(stage1).digest() + salt[:20]).digest()
        return bytes(a ^ b for a, b in zip(stage1, mix, strict=True))
    return None


def handshake_response(user: str, auth: bytes, plugin: str) -> bytes:
    """HandshakeResponse41 payload."""
    return (
        struct.pack("<IIB23x", CAPABILITIES, MAX_PACKET, 33)
        + user.encode()
        + b"\0"
        + bytes([len(auth)])
        + auth
        + plugin.encode()
        + b"\0"
    )


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ParseError("connection closed")
        data += chunk
    return data


def _read_packet(sock: socket.socket) -> tuple[int, bytes]:
    header = _recv_exact(sock, 4)
    length = header[0] | header[1] << 8 | header[2] << 16
    if length > MAX_PACKET:
        raise ParseError("MySQL packet too large")
    return header[3], _recv_exact(sock, length)


def _send(sock: socket.socket, seq: int, payload: bytes) -> None:
    sock.sendall(struct.pack("<I", len(payload))[:3] + bytes([seq & 0xFF]) + payload)


def try_login(
    address: tuple[str, int], user: str, password: str, timeout_s: float
) -> tuple[bool, str]:
    """(logged in, what the server said). Raises OSError / ParseError when the server
    cannot be talked to."""
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        sock.connect(address)
        seq, payload = _read_packet(sock)
        hello = parse_handshake(payload)
        plugin, salt = hello.plugin, hello.scramble
        auth = scramble(plugin, password, salt)
        if auth is None:
            plugin, auth = NATIVE, scramble(NATIVE, password, salt) or b""
        _send(sock, seq + 1, handshake_response(user, auth, plugin))
        for _ in range(4):  # OK, ERR, or an auth switch / fast-auth step
            seq, payload = _read_packet(sock)
            kind = payload[:1]
            if kind == bytes([OK]):
                return True, f"{hello.server_version}: OK ({plugin})"
            if kind == bytes([ERR]):
                return (
                    False,
                    f"{hello.server_version}: {payload[9:].decode('utf-8', 'replace')[:120]}",
                )
            if kind == bytes([SWITCH]):
                end = payload.find(b"\0", 1)
                plugin = payload[1:end].decode("ascii", "replace")
                salt = payload[end + 1 :].rstrip(b"\0")
                auth = scramble(plugin, password, salt)
                if auth is None:
                    return False, f"{hello.server_version}: asks for {plugin}"
                _send(sock, seq + 1, auth)
            elif kind == bytes([MORE]) and payload[1:2] != bytes([FAST_AUTH_OK]):
                return False, f"{hello.server_version}: full authentication required"
        return False, f"{hello.server_version}: no answer"

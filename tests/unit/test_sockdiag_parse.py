"""Pure tests of the sock_diag parser on recorded kernel dumps and on hostile input.

Fixtures under tests/fixtures/sockdiag/ were recorded by record_fixtures.py there (kernel
6.18, sockets with fixed ports and known byte counts in a private namespace).
"""

from __future__ import annotations

import contextlib
import errno
import socket
import struct
from pathlib import Path

import pytest

from hostmedic.collectors import netlink as nl
from hostmedic.collectors import sockdiag
from hostmedic.collectors.sockdiag import SocketRecord, parse_diag_messages
from hostmedic.errors import ParseError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sockdiag"
TCP, UDP = socket.IPPROTO_TCP, socket.IPPROTO_UDP
ESTABLISHED, CLOSE, LISTEN = 1, 7, 10


def load(name: str) -> bytes:
    return (FIXTURES / f"{name}.bin").read_bytes()


def by_ports(records: list[SocketRecord]) -> dict[tuple[int, int], SocketRecord]:
    return {(r.local_port, r.remote_port): r for r in records}


# --- synthetic message builders -------------------------------------------------------------


def attr(atype: int, value: bytes, length: int | None = None) -> bytes:
    n = 4 + len(value) if length is None else length
    return struct.pack("=HH", n, atype) + value + b"\0" * (-(4 + len(value)) % 4)


def diag_msg(family: int = socket.AF_INET, state: int = ESTABLISHED, attrs: bytes = b"") -> bytes:
    src = socket.inet_aton("10.1.2.3") + b"\0" * 12 if family == 2 else b"\0" * 15 + b"\1"
    body = struct.pack("=BBBB", family, state, 0, 0) + struct.pack(">HH", 443, 51000)
    body += (
        src + src + struct.pack("=III", 3, 0x1234, 0x1) + struct.pack("=IIIII", 0, 0, 0, 1000, 77)
    )
    return body + attrs


def nlmsg(mtype: int, payload: bytes, seq: int = 1, length: int | None = None) -> bytes:
    n = 16 + len(payload) if length is None else length
    return struct.pack("=IHHII", n, mtype, 2, seq, 0) + payload + b"\0" * (-len(payload) % 4)


DONE = nlmsg(nl.NLMSG_DONE, struct.pack("=i", 0))


def tcp_info(length: int, acked: int = 5, rcvd: int = 6, options: int = 1) -> bytes:
    buf = bytearray(length)
    if length > 5:
        buf[5] = options
    for off, fmt, val in ((120, "=Q", acked), (128, "=Q", rcvd), (136, "=I", 7), (200, "=Q", 9)):
        if length >= off + struct.calcsize(fmt):
            struct.pack_into(fmt, buf, off, val)
    return bytes(buf)


# --- recorded dumps -------------------------------------------------------------------------


def test_tcp4_dump_known_sockets() -> None:
    records, done = parse_diag_messages(load("tcp4"), protocol=TCP)
    assert done
    socks = by_ports(records)
    assert set(socks) == {(40000, 0), (40000, 40001), (40001, 40000), (40021, 40020)}
    listener = socks[(40000, 0)]
    assert (listener.state, listener.local_ip, listener.remote_ip) == (
        LISTEN,
        "127.0.0.1",
        "0.0.0.0",
    )
    assert listener.bytes_sent == 0 and listener.has_timestamps is False
    client, server = socks[(40001, 40000)], socks[(40000, 40001)]
    # client sent 1000 and received 2500; bytes_acked also counts the client's SYN
    assert (client.bytes_sent, client.bytes_acked, client.bytes_received) == (1000, 1001, 2500)
    assert (server.bytes_sent, server.bytes_acked, server.bytes_received) == (2500, 2500, 1000)
    assert client.data_segs_out == 1 and server.data_segs_in == 1
    assert client.bytes_retrans == 0 and client.has_timestamps is True
    for r in records:
        assert (r.family, r.protocol, r.uid, r.ifindex) == (socket.AF_INET, TCP, 0, 0)
        assert r.inode > 0 and r.cgroup_id is not None and r.segs_out is not None
    assert len({r.cookie for r in records}) == len(records)


def test_tcp6_dump_normalizes_ipv4_mapped() -> None:
    records, done = parse_diag_messages(load("tcp6"), protocol=TCP)
    assert done
    socks = by_ports(records)
    assert socks[(40010, 0)].local_ip == "::1" and socks[(40010, 0)].remote_ip == "::"
    assert socks[(40020, 0)].local_ip == "::"
    mapped = socks[(40020, 40021)]  # dual-stack accept of an IPv4 client
    assert (mapped.family, mapped.local_ip, mapped.remote_ip) == (
        socket.AF_INET6,
        "127.0.0.1",
        "127.0.0.1",
    )
    client = socks[(40011, 40010)]
    assert (client.bytes_sent, client.bytes_acked, client.bytes_received) == (3000, 3001, 0)
    assert socks[(40010, 40011)].bytes_received == 3000


@pytest.mark.parametrize(
    ("name", "host", "anyaddr"), [("udp4", "127.0.0.1", "0.0.0.0"), ("udp6", "::1", "::")]
)
def test_udp_dump_states_and_no_tcp_counters(name: str, host: str, anyaddr: str) -> None:
    records, done = parse_diag_messages(load(name), protocol=UDP)
    assert done and len(records) == 2
    base = 40030 if name == "udp4" else 40040
    socks = by_ports(records)
    unconnected, connected = socks[(base, 0)], socks[(base + 1, base)]
    assert (unconnected.state, unconnected.remote_ip) == (CLOSE, anyaddr)
    assert (connected.state, connected.local_ip, connected.remote_ip) == (ESTABLISHED, host, host)
    for r in records:
        assert r.protocol == UDP and r.inode > 0
        assert r.bytes_sent is r.bytes_acked is r.segs_in is r.has_timestamps is None


def test_destroy_events_carry_cookie_and_final_counters_but_no_inode() -> None:
    live = by_ports(parse_diag_messages(load("tcp4"), protocol=TCP)[0])
    events, done = parse_diag_messages(load("destroy"))
    assert not done  # multicast events have no NLMSG_DONE
    ev = by_ports(events)
    client, server = ev[(40001, 40000)], ev[(40000, 40001)]
    assert client.cookie == live[(40001, 40000)].cookie
    assert server.cookie == live[(40000, 40001)].cookie
    # final counters include the FINs: client acked SYN+1000+FIN, server received 1000+FIN
    assert (client.bytes_sent, client.bytes_acked, client.bytes_received) == (1000, 1002, 2500)
    assert (server.bytes_sent, server.bytes_acked, server.bytes_received) == (2500, 2501, 1001)
    assert ev[(40000, 0)].cookie == live[(40000, 0)].cookie
    for r in events:
        assert (r.inode, r.uid, r.cgroup_id) == (0, 0, None)
    tcp = [r for r in events if r.protocol == TCP]
    assert {r.state for r in tcp} == {CLOSE}
    udp = [r for r in events if r.protocol == UDP]  # protocol comes from INET_DIAG_PROTOCOL
    assert {(r.local_port, r.state) for r in udp} == {(40030, CLOSE), (40031, ESTABLISHED)}
    assert all(r.bytes_sent is None for r in udp)


def test_fast_path_matches_full_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    data = load("tcp4") + load("tcp6")
    sockdiag._LAYOUTS.clear()
    learned, _ = parse_diag_messages(data)
    assert any(layout is not None for layout in sockdiag._LAYOUTS.values())
    fast, _ = parse_diag_messages(data)
    monkeypatch.setattr(sockdiag, "_learn_layout", lambda *a: None)
    sockdiag._LAYOUTS.clear()
    slow, _ = parse_diag_messages(data)
    assert fast == learned == slow


def test_changed_only_fingerprints_agree_between_the_fast_and_the_validating_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The learned layout reads only the cookie and the counters of an unchanged socket: it
    must record the same fingerprints, and skip the same sockets, as the full parse."""
    data = load("tcp4") + load("tcp6")

    def changed_only(previous: dict[int, sockdiag.Fingerprint]) -> tuple[list, dict]:
        current: dict[int, sockdiag.Fingerprint] = {}
        records: list = []
        sockdiag._parse_into(data, TCP, None, records, (previous, current))
        return records, current

    sockdiag._LAYOUTS.clear()
    changed_only({})  # learns the layouts
    fast_first, fast_fp = changed_only({})
    fast_again, _ = changed_only(fast_fp)
    moved = {c: (fp[0] + 1, *fp[1:]) for c, fp in fast_fp.items()}  # bytes_acked moved
    assert len(changed_only(moved)[0]) == len(fast_first)
    monkeypatch.setattr(sockdiag, "_learn_layout", lambda *a: None)
    sockdiag._LAYOUTS.clear()
    slow_first, slow_fp = changed_only({})
    assert fast_fp == slow_fp and fast_first == slow_first and fast_first
    assert fast_again == [] == changed_only(slow_fp)[0]


def test_messages_after_done_and_other_sequences() -> None:
    records, done = parse_diag_messages(load("udp4") + b"garbage!", protocol=UDP)
    assert done and len(records) == 2
    out: list[SocketRecord] = []
    assert sockdiag._parse_into(nlmsg(20, diag_msg(), seq=5) + DONE, TCP, 1, out)
    assert out == []  # seq 5 is a leftover of another request


def test_datagram_by_datagram_equals_whole() -> None:
    data = load("tcp6")
    whole, _ = parse_diag_messages(data)
    parts: list[SocketRecord] = []
    for mtype, _flags, _seq, payload in nl.split_messages(data):
        if mtype == sockdiag.SOCK_DIAG_BY_FAMILY:
            parts += parse_diag_messages(nlmsg(mtype, bytes(payload)))[0]
    assert parts == whole


# --- synthetic messages -----------------------------------------------------------------------


def test_synthetic_record_fields() -> None:
    info = attr(sockdiag.INET_DIAG_INFO, tcp_info(232))
    cg = attr(sockdiag.INET_DIAG_CGROUP_ID, struct.pack("=Q", 99))
    (r,), done = parse_diag_messages(nlmsg(20, diag_msg(attrs=info + cg)) + DONE)
    assert done
    assert (r.local_ip, r.local_port, r.remote_port, r.ifindex) == ("10.1.2.3", 443, 51000, 3)
    assert (r.cookie, r.uid, r.inode, r.cgroup_id) == (0x1_00001234, 1000, 77, 99)
    assert (r.bytes_acked, r.bytes_received, r.segs_out, r.bytes_sent) == (5, 6, 7, 9)
    assert r.has_timestamps is True


@pytest.mark.parametrize(
    ("length", "expect"),
    [
        (4, (None, None, None, None)),
        (104, (None, None, None, False)),
        (140, (5, None, None, False)),
        (160, (5, 7, None, False)),
        (216, (5, 7, 9, False)),
    ],
)
def test_tcp_info_grows_fields_present_by_length(length: int, expect: tuple) -> None:
    payload = diag_msg(attrs=attr(sockdiag.INET_DIAG_INFO, tcp_info(length, options=0)))
    (r,), _ = parse_diag_messages(nlmsg(20, payload))
    assert (r.bytes_acked, r.segs_out, r.bytes_sent, r.has_timestamps) == expect


def test_protocol_attribute_overrides_and_udp_ignores_tcp_info() -> None:
    attrs = attr(sockdiag.INET_DIAG_PROTOCOL, b"\x11") + attr(
        sockdiag.INET_DIAG_INFO, tcp_info(232)
    )
    (r,), _ = parse_diag_messages(nlmsg(20, diag_msg(socket.AF_INET6, attrs=attrs)))
    assert (r.protocol, r.local_ip, r.bytes_acked) == (UDP, "::1", None)


def test_nlmsg_error_becomes_oserror() -> None:
    with pytest.raises(PermissionError):
        parse_diag_messages(nlmsg(nl.NLMSG_ERROR, struct.pack("=i", -errno.EPERM) + b"\0" * 16))
    with pytest.raises(OSError) as info:
        parse_diag_messages(nlmsg(nl.NLMSG_DONE, struct.pack("=i", -errno.EBUSY)))
    assert info.value.errno == errno.EBUSY
    assert parse_diag_messages(nlmsg(nl.NLMSG_ERROR, struct.pack("=i", 0))) == ([], False)
    with pytest.raises(OSError):
        parse_diag_messages(nlmsg(nl.NLMSG_OVERRUN, b""))


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x10\x00\x00", id="truncated-header"),
        pytest.param(DONE[:15], id="header-one-byte-short"),
        pytest.param(nlmsg(20, diag_msg(), length=4000), id="nlmsg_len-beyond-buffer"),
        pytest.param(nlmsg(20, diag_msg(), length=0), id="zero-length"),
        pytest.param(nlmsg(20, diag_msg(), length=8), id="length-below-header"),
        pytest.param(nlmsg(20, diag_msg()[:40]), id="short-inet_diag_msg"),
        pytest.param(nlmsg(20, diag_msg(attrs=attr(2, b"", length=0))), id="zero-attr-length"),
        pytest.param(nlmsg(20, diag_msg(attrs=attr(2, b"", length=2))), id="attr-length-2"),
        pytest.param(nlmsg(20, diag_msg(attrs=attr(2, b"abcd", length=300))), id="attr-too-long"),
        pytest.param(nlmsg(20, diag_msg(attrs=b"\x08\x00")), id="truncated-attr-header"),
        pytest.param(nlmsg(20, diag_msg(attrs=attr(21, b"\1\2\3\4"))), id="cgroup-id-4-bytes"),
        pytest.param(nlmsg(20, diag_msg(attrs=attr(10, b""))), id="empty-protocol-attr"),
        pytest.param(nlmsg(20, diag_msg(family=7)), id="unknown-family"),
        pytest.param(nlmsg(99, b""), id="unknown-message-type"),
        pytest.param(nlmsg(nl.NLMSG_ERROR, b"\xff"), id="short-error"),
        pytest.param(nlmsg(nl.NLMSG_ERROR, struct.pack("=i", -(2**31))), id="errno-int-min"),
        pytest.param(nlmsg(nl.NLMSG_ERROR, struct.pack("=i", 5)), id="positive-errno"),
    ],
)
def test_malformed_input_raises_parse_error(data: bytes) -> None:
    with pytest.raises(ParseError):
        parse_diag_messages(data)


def test_every_truncation_of_a_real_dump_is_typed() -> None:
    data = load("tcp6")
    for cut in range(len(data)):
        with contextlib.suppress(ParseError):
            parse_diag_messages(data[:cut])


def test_every_single_byte_corruption_of_a_real_dump_is_typed() -> None:
    data = bytearray(load("tcp4"))
    for i in range(len(data)):
        mutated = bytearray(data)
        mutated[i] ^= 0xA5
        with contextlib.suppress(ParseError, OSError):
            parse_diag_messages(bytes(mutated))


def test_empty_buffer() -> None:
    assert parse_diag_messages(b"") == ([], False)
    assert parse_diag_messages(memoryview(b"")) == ([], False)


# --- netlink helpers --------------------------------------------------------------------------


def test_split_messages_and_attributes_roundtrip() -> None:
    msg = nl.pack_message(20, nl.NLM_F_REQUEST, 7, attr(1, b"abc") + attr(2, b"defgh"))
    ((mtype, flags, seq, payload),) = list(nl.split_messages(msg))
    assert (mtype, flags, seq) == (20, nl.NLM_F_REQUEST, 7)
    assert [(t, bytes(v)) for t, v in nl.split_attributes(payload, 0)] == [
        (1, b"abc"),
        (2, b"defgh"),
    ]
    with pytest.raises(ParseError):
        list(nl.split_messages(msg[:-1]))
    with pytest.raises(ParseError):
        list(nl.split_attributes(memoryview(b"\x00\x00\x01\x00"), 0))


def test_build_request_layout() -> None:
    req = sockdiag.build_request(TCP, socket.AF_INET6, 1 << LISTEN)
    assert len(req) == 56
    assert req[:4] == bytes([socket.AF_INET6, TCP, 1 << (sockdiag.INET_DIAG_INFO - 1), 0])
    assert struct.unpack_from("=I", req, 4) == (1 << LISTEN,)
    assert req[8:] == b"\0" * 48


# --- property-based ---------------------------------------------------------------------------

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is in the [test] extra

    def test_hypothesis_missing() -> None:
        pytest.skip("hypothesis is not installed")

else:
    FIXTURE_BLOB = load("tcp4")

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=2048))
    def test_random_bytes_only_typed_errors(data: bytes) -> None:
        with contextlib.suppress(ParseError, OSError):
            parse_diag_messages(data)

    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(st.tuples(st.integers(0, len(FIXTURE_BLOB) - 1), st.integers(0, 255)), max_size=8)
    )
    def test_mutated_fixture_only_typed_errors(edits: list[tuple[int, int]]) -> None:
        data = bytearray(FIXTURE_BLOB)
        for pos, value in edits:
            data[pos] = value
        with contextlib.suppress(ParseError, OSError):
            parse_diag_messages(bytes(data))

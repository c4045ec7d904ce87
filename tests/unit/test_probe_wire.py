"""Wire formats of the probes on recorded bytes (tests/fixtures/probe/wire.json, recorded by
record_fixtures.py in the lab): ICMP replies and errors, IP_RECVERR control messages and
DNS responses; hostile input is a ParseError, never another exception."""

import contextlib
import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hostmedic.errors import ParseError
from hostmedic.probes import dns_wire, icmp_wire

WIRE = json.loads((Path(__file__).parents[1] / "fixtures" / "probe" / "wire.json").read_text())


def raw(name: str) -> tuple[bytes, str]:
    data, sender = WIRE[name]
    return bytes.fromhex(data), sender


def test_echo_reply_v4_with_ip_header():
    reply = icmp_wire.parse_ipv4_packet(raw("icmp4_echo_reply")[0])
    assert (reply.kind, reply.sender, reply.ident, reply.seq) == (
        "echo_reply",
        "203.0.113.10",
        0xBEEF,
        7,
    )


def test_time_exceeded_quotes_our_echo():
    reply = icmp_wire.parse_ipv4_packet(raw("icmp4_time_exceeded")[0])
    assert (reply.kind, reply.sender, reply.ident, reply.seq) == (
        "ttl_exceeded",
        "198.51.100.1",
        0xBEEF,
        7,
    )
    assert reply.quoted_destination == "203.0.113.10"


def test_admin_prohibited_names_its_reason():
    reply = icmp_wire.parse_ipv4_packet(raw("icmp4_admin_prohibited")[0])
    assert (reply.kind, reply.code, reply.reason, reply.seq) == (
        "unreachable",
        13,
        "admin_prohibited",
        7,
    )


def test_icmpv6_echo_reply_and_time_exceeded():
    data, sender = raw("icmp6_echo_reply")
    reply = icmp_wire.parse_icmp(data, sender, v6=True)
    assert (reply.kind, reply.ident, reply.seq) == ("echo_reply", 0xBEEF, 7)
    data, sender = raw("icmp6_time_exceeded")
    reply = icmp_wire.parse_icmp(data, sender, v6=True)
    assert (reply.kind, reply.sender, reply.seq) == ("ttl_exceeded", "2001:db8:51::1", 7)
    assert reply.quoted_destination == "2001:db8:113::10"


def test_recverr_of_a_ping_socket_and_of_a_tcp_socket():
    data, cmsg = WIRE["errqueue_ping_ttl"]
    reply = icmp_wire.parse_extended_error(bytes.fromhex(cmsg))
    assert (reply.kind, reply.sender) == ("ttl_exceeded", "198.51.100.1")
    assert struct.unpack("!H", bytes.fromhex(data)[6:8])[0] == 9  # our echo's sequence
    reply = icmp_wire.parse_extended_error(bytes.fromhex(WIRE["errqueue_tcp_ttl"]))
    assert (reply.kind, reply.sender, reply.icmp_type) == ("ttl_exceeded", "198.51.100.1", 11)


def test_echo_request_checksum_verifies():
    packet = icmp_wire.build_echo(0x1234, 42, b"abc")
    assert icmp_wire.checksum(packet) == 0
    assert icmp_wire.build_echo(1, 2, b"x", v6=True)[0] == 128


def test_a_tcp_quote_gives_the_ports():
    ip = bytes.fromhex("4500003c0000400001060000c6336402cb00710a")
    tcp = struct.pack("!HHI", 40000, 80, 1)
    message = bytes([11, 0, 0, 0, 0, 0, 0, 0]) + ip + tcp
    reply = icmp_wire.parse_icmp(message, "198.51.100.1")
    assert reply.quoted_ports == (40000, 80) and reply.seq is None


@pytest.mark.parametrize(
    "data", [b"", b"\x45", bytes(19), b"\x60" + bytes(40), b"\x45" + bytes(30)]
)
def test_garbage_icmp_is_a_parse_error(data):
    with pytest.raises(ParseError):
        icmp_wire.parse_ipv4_packet(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_hostile_icmp_never_crashes(data):
    for parse in (
        icmp_wire.parse_ipv4_packet,
        icmp_wire.parse_extended_error,
        lambda d: icmp_wire.parse_icmp(d, "198.51.100.1", v6=True),
    ):
        with contextlib.suppress(ParseError):
            parse(data)


def test_dns_answers_recorded_from_dnsmasq():
    a = dns_wire.parse_response(bytes.fromhex(WIRE["dns_a"]), "A")
    assert (a.ident, a.rcode, a.addresses, a.question) == (
        0x1234,
        "NOERROR",
        ("203.0.113.10",),
        "www.lab.test",
    )
    empty = dns_wire.parse_response(bytes.fromhex(WIRE["dns_aaaa_empty"]), "AAAA")
    assert (empty.rcode, empty.addresses) == ("NOERROR", ())
    nx = dns_wire.parse_response(bytes.fromhex(WIRE["dns_nxdomain"]), "A")
    assert (nx.rcode, nx.addresses) == ("NXDOMAIN", ())


def test_dns_query_round_trips_the_name():
    query = dns_wire.build_query(7, "www.lab.test", "AAAA")
    assert dns_wire.read_name(query, 12) == ("www.lab.test", len(query) - 4)
    assert query[-4:] == b"\x00\x1c\x00\x01"


def test_dns_cname_chain_and_compression():
    header = struct.pack("!HHHHHH", 1, 0x8180, 1, 2, 0, 0)
    question = dns_wire.encode_name("a.lab.test") + struct.pack("!HH", 1, 1)
    cname = b"\xc0\x0c" + struct.pack("!HHIH", 5, 1, 60, 4) + b"\x01b\xc0\x0e"
    a = b"\xc0\x28" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([203, 0, 113, 5])
    response = dns_wire.parse_response(header + question + cname + a, "A")
    assert response.cnames == ("b.lab.test",) and response.addresses == ("203.0.113.5",)


@pytest.mark.parametrize(
    "message",
    [
        b"",
        struct.pack("!HHHHHH", 1, 0x0100, 0, 0, 0, 0),  # a query, not a response
        struct.pack("!HHHHHH", 1, 0x8180, 1, 0, 0, 0) + b"\xc0\x0c",  # pointer to itself
        struct.pack("!HHHHHH", 1, 0x8180, 1, 0, 0, 0) + b"\x3fabc",  # label past the end
        struct.pack("!HHHHHH", 1, 0x8180, 0, 1, 0, 0) + b"\x00" + struct.pack("!HHIH", 1, 1, 0, 9),
        struct.pack("!HHHHHH", 1, 0x8180, 1, 0, 0, 0) + b"\x80",  # reserved label type
    ],
)
def test_hostile_dns_is_a_parse_error(message):
    with pytest.raises(ParseError):
        dns_wire.parse_response(message, "A")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_dns_never_crashes(data):
    with contextlib.suppress(ParseError):
        dns_wire.parse_response(b"\x00\x01\x81\x80" + data, "A")


@pytest.mark.parametrize("name", ["a" * 64 + ".test", ".".join(["abcdefgh"] * 40)])
def test_names_too_long_are_refused(name):
    with pytest.raises(ParseError):
        dns_wire.encode_name(name)

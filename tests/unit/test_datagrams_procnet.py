"""Which socket owns a counted UDP/ICMP packet, and the /proc/net socket tables."""

import pytest

from hostmedic.analysis.accounting import Datagram, UdpBinding, UdpSocketIndex
from hostmedic.analysis.datagrams import KERNEL, CountedDatagram, IcmpSockets, socket_inodes
from hostmedic.collectors.procnet import parse_proc_net_sockets
from hostmedic.errors import ParseError

# recorded from this machine class while `ping 198.18.9.2` ran (echo id 0x1a2b = 6699)
PROC_NET_ICMP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
   12: 010912C6:1A2B 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 424242 2 0000000000000000 0
"""
PROC_NET_RAW6 = """  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
   58: 00000000000000000000000000000000:003A 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 515151 2 0000000000000000 0
"""
UDP6_MAPPED = """  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
    1: 0000000000000000FFFF0000010912C6:1389 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 777 2 0000000000000000 0
"""


def test_parse_ping_socket_table():
    (row,) = parse_proc_net_sockets(PROC_NET_ICMP)
    assert (row.local_ip, row.local_port, row.inode) == ("198.18.9.1", 6699, 424242)


def test_parse_raw6_and_mapped_addresses():
    (raw,) = parse_proc_net_sockets(PROC_NET_RAW6)
    assert (raw.local_ip, raw.local_port, raw.inode) == ("::", 58, 515151)
    (udp,) = parse_proc_net_sockets(UDP6_MAPPED)
    assert (udp.local_ip, udp.local_port) == ("198.18.9.1", 5001)


def test_garbage_socket_table_is_a_parse_error():
    with pytest.raises(ParseError):
        parse_proc_net_sockets("header\n 1: ZZ:1 00:0 07 0 0 0 0 0 0 9\n")


def icmp(outgoing, kind, echo_id=None, proto="icmp"):
    src, dst = ("198.18.9.1", "198.18.9.2") if outgoing else ("198.18.9.2", "198.18.9.1")
    return CountedDatagram(Datagram("v0", outgoing, proto, src, 0, dst, 0, 1, 84), kind, echo_id)


def owners(*counted, pings=None, raws=None):
    icmp = IcmpSockets(pings or {}, raws or {})
    return [i for _, i in socket_inodes(counted, UdpSocketIndex([]), icmp)]


def test_kernel_answers_pings_and_sends_errors():
    assert owners(icmp(False, 8, 7), icmp(True, 0, 7)) == [KERNEL, KERNEL]
    assert owners(icmp(True, 3)) == [KERNEL]
    assert owners(icmp(False, 135, proto="icmpv6"), icmp(True, 143, proto="icmpv6")) == [
        KERNEL,
        KERNEL,
    ]


def test_our_pings_belong_to_the_ping_socket_then_the_lone_raw_socket():
    pings = {"icmp": {6699: 424242}}
    assert owners(icmp(True, 8, 6699), icmp(False, 0, 6699), pings=pings) == [424242, 424242]
    assert owners(icmp(True, 128, 5, proto="icmpv6"), raws={"icmpv6": [515151]}) == [515151]
    assert owners(icmp(True, 8, 5), raws={"icmp": [1, 2]}) == [0]
    # iputils ping holds a raw socket of each family: each family has exactly one
    both = {"icmp": [11], "icmpv6": [12]}
    assert owners(icmp(True, 8, 5), icmp(True, 128, 5, proto="icmpv6"), raws=both) == [11, 12]


def test_udp_goes_to_the_matching_socket():
    udp = UdpSocketIndex([UdpBinding(1, "0.0.0.0", 53, "0.0.0.0", 0, 99)])
    d = CountedDatagram(Datagram("v0", False, "udp", "198.18.9.2", 4000, "198.18.9.1", 53, 2, 120))
    other = CountedDatagram(
        Datagram("v0", False, "udp", "198.18.9.2", 4000, "198.18.9.1", 54, 1, 60)
    )
    assert [i for _, i in socket_inodes([d, other], udp, IcmpSockets({}, {}))] == [99, 0]


def test_a_udp_datagram_that_names_its_socket_is_never_matched_by_address():
    udp = UdpSocketIndex([UdpBinding(1, "0.0.0.0", 53, "0.0.0.0", 0, 99)])
    sent = Datagram("v0", False, "udp", "198.18.9.2", 4000, "198.18.9.1", 53, 2, 120)
    known = CountedDatagram(sent, socket_cookie=7)
    unseen = CountedDatagram(sent, socket_cookie=8)  # a socket that came and went unseen
    paired = socket_inodes([known, unseen], udp, IcmpSockets({}, {}), cookies={7: 1234})
    assert [i for _, i in paired] == [1234, 0]

"""Route table and /proc/net/dev parsing, on text recorded from this machine class."""

import pytest

from hostmedic.analysis.routes import RouteTable, parse_ipv4_routes, parse_ipv6_routes
from hostmedic.collectors.netdev import ip_level, parse_net_dev
from hostmedic.errors import ParseError

ROUTE = """Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
hm-v0\t000012C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
"""
IPV6_ROUTE = (
    "20010db8000000000000000000000000 20 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 00000100 00000001 00000000 00000001 hm-v0\n"
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
    "00000000000000000000000000000000 ffffffff 00000001 00000000 00200200 lo\n"
)
NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:   11396     128    0    0    0     0          0         0    11396     128    0    0    0     0       0          0
  eth0: 9018872    6532    0    0    0     0          0         0   829018    4127    0    0    0     0       0          0
"""


def test_longest_prefix_wins_and_default_route_catches_the_rest():
    table = RouteTable(
        parse_ipv4_routes(ROUTE) + parse_ipv6_routes(IPV6_ROUTE), frozenset({"198.18.0.1"})
    )
    assert table.interface_for("198.18.0.2") == "hm-v0"
    assert table.interface_for("8.8.8.8") == "eth0"
    assert table.interface_for("198.18.0.1") == "lo"
    assert table.interface_for("127.0.0.5") == "lo"
    assert table.interface_for("2001:db8::2") == "hm-v0"
    assert table.interface_for("not an ip") is None


def test_bad_route_line_is_a_parse_error():
    with pytest.raises(ParseError):
        parse_ipv4_routes("header\neth0\tZZZ\t0\t0\t0\t0\t0\t0\n")


def test_net_dev_parse_and_ip_level():
    rows = {r.name: r for r in parse_net_dev(NET_DEV)}
    eth0 = rows["eth0"]
    assert (eth0.rx_bytes, eth0.rx_packets, eth0.tx_bytes, eth0.tx_packets) == (
        9018872,
        6532,
        829018,
        4127,
    )
    ip = ip_level(eth0, 14)
    assert ip.rx_bytes == 9018872 - 14 * 6532 and ip.tx_bytes == 829018 - 14 * 4127


@pytest.mark.parametrize(
    "text", ["a\nb\n eth0: 1 2 3\n", "a\nb\n eth0: x y z 1 2 3 4 5 6 7 8 9 10 11 12 13\n"]
)
def test_net_dev_garbage_is_a_parse_error(text):
    with pytest.raises(ParseError):
        parse_net_dev(text)


def test_socket_owners_rescan_once_and_remember_ownerless_inodes(tmp_path):
    import os

    from hostmedic.collectors.procfs import SocketOwners

    fd = tmp_path / "42" / "fd"
    fd.mkdir(parents=True)
    os.symlink("socket:[1001]", fd / "3")
    os.symlink("/dev/null", fd / "4")
    owners = SocketOwners(str(tmp_path))
    owners.begin_tick()
    assert owners.owners_of([1001, 2002]) == {1001: 42}
    assert owners.scans == 1
    owners.begin_tick()
    assert owners.owners_of([1001, 2002]) == {1001: 42}  # 2002 has no fd anywhere
    assert owners.scans == 1
    os.symlink("socket:[3003]", fd / "5")
    owners.begin_tick()
    assert owners.owners_of([3003]) == {3003: 42}
    assert owners.owners_of([4004]) == {}  # at most one scan per tick
    assert owners.scans == 2


def test_socket_owners_look_in_hinted_and_new_processes_before_a_full_scan(tmp_path):
    import os

    from hostmedic.collectors.procfs import SocketOwners

    def proc(pid, *inodes):
        fd = tmp_path / str(pid) / "fd"
        fd.mkdir(parents=True, exist_ok=True)
        for n, inode in enumerate(inodes, start=len(os.listdir(fd)) + 3):
            os.symlink(f"socket:[{inode}]", fd / str(n))

    proc(10, 100)
    proc(20, 200)
    owners = SocketOwners(str(tmp_path))
    owners.begin_tick()
    assert owners.owners_of([100]) == {100: 10}
    assert owners.scans == 1
    proc(20, 201)  # an existing process opens a socket: the hint finds it
    owners.begin_tick()
    assert owners.owners_of([201], hints=[20]) == {201: 20}
    proc(30, 300)  # a new process: found by the pid diff, no hint needed
    owners.begin_tick()
    assert owners.owners_of([300]) == {300: 30}
    assert owners.scans == 1
    proc(10, 101)  # no hint, not new: only a full scan can find it
    owners.begin_tick()
    assert owners.owners_of([101]) == {101: 10}
    assert owners.scans == 2

"""The two rtnetlink questions the container view asks: which links does a namespace have
(and where does each one's other end live), and what id does one namespace give another.

* ``RTM_GETLINK`` dump → :class:`Link`: index, name, kind (``veth``, ``bridge``,
  ``macvlan``…), the bridge it is enslaved to, and for a link whose other end is in another
  namespace (a veth peer, the lower device of a macvlan) that end's ifindex and the
  *nsid* of its namespace, as this namespace numbers it (``IFLA_LINK_NETNSID``);
* ``RTM_GETNSID`` with a namespace fd → that nsid (the kernel assigns one when a veth is
  created across two namespaces, so an attached namespace always has one).

``parse_links`` and ``parse_nsid`` are pure, tested on recorded dumps; ``read_links`` and
``read_nsid`` do the I/O in the caller's current namespace (use ``run_in_netns`` for others).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hostmedic.collectors import netlink as nl
from hostmedic.errors import ParseError

NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_GETLINK = 16, 18
RTM_NEWNSID, RTM_GETNSID = 88, 90
IFLA_IFNAME, IFLA_LINK, IFLA_MASTER, IFLA_LINKINFO, IFLA_LINK_NETNSID = 3, 5, 10, 18, 37
IFLA_INFO_KIND = 1
NETNSA_NSID, NETNSA_FD = 1, 3
NSID_NOT_ASSIGNED = -1
_IFINFO = struct.Struct("=BxHiII")  # family, type, index, flags, change
_U32, _S32 = struct.Struct("=I"), struct.Struct("=i")
_MAX_MESSAGES = 1 << 20


@dataclass(frozen=True, slots=True)
class Link:
    """One network interface of a namespace, as rtnetlink describes it."""

    index: int
    name: str
    kind: str | None  # "veth", "bridge", "macvlan"... None for physical devices
    master: int | None  # ifindex of the bridge (or bond) it is enslaved to
    peer_index: int | None  # IFLA_LINK: the other end / lower device (its own namespace's index)
    peer_nsid: int | None  # IFLA_LINK_NETNSID: None when the other end is in this namespace


def _string(value: memoryview) -> str:
    return bytes(value).split(b"\0", 1)[0].decode("utf-8", "replace")


def _u32(value: memoryview, what: str) -> int:
    if len(value) < 4:
        raise ParseError(f"{what} attribute of {len(value)} bytes")
    return int(_U32.unpack_from(value)[0])


def _kind(linkinfo: memoryview) -> str | None:
    for atype, value in nl.split_attributes(linkinfo, 0):
        if atype == IFLA_INFO_KIND:
            return _string(value)
    return None


def _link(payload: memoryview) -> Link:
    if len(payload) < _IFINFO.size:
        raise ParseError(f"ifinfomsg of {len(payload)} bytes")
    _family, _type, index, _flags, _change = _IFINFO.unpack_from(payload)
    name, kind, master, peer, nsid = "", None, None, None, None
    for atype, value in nl.split_attributes(payload, _IFINFO.size):
        if atype == IFLA_IFNAME:
            name = _string(value)
        elif atype == IFLA_LINKINFO:
            kind = _kind(value)
        elif atype == IFLA_MASTER:
            master = _u32(value, "IFLA_MASTER")
        elif atype == IFLA_LINK:
            peer = _u32(value, "IFLA_LINK")
        elif atype == IFLA_LINK_NETNSID:
            if len(value) < 4:
                raise ParseError("short IFLA_LINK_NETNSID attribute")
            nsid = int(_S32.unpack_from(value)[0])
    return Link(index, name, kind, master, peer, nsid)


def parse_links(data: bytes | memoryview) -> tuple[list[Link], bool]:
    """Links in one buffer of RTM_GETLINK dump replies; ``done`` at NLMSG_DONE.

    ParseError for malformed framing/attributes, OSError for a kernel NLMSG_ERROR."""
    links = []
    for mtype, _flags, _seq, payload in nl.split_messages(data):
        if mtype == RTM_NEWLINK:
            links.append(_link(payload))
        elif mtype == nl.NLMSG_DONE:
            return links, True
        elif mtype == nl.NLMSG_ERROR:
            nl.raise_for_error(payload)
    return links, False


def parse_nsid(data: bytes | memoryview) -> int:
    """The nsid in an RTM_NEWNSID reply (NSID_NOT_ASSIGNED when there is none)."""
    for mtype, _flags, _seq, payload in nl.split_messages(data):
        if mtype == nl.NLMSG_ERROR:
            nl.raise_for_error(payload)
        elif mtype == RTM_NEWNSID:
            for atype, value in nl.split_attributes(payload, 4):  # after struct rtgenmsg
                if atype == NETNSA_NSID and len(value) >= 4:
                    return int(_S32.unpack_from(value)[0])
    raise ParseError("RTM_GETNSID reply without an nsid")


def read_links() -> list[Link]:
    """Every link of the caller's current network namespace."""
    with nl.NetlinkSocket(NETLINK_ROUTE) as sock:
        sock.request(RTM_GETLINK, nl.NLM_F_REQUEST | nl.NLM_F_DUMP, _IFINFO.pack(0, 0, 0, 0, 0))
        links: list[Link] = []
        for _ in range(_MAX_MESSAGES):
            more, done = parse_links(sock.recv())
            links += more
            if done:
                break
        return links


def read_nsid(netns_fd: int) -> int:
    """The id the caller's namespace gives the namespace open at ``netns_fd``."""
    payload = b"\0" * 4 + struct.pack("=HHI", 8, NETNSA_FD, netns_fd)
    with nl.NetlinkSocket(NETLINK_ROUTE) as sock:
        sock.request(RTM_GETNSID, nl.NLM_F_REQUEST, payload)
        return parse_nsid(sock.recv())

"""Which of the host's interfaces each flow crossed, for the unattributed bucket. Pure.

The host's interface counters (its namespace's /proc/net/dev) are explained by:

* the host's own flows: on the interface their route leaves by; a flow through a bridge to
  a container's address also crosses the bridge port (the host end of the container's veth);
* a container's flows (another namespace, attached to the host by a veth): on the host end
  of that veth, in the other direction (what the container sends, the host end receives);
  if the host forwards them further, also on the bridge the veth is enslaved to and on the
  interface the host routes the remote address through. Between two containers on one
  bridge nothing else is crossed; a flow to one of the host's own addresses is already
  explained by the host's socket, so it explains nothing more here;
* a container on a macvlan/ipvlan of a host device: that device, in the same direction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from hostmedic.facts.bandwidth import FlowKey, Traffic


@dataclass(frozen=True, slots=True)
class Attachment:
    """How a container interface reaches the host: the host-side interface, its kind
    (``veth`` = the host end of the pair; anything else = the host device it sits on),
    and the bridge the host end is enslaved to."""

    host_interface: str
    kind: str
    bridge: str | None = None


@dataclass(frozen=True, slots=True)
class HostView:
    """What the host's side looks like to the crossings computation."""

    netns_inode: int
    addresses: frozenset[str]  # the host's own addresses
    ports: Mapping[str, str]  # a container's address -> the host interface it sits behind
    attachments: Mapping[str, Attachment]  # host interface -> how a container sits on it
    route: Callable[[str], str | None]  # the host's route lookup: address -> interface


def reversed_traffic(t: Traffic) -> Traffic:
    """The same packets seen from the other end of a link."""
    return Traffic(t.rx_bytes, t.tx_bytes, t.rx_packets, t.tx_packets)


def crossings(flows: Iterable[tuple[FlowKey, Traffic]], host: HostView) -> dict[str, Traffic]:
    """Traffic each host interface carried for these flows, from the host's side.

    A container's flow names the host interface it is attached through in
    ``key.interface`` (None: not attached, crosses nothing of the host's)."""
    out: dict[str, Traffic] = defaultdict(Traffic)
    for key, t in flows:
        if key.interface is None:
            continue
        if key.netns_inode == host.netns_inode:
            out[key.interface] += t
            port = host.ports.get(key.remote_ip)
            bridged = port is not None and host.attachments[port].bridge == key.interface
            if bridged and port is not None:
                out[port] += t
            continue
        a = host.attachments.get(key.interface)
        if a is None or key.remote_ip in host.addresses:
            continue
        if a.kind != "veth":
            out[a.host_interface] += t
            continue
        back = reversed_traffic(t)
        out[a.host_interface] += back
        other = host.ports.get(key.remote_ip)
        if other is not None:  # another container: the other one's own flow counts its port
            if a.bridge is not None and host.attachments[other].bridge != a.bridge:
                out[a.bridge] += back  # routed by the host out of this bridge
            continue
        if a.bridge is not None:
            out[a.bridge] += back
        uplink = host.route(key.remote_ip)
        if uplink not in (None, "lo", a.host_interface, a.bridge):
            out[uplink] += t
    return dict(out)

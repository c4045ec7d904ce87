"""Network namespaces of the machine, which of them are containers of this host, and what
each one looks like (routes, interfaces, addresses, links).

* :func:`scan_namespaces` lists every namespace a process holds (``/proc/*/ns/net``) and
  every named one (``/run/netns``, what ``ip netns`` creates), with the pids inside.
* :func:`container_of` (pure) names the container from the cgroup path of its processes:
  Docker, containerd/Kubernetes, CRI-O, Podman, systemd-nspawn, LXC; else the namespace's
  ``ip netns`` name, else ``netns:<inode>``.
* :func:`read_view` reads one namespace's routes, interfaces and addresses from the calling
  thread's namespace (``/proc/thread-self/net``), and the id that namespace gives the
  monitor's own (to recognise links whose other end is the host's).

A namespace is a *container of this host* when one of its links has its other end in the
monitor's namespace: a veth whose host end is there (Docker, Podman, Kubernetes CNI,
systemd-nspawn, LXC) or a macvlan/ipvlan on a host device.
"""

from __future__ import annotations

import itertools
import os
import re
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

from hostmedic.analysis.routes import RouteTable, parse_ipv4_routes, parse_ipv6_routes
from hostmedic.collectors.rtnetlink import Link, read_links, read_nsid
from hostmedic.errors import ParseError

_NS_LINK = re.compile(r"^net:\[(\d+)\]$")
_HEX_ID = r"([0-9a-f]{12})[0-9a-f]{52}"
# (kind, pattern on one cgroup path segment); the first group is the name shown.
_CONTAINER_PATTERNS = (
    ("docker", re.compile(rf"^docker-{_HEX_ID}\.scope$")),
    ("containerd", re.compile(rf"^cri-containerd-{_HEX_ID}\.scope$")),
    ("cri-o", re.compile(rf"^crio-{_HEX_ID}\.scope$")),
    ("podman", re.compile(rf"^libpod-{_HEX_ID}\.scope$")),
    ("nspawn", re.compile(r"^systemd-nspawn@(.+)\.service$")),
    ("nspawn", re.compile(r"^machine-(.+)\.scope$")),
    ("lxc", re.compile(r"^lxc\.payload\.(.+)$")),
)
# cgroupfs (non-systemd) layouts: /docker/<id>, /lxc/<name>, /kubepods/.../<id>
_PARENT_KINDS = {"docker": "docker", "lxc": "lxc"}
_FAMILIES = (socket.AF_INET, socket.AF_INET6)
SO_NETNS_COOKIE = 71


@dataclass(frozen=True, slots=True)
class NetnsRef:
    """One network namespace: its inode, a path to enter it, its name, its processes."""

    inode: int
    path: str
    name: str | None = None
    pids: tuple[int, ...] = ()


def parse_ns_link(target: str) -> int:
    """The inode in a ``/proc/PID/ns/net`` link target (``net:[4026531840]``)."""
    m = _NS_LINK.match(target)
    if m is None:
        raise ParseError(f"not a network namespace link: {target!r}")
    return int(m.group(1))


def scan_namespaces(proc_root: str = "/proc", run_netns: str = "/run/netns") -> list[NetnsRef]:
    """Every network namespace held by a process or named under ``run_netns``."""
    pids: dict[int, list[int]] = {}
    try:
        entries = os.listdir(proc_root)
    except OSError:
        entries = []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            inode = parse_ns_link(os.readlink(f"{proc_root}/{entry}/ns/net"))
        except (OSError, ParseError):
            continue  # exited, a kernel thread, or not ours to read
        pids.setdefault(inode, []).append(int(entry))
    names: dict[int, str] = {}
    try:
        for name in sorted(os.listdir(run_netns)):
            try:
                names.setdefault(os.stat(f"{run_netns}/{name}").st_ino, name)
            except OSError:
                continue
    except OSError:
        pass  # no named namespaces on this machine
    refs = []
    for inode in sorted(set(pids) | set(names)):
        held = tuple(sorted(pids.get(inode, ())))
        named = names.get(inode)
        path = f"{run_netns}/{named}" if named else f"{proc_root}/{held[0]}/ns/net"
        refs.append(NetnsRef(inode, path, named, held))
    return refs


def _cgroup_path(cgroup_text: str) -> str | None:
    """The unified (v2) path of /proc/PID/cgroup, else the systemd (v1) one, else any."""
    paths: dict[str, str] = {}
    for line in cgroup_text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            paths.setdefault(parts[1], parts[2])
    for controllers in ("", "name=systemd"):
        if paths.get(controllers, "/") != "/":
            return paths[controllers]
    return next((p for p in paths.values() if p != "/"), None)


def container_of(
    cgroup_text: str | None, netns_name: str | None, inode: int
) -> tuple[str, str, str | None]:
    """``(kind, name, cgroup path)`` of the container a namespace belongs to (pure).

    ``cgroup_text`` is /proc/PID/cgroup of one of its processes (None when it has none).
    """
    path = _cgroup_path(cgroup_text) if cgroup_text else None
    if path:
        segments = [s for s in path.split("/") if s]
        for seg in reversed(segments):
            for kind, pattern in _CONTAINER_PATTERNS:
                m = pattern.match(seg)
                if m:
                    return kind, m.group(1).replace("\\x2d", "-"), path
        for parent, seg in itertools.pairwise(segments):
            if parent in _PARENT_KINDS:
                kind = _PARENT_KINDS[parent]
                return kind, seg[:12] if kind != "lxc" else seg, path
        if segments and segments[0].startswith("kubepods"):
            return "kubernetes", segments[-1][:12], path
    if netns_name:
        return "netns", netns_name, path
    return "netns", str(inode), path


@dataclass(frozen=True, slots=True)
class NetnsView:
    """What one namespace looks like now (read every few seconds, not every tick)."""

    routes: RouteTable
    interfaces: dict[int, str]  # ifindex -> name
    links: tuple[Link, ...]
    addresses_by_interface: dict[str, frozenset[str]] = field(default_factory=dict)
    own_nsid: int | None = None  # the id this namespace gives the monitor's namespace
    netns_cookie: int = 0  # what the in-kernel counter reports for this namespace


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return ""


def read_view(
    own_netns_fd: int | None = None, wanted: Callable[[NetnsView], bool] | None = None
) -> NetnsView:
    """The calling thread's namespace: links, the nsid it gives the monitor's namespace
    (given an fd of it), then, unless ``wanted`` says the namespace is of no interest,
    its routes, interfaces and addresses."""
    links = tuple(read_links())
    nsid = None
    if own_netns_fd is not None:
        try:
            nsid = read_nsid(own_netns_fd)
        except OSError:
            nsid = None  # the kernel gives no id: nothing here links to the host
    view = NetnsView(RouteTable([]), {link.index: link.name for link in links}, links, {}, nsid)
    if wanted is not None and not wanted(view):
        return view  # not a container of ours: no need to read more
    by_interface = {
        name: frozenset(a.address.split("%")[0] for a in addrs if a.family in _FAMILIES)
        for name, addrs in psutil.net_if_addrs().items()
    }
    local = frozenset().union(*by_interface.values()) if by_interface else frozenset()
    routes = parse_ipv4_routes(_read("/proc/thread-self/net/route"))
    routes += parse_ipv6_routes(_read("/proc/thread-self/net/ipv6_route"))
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
        try:
            raw = probe.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8)
            cookie = int.from_bytes(raw, sys.byteorder)
        except OSError:
            cookie = 0  # before Linux 5.14: no in-kernel counting anyway
    return NetnsView(RouteTable(routes, local), view.interfaces, links, by_interface, nsid, cookie)

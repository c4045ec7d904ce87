"""Which network namespaces are containers of this host, and how they are attached to it.

Every few seconds the monitor re-reads its own namespace (routes, interfaces, addresses,
links) and looks at every other namespace of the machine (collectors/netns.py): one that
has a link whose other end is in the monitor's namespace (a veth, a macvlan on a host
device) is a container of this host, is monitored, and its traffic explains the host
interface it is attached to. Namespaces attached elsewhere (another lab, a nested
namespace) are not this host's business and are left alone.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

from hostmedic.analysis.crossings import Attachment, HostView
from hostmedic.collectors.netlink import run_in_netns
from hostmedic.collectors.netns import NetnsRef, NetnsView, container_of, read_view, scan_namespaces
from hostmedic.errors import FactUnavailable, ParseError
from hostmedic.facts.bandwidth import ContainerInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Attached:
    """A container namespace: where to enter it, what it is, how it looks, how it's attached."""

    ref: NetnsRef
    info: ContainerInfo
    view: NetnsView
    host_interfaces: dict[str, Attachment]  # its interface name -> the host's side


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def attachments(view: NetnsView, own: NetnsView) -> dict[str, Attachment]:
    """The interfaces of a namespace (``view``) whose other end is in the monitor's (pure)."""
    if view.own_nsid is None or view.own_nsid < 0:
        return {}
    by_index = {link.index: link for link in own.links}
    found = {}
    for link in view.links:
        host = by_index.get(link.peer_index or -1)
        if link.peer_nsid != view.own_nsid or host is None:
            continue
        bridge = by_index.get(host.master or -1)
        kind = "veth" if link.kind == "veth" else (link.kind or "link")
        found[link.name] = Attachment(host.name, kind, bridge.name if bridge else None)
    return found


class ContainerWatch:
    """The monitor's own view and the containers attached to it.

    :meth:`refresh` reads everything now; :meth:`refresh_later` does the same on a helper
    thread (listing and entering dozens of namespaces takes 100 ms or more, which must not
    delay a tick) and :meth:`apply` takes its result at the caller's next convenience.
    """

    def __init__(self, own_inode: int, proc_root: str = "/proc", *, containers: bool = True):
        self.own_inode = own_inode
        self.proc_root = proc_root
        self.enabled = containers
        self.own: NetnsView = read_view()
        self.attached: dict[int, Attached] = {}
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._ready: tuple[NetnsView, dict[int, Attached]] | None = None

    def refresh(self) -> None:
        """Re-read the own namespace and find the containers attached to it now."""
        self.own, self.attached = self._discover()

    def refresh_later(self) -> None:
        """Start a refresh on a helper thread (unless one is running)."""
        if self._worker is not None and self._worker.is_alive():
            return
        self._worker = threading.Thread(
            target=self._background, name="hostmedic-netns", daemon=True
        )
        self._worker.start()

    def _background(self) -> None:
        try:
            found = self._discover()
        except (OSError, ParseError, FactUnavailable) as exc:  # keep the last view
            log.info("re-reading the namespaces failed: %s", exc)
            return
        with self._lock:
            self._ready = found

    def apply(self) -> bool:
        """Take the result of the last :meth:`refresh_later`; False when there is none."""
        with self._lock:
            ready, self._ready = self._ready, None
        if ready is None:
            return False
        self.own, self.attached = ready
        return True

    def _discover(self) -> tuple[NetnsView, dict[int, Attached]]:
        own = read_view()
        found: dict[int, Attached] = {}
        if not self.enabled:
            return own, found

        def attached(view: NetnsView) -> bool:
            return bool(attachments(view, own))

        own_fd = os.open(f"{self.proc_root}/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            for ref in scan_namespaces(self.proc_root):
                if ref.inode == self.own_inode:
                    continue
                try:
                    view = run_in_netns(ref.path, lambda: read_view(own_fd, attached))
                except (FactUnavailable, OSError, ParseError) as exc:
                    log.debug("namespace %s skipped: %s", ref.path, exc)
                    continue  # gone meanwhile, or not ours to enter
                host_side = attachments(view, own)
                if host_side:
                    found[ref.inode] = Attached(ref, self._info(ref, host_side), view, host_side)
        finally:
            os.close(own_fd)
        return own, found

    def _info(self, ref: NetnsRef, host_side: dict[str, Attachment]) -> ContainerInfo:
        cgroup = _read_text(f"{self.proc_root}/{ref.pids[0]}/cgroup") if ref.pids else None
        kind, name, path = container_of(cgroup, ref.name, ref.inode)
        return ContainerInfo(
            netns_inode=ref.inode,
            label=f"{kind}:{name}",
            kind=kind,
            name=name,
            cgroup=path,
            netns_name=ref.name,
            host_interfaces=tuple(sorted(a.host_interface for a in host_side.values())),
        )

    def host_view(self) -> HostView:
        """The host side for the crossings computation (analysis/crossings.py)."""
        ports: dict[str, str] = {}
        by_host: dict[str, Attachment] = {}
        for c in self.attached.values():
            for ifname, a in c.host_interfaces.items():
                by_host[a.host_interface] = a
                for address in c.view.addresses_by_interface.get(ifname, ()):
                    ports[address] = a.host_interface
        return HostView(
            self.own_inode,
            self.own.routes.local_addresses,
            ports,
            by_host,
            self.own.routes.interface_for,
        )

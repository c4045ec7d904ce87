"""Block a remote address with nftables (seed 004: "检查下是否有恶意的 IP 地址连接到服务器，
可以防火墙将其屏蔽掉"), and undo it.

hostmedic keeps its own table, ``inet hostmedic``, with one set per family (``blocked4``,
``blocked6``) and base chains on the input, forward and output hooks that drop traffic
from and to the set's addresses, ahead of other tables (priority -10). Blocking adds an
element; undo deletes it, and the table once both sets are empty. No other table is ever
touched. Refused: loopback, unspecified, multicast and link-local addresses, this
machine's own addresses, its gateways and name servers, and the address of the SSH
session the operator is typing in (from ``SSH_CONNECTION`` of hostmedic's ancestors).
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
from typing import Any

from hostmedic.remedies.model import (
    ActionFailed,
    FixContext,
    NothingToDo,
    Plan,
    Refused,
    require_live,
)
from hostmedic.remedies.tools import run_tool

TABLE = "hostmedic"
SETS = {4: "blocked4", 6: "blocked6"}
_DEFINITION = """\
table inet hostmedic {
  set blocked4 { type ipv4_addr; }
  set blocked6 { type ipv6_addr; }
  chain input { type filter hook input priority -10; policy accept;
    ip saddr @blocked4 drop; ip6 saddr @blocked6 drop; }
  chain forward { type filter hook forward priority -10; policy accept;
    ip saddr @blocked4 drop; ip daddr @blocked4 drop;
    ip6 saddr @blocked6 drop; ip6 daddr @blocked6 drop; }
  chain output { type filter hook output priority -10; policy accept;
    ip daddr @blocked4 drop; ip6 daddr @blocked6 drop; }
}
"""

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _nft(
    *args: str, script: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return run_tool("nft", *args, script=script, timeout_s=30, check=check)


def _elements(name: str) -> set[str] | None:
    """The addresses of one of hostmedic's sets (None when the table does not exist)."""
    done = _nft("-j", "list", "set", "inet", TABLE, name, check=False)
    if done.returncode != 0:
        return None
    try:
        items = json.loads(done.stdout).get("nftables", [])
    except ValueError as exc:
        raise ActionFailed(
            "error.fix.tool_failed", tool="nft -j list set", detail=str(exc)
        ) from exc
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("set"), dict):
            return {str(e) for e in item["set"].get("elem", []) if isinstance(e, str)}
    return set()


def _route_gateways() -> set[str]:
    found: set[str] = set()
    try:
        with open("/proc/net/route", encoding="ascii") as f:
            for line in f.read().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 2 and fields[2] != "00000000":
                    found.add(str(ipaddress.IPv4Address(bytes.fromhex(fields[2])[::-1])))
        with open("/proc/net/ipv6_route", encoding="ascii") as f:
            for line in f.read().splitlines():
                fields = line.split()
                if len(fields) > 4 and fields[4].strip("0"):
                    found.add(str(ipaddress.IPv6Address(bytes.fromhex(fields[4]))))
    except (OSError, ValueError):
        pass  # no routes readable: nothing to protect from that side
    return found


def _nameservers() -> set[str]:
    try:
        with open("/etc/resolv.conf", encoding="utf-8", errors="replace") as f:
            return {
                line.split()[1].split("%")[0]
                for line in f
                if line.startswith("nameserver") and len(line.split()) > 1
            }
    except OSError:
        return set()


def _ssh_clients() -> set[str]:
    """Client addresses of the SSH sessions hostmedic runs in (its own environment and its
    ancestors': sudo drops the variable, the shell above it still has it)."""
    from hostmedic.collectors.procfs import read_ppid

    found: set[str] = set()
    pid = os.getpid()
    for _ in range(64):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                for var in f.read().split(b"\0"):
                    name, _, value = var.partition(b"=")
                    if name in (b"SSH_CONNECTION", b"SSH_CLIENT") and value:
                        found.add(value.split()[0].decode("ascii", "replace"))
        except OSError:
            pass  # an ancestor we may not read: the others still count
        pid = read_ppid(pid) or 0
        if pid <= 1:
            break
    return found


def _own_addresses() -> set[str]:
    import psutil

    return {
        a.address.split("%")[0]
        for addrs in psutil.net_if_addrs().values()
        for a in addrs
        if a.family in (socket.AF_INET, socket.AF_INET6)
    }


def _address(target: str) -> Address:
    try:
        address = ipaddress.ip_address(target.strip())
    except ValueError as exc:
        raise Refused("error.fix.bad_address", target=target) from exc
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _refuse_if_dangerous(address: Address) -> None:
    shown = str(address)
    if address.is_loopback or address.is_unspecified or address.is_multicast:
        raise Refused("error.fix.block_special", address=shown)
    if address.is_link_local:
        raise Refused("error.fix.block_special", address=shown)
    protected = (
        ("error.fix.block_own", _own_addresses()),
        ("error.fix.block_gateway", _route_gateways() | _nameservers()),
        ("error.fix.block_session", _ssh_clients()),
    )
    for key, addresses in protected:
        if shown in {_normal(a) for a in addresses}:
            raise Refused(key, address=shown)


def _normal(text: str) -> str:
    try:
        return str(_address(text))
    except Refused:
        return text


class BlockIp:
    """``hostmedic fix block-ip ADDR``; undone by deleting the set element."""

    name = "block-ip"
    reversible = True

    def plan(self, target: str, ctx: FixContext) -> Plan:
        require_live(ctx, self.name)
        address = _address(target)
        _refuse_if_dangerous(address)
        name = SETS[address.version]
        present = _elements(name)
        if present is not None and str(address) in present:
            raise NothingToDo("ui.fix.nothing.already_blocked", address=str(address), set=name)
        params = {"address": str(address), "set": name, "table": f"inet {TABLE}"}
        steps = [] if present is not None else [("ui.fix.step.create_table", params)]
        steps.append(("ui.fix.step.block_ip", params))
        before = {"address": str(address), "set": name, "table_existed": present is not None}
        notes = [("ui.fix.note.block_cuts_connections", params)]
        return Plan(self.name, str(address), steps, before, notes=notes)

    def apply(self, plan: Plan, ctx: FixContext) -> dict[str, Any]:
        name, address = plan.before["set"], plan.before["address"]
        created = _elements(name) is None
        if created:
            _nft("-f", "-", script=_DEFINITION)
        _nft("add", "element", "inet", TABLE, name, "{ " + address + " }")
        if address not in (_elements(name) or set()):
            raise ActionFailed("error.fix.not_applied", target=address)
        return {"table_created": created}

    def plan_undo(self, before: dict[str, Any], ctx: FixContext) -> Plan:
        require_live(ctx, self.name)
        params = {"address": before["address"], "set": before["set"], "table": f"inet {TABLE}"}
        return Plan(self.name, before["address"], [("ui.fix.step.unblock_ip", params)], before)

    def undo(self, before: dict[str, Any], ctx: FixContext) -> dict[str, Any]:
        name, address = before["set"], before["address"]
        present = _elements(name)
        deleted = present is not None and address in present
        if deleted:
            _nft("delete", "element", "inet", TABLE, name, "{ " + address + " }")
        table_deleted = False
        if present is not None and not any(_elements(s) for s in SETS.values()):
            _nft("delete", "table", "inet", TABLE)
            table_deleted = True
        return {"element_deleted": deleted, "table_deleted": table_deleted}

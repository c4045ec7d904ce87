"""Judge a process that carries traffic: business, suspicious, cloud-agent or system.

Seeds 000–003 step 5: "determine whether the process is normal" — a normal (business)
process means growth or capacity, an abnormal one may be a virus or trojan, a cloud
vendor's component means a ticket to the vendor. Seed 004 adds the trojan paths, and its
bandwidth section the attack shapes. Every verdict carries the evidence that decided it.
Pure: the signatures come from data/process_signatures.toml, the facts from collectors.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from hostmedic.facts.bandwidth import ProcessInfo, ProcessUsage

COMM_LENGTH = 15  # the kernel keeps 15 characters of a process name (TASK_COMM_LEN - 1)
BUSINESS, SUSPICIOUS, CLOUD_AGENT, SYSTEM, UNKNOWN = (
    "business",
    "suspicious",
    "cloud-agent",
    "system",
    "unknown",
)


@dataclass(frozen=True, slots=True)
class Clue:
    """One reason behind a verdict: a message key and what it points at."""

    key: str
    params: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: str
    clues: tuple[Clue, ...]
    vendor: str | None = None


@cache
def signatures() -> dict[str, Any]:
    """The shipped signature data (cloud agents, trojan paths, system names, shapes)."""
    text = resources.files("hostmedic").joinpath("data/process_signatures.toml").read_text("utf-8")
    return tomllib.loads(text)


def _clue(key: str, **params: object) -> Clue:
    return Clue(key, tuple((k, str(v)) for k, v in params.items()))


def _under(path: str, prefixes: list[str]) -> bool:
    return any(path.startswith(p) or path == p.rstrip("/") for p in prefixes)


def path_clues(path: str) -> list[Clue]:
    """Signs in where a program lives: a temporary directory, one of the seed's trojan
    paths, or a hidden name inside a system directory (``/usr/lib/.x/…``)."""
    s = signatures()["suspicious"]
    clues: list[Clue] = []
    if _under(path, s["temporary_dirs"]):
        clues.append(_clue("clue.exe_in_temp", exe=path))
    if _under(path, s["trojan_paths"]):
        clues.append(_clue("clue.trojan_path", exe=path))
    elif _under(path, s["hidden_name_dirs"]) and "/." in path:
        clues.append(_clue("clue.hidden_path", exe=path))
    return clues


def identity_clues(info: ProcessInfo) -> list[Clue]:
    """Signs in the process's identity: where its executable is and what it calls itself."""
    s = signatures()["suspicious"]
    clues: list[Clue] = []
    exe = info.exe or ""
    if exe.startswith(s["memfd_prefix"]):
        clues.append(_clue("clue.exe_memfd", exe=exe))
    elif info.exe_deleted:
        clues.append(_clue("clue.exe_deleted", exe=exe))
    if exe:
        clues += path_clues(exe)
    base = info.name.strip("[]").split("/")[0].split(":")[0]
    looks_kernel = any(info.name.startswith(p) for p in s["kernel_thread_prefixes"]) or (
        info.cmdline[:1] and info.cmdline[0].startswith("[") and info.cmdline[0].endswith("]")
    )
    if exe and looks_kernel:
        clues.append(_clue("clue.imitates_kernel_thread", name=info.name, exe=exe))
    elif exe and base in s["system_names"] and not _under(exe, s["system_dirs"]):
        clues.append(_clue("clue.imitates_system_binary", name=info.name, exe=exe))
    return clues


def _weak_clues(info: ProcessInfo) -> list[Clue]:
    """Signs that only count next to a strong one: many business programs (a Go binary
    in /opt, a jar) are installed without a package."""
    exe = info.exe or ""
    if exe and info.package_checked and info.package is None and not info.exe_deleted:
        return [_clue("clue.no_package", exe=exe)]
    return []


def _shape_clues(usage: ProcessUsage, duration_s: float, sig: dict[str, Any]) -> list[Clue]:
    """Signs in the traffic itself: a flood (many small packets) or a scan (many peers)."""
    shape = sig["shape"]
    packets = usage.traffic.tx_packets
    clues: list[Clue] = []
    if duration_s > 0 and packets:
        pps = packets / duration_s
        mean = usage.traffic.tx_bytes / packets
        if pps >= shape["flood_min_packets_per_s"] and mean <= shape["flood_max_mean_packet_bytes"]:
            clues.append(_clue("clue.flood_shape", pps=round(pps), mean_bytes=round(mean)))
    if len(usage.remote_ips) >= shape["scan_min_remotes"]:
        clues.append(_clue("clue.many_destinations", count=len(usage.remote_ips)))
    return clues


def _cloud_agent(info: ProcessInfo, sig: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    """(agent entry, genuine) when the process claims to be a vendor's agent."""
    argv = " ".join(info.cmdline)
    exe_name = (info.exe or "").rsplit("/", 1)[-1]
    for agent in sig["cloud_agent"]:
        names = agent["names"]
        named = (
            exe_name in names
            or any(info.name == n[:COMM_LENGTH] for n in names)  # comm is truncated
            or any(m in argv for m in agent.get("cmdline_markers", []))
        )
        if named:
            exe = info.exe or ""
            return agent, bool(exe) and _under(exe, agent["exe_prefixes"])
    return None, False


def judge(usage: ProcessUsage, duration_s: float) -> Verdict:
    """The verdict for one process row of the bandwidth facts."""
    sig = signatures()
    info = usage.info
    if info is None:
        return Verdict(UNKNOWN, (_clue("clue.owner_unknown"),))
    if usage.pid == 0:
        return Verdict(SYSTEM, (_clue("clue.kernel"),))
    clues = identity_clues(info)
    agent, genuine = _cloud_agent(info, sig)
    if agent is not None and not genuine:
        clues.append(
            _clue(
                "clue.imitates_cloud_agent",
                name=info.name,
                vendor=agent["vendor"],
                exe=info.exe or "?",
            )
        )
    clues += _shape_clues(usage, duration_s, sig)
    weak = _weak_clues(info)
    if clues:
        return Verdict(SUSPICIOUS, tuple(clues + weak))
    if agent is not None:
        return Verdict(
            CLOUD_AGENT,
            (_clue("clue.cloud_agent", vendor=agent["vendor"], exe=info.exe or "?"),),
            agent["vendor"],
        )
    if info.name in sig["system"]["names"]:
        return Verdict(SYSTEM, (_clue("clue.system_daemon", name=info.name),))
    normal = _clue("clue.normal_process", exe=info.exe or info.name, package=info.package or "-")
    return Verdict(BUSINESS, (normal, *weak))

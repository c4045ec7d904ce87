"""Helpers shared by the FTP rules: which servers a check applies to, the names of their
settings, and evidence lines that name the server, its configuration and the firewall
rule that decided."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

from hostmedic.analysis.netfilter import DROP, PortSpan, Reachability
from hostmedic.facts.ftp import PROFTPD, PURE_FTPD, VSFTPD, FtpFacts, FtpServer
from hostmedic.facts.netfilter import Ruleset
from hostmedic.model import Evidence, Finding, Severity, Status

# The setting that controls each checked value, per server (named in titles and remedies).
SETTINGS = {
    "control": {VSFTPD: "listen_port/listen_address", PURE_FTPD: "Bind", PROFTPD: "Port"},
    "passive_range": {
        VSFTPD: "pasv_min_port/pasv_max_port",
        PURE_FTPD: "PassivePortRange",
        PROFTPD: "PassivePorts",
    },
    "passive_address": {
        VSFTPD: "pasv_address",
        PURE_FTPD: "ForcePassiveIP",
        PROFTPD: "MasqueradeAddress",
    },
    "max_clients": {VSFTPD: "max_clients", PURE_FTPD: "MaxClientsNumber", PROFTPD: "MaxInstances"},
    "max_per_ip": {
        VSFTPD: "max_per_ip",
        PURE_FTPD: "MaxClientsPerIP",
        PROFTPD: "MaxClientsPerHost",
    },
    "active": {VSFTPD: "port_enable/connect_from_port_20/ftp_data_port"},
    "idle": {VSFTPD: "idle_session_timeout", PURE_FTPD: "MaxIdleTime", PROFTPD: "TimeoutIdle"},
}
FAMILY_NAMES = {"ip": "IPv4", "ip6": "IPv6"}


def reachable_servers(ftp: FtpFacts) -> Iterator[FtpServer]:
    """Servers clients from outside are meant to reach: running (or, under ``--root``,
    configured), and not bound to a loopback address only."""
    for server in ftp.servers:
        if ftp.live and not server.running:
            continue
        if _loopback_only(server):
            continue
        yield server


def _loopback_only(server: FtpServer) -> bool:
    addresses = [server.config.listen_address] if server.config.listen_address else []
    addresses += [listener.address for listener in server.listeners]
    if not addresses:
        return False
    try:
        return all(ipaddress.ip_address(a).is_loopback for a in addresses)
    except ValueError:
        return False


def families(server: FtpServer) -> list[str]:
    """Address families the server accepts clients on (from its sockets when known)."""
    if server.listeners:
        found = set()
        for listener in server.listeners:
            if ":" in listener.address:
                found.add("ip6")
                if listener.address == "::":
                    found.add("ip")  # a dual-stack wildcard socket takes IPv4 clients too
            else:
                found.add("ip")
        return sorted(found)
    return [f for f, on in (("ip", server.config.ipv4), ("ip6", server.config.ipv6)) if on]


def server_params(server: FtpServer) -> dict[str, object]:
    """Parameters every FTP finding carries: the server, its configuration, its port."""
    return {
        "server": server.kind,
        "config": server.config_path or "?",
        "port": server.config.control_port,
    }


def setting(topic: str, server: FtpServer) -> str:
    """The name of the setting behind ``topic`` in this server's configuration."""
    return SETTINGS[topic].get(server.kind, "?")


def server_evidence(server: FtpServer, ftp: FtpFacts, *topics: str) -> Evidence:
    """The server as found: pids, listening sockets, and the settings (of ``topics``, keys
    of :data:`SETTINGS`) the check used, with the file and line they came from."""
    settings = [name for t in topics for name in setting(t, server).split("/")]
    listening = ", ".join(
        f"{'[' + x.address + ']' if ':' in x.address else x.address}:{x.port}"
        + (f" pid {x.pid}" if x.pid else "")
        for x in server.listeners
    )
    cited = [s for s in server.config.source if s.split("=", 1)[0] in settings]
    excerpt = (
        f"{server.kind} pids={','.join(map(str, server.pids)) or '-'} "
        f"listening=[{listening or '-'}] "
        + ("; ".join(cited) if cited else f"({'/'.join(settings)}: defaults)")
    )
    return Evidence(server.config_path or server.kind, excerpt, ftp.read_at)


def firewall_evidence(ruleset: Ruleset, what: str, reach: Reachability) -> Evidence:
    """Which rule or policy decided, and the conditional rules behind restricted/unknown."""
    excerpt = f"{what}: {reach.verdict} — {reach.decided_by}"
    if reach.conditions:
        excerpt += " — only when: " + " | ".join(reach.conditions[:5])
    return Evidence(" + ".join(ruleset.sources) or "netfilter", excerpt, ruleset.read_at)


def span_text(spans: list[PortSpan]) -> str:
    """``30050-30100, 30200`` — the ports of some spans, as ranges."""
    return ", ".join(
        str(s.first_port) if s.first_port == s.last_port else f"{s.first_port}-{s.last_port}"
        for s in spans
    )


def firewall_finding(
    rule_id: str,
    server: FtpServer,
    ftp: FtpFacts,
    ruleset: Ruleset,
    family: str,
    reach: Reachability,
    *,
    probe: str,
    topic: str,
    severity: Severity,
    **params: object,
) -> Finding:
    """A finding about one port (``probe`` describes the packet) the firewall does not
    simply accept: ``finding.<rule>.<verdict>.title``, ``remedy.<rule>.drop`` for a drop."""
    return Finding(
        rule_id=rule_id,
        severity=severity,
        status=Status.FAILED,
        title_key=f"finding.{rule_id}.{reach.verdict}.title",
        params={
            **server_params(server),
            "family": FAMILY_NAMES[family],
            "decided_by": reach.decided_by,
            "conditions": "; ".join(reach.conditions[:5]),
            **params,
        },
        evidence=(server_evidence(server, ftp, topic), firewall_evidence(ruleset, probe, reach)),
        remedy_key=(
            f"remedy.{rule_id}.drop" if reach.verdict == DROP else "remedy.ftp.firewall_conditional"
        ),
    )

"""The versioned JSON documents (``--json``), documented in docs/json.md.

Keys and ids are stable; human text is included in the chosen language next to the key
it came from, so scripts match on keys and people read the text.
"""

from __future__ import annotations

import json
import time
from typing import Any

from hostmedic import __version__
from hostmedic.analysis.verdict import judge
from hostmedic.collectors.geo import database_version
from hostmedic.facts.bandwidth import BandwidthFacts, format_endpoint
from hostmedic.i18n import Translator
from hostmedic.model import Finding
from hostmedic.render.units import humanize_params

DIAGNOSE_SCHEMA = "hostmedic.diagnose/1"
BANDWIDTH_SCHEMA = "hostmedic.bandwidth/1"


def _tool() -> dict[str, str]:
    return {"name": "hostmedic", "version": __version__, "geo_database": database_version()}


def _clue_texts(params: dict[str, Any], t: Translator) -> list[dict[str, Any]]:
    return [{"key": key, "params": p, "text": t(key, **p)} for key, p in params.get("clues", [])]


def finding_to_dict(f: Finding, t: Translator) -> dict[str, Any]:
    params = dict(f.params)
    shown = humanize_params({k: v for k, v in params.items() if k != "clues"})
    return {
        "rule_id": f.rule_id,
        "status": f.status.value,
        "severity": f.severity.name.lower(),
        "title_key": f.title_key,
        "title": t(f.title_key, **shown),
        "params": {k: v for k, v in params.items() if k != "clues"},
        "clues": _clue_texts(params, t),
        "evidence": [
            {"source": e.source, "excerpt": e.excerpt, "read_at": e.read_at} for e in f.evidence
        ],
        "remedy_key": f.remedy_key,
        "remedy": t(f.remedy_key, **shown) if f.remedy_key else None,
        "runbook_ref": f.runbook_ref,
        "skip_reason": f.skip_reason,
        "skip_reason_text": t(f.skip_reason, **shown) if f.skip_reason else None,
    }


def bandwidth_to_dict(facts: BandwidthFacts, t: Translator) -> dict[str, Any]:
    """The ``hostmedic bandwidth --json`` document (byte counts over ``duration_s``)."""
    processes = []
    for p in facts.processes:
        verdict = judge(p, facts.duration_s)
        info = p.info
        processes.append(
            {
                "pid": p.pid,
                "name": info.name if info else None,
                "exe": info.exe if info else None,
                "exe_deleted": info.exe_deleted if info else None,
                "cmdline": list(info.cmdline) if info else [],
                "user": info.user if info else None,
                "netns": p.netns_inode,
                "container": _label(facts, p.netns_inode),
                "tx_bytes": p.traffic.tx_bytes,
                "rx_bytes": p.traffic.rx_bytes,
                "tx_packets": p.traffic.tx_packets,
                "rx_packets": p.traffic.rx_packets,
                "remote_count": len(p.remote_ips),
                "verdict": verdict.kind,
                "vendor": verdict.vendor,
                "evidence": [
                    {"key": c.key, "params": dict(c.params), "text": t(c.key, **dict(c.params))}
                    for c in verdict.clues
                ],
            }
        )
    return {
        "schema": BANDWIDTH_SCHEMA,
        "tool": _tool(),
        "duration_s": round(facts.duration_s, 3),
        "home_country": facts.home_country,
        "processes": processes,
        "remotes": [
            {
                "ip": r.ip,
                "tx_bytes": r.traffic.tx_bytes,
                "rx_bytes": r.traffic.rx_bytes,
                "tx_packets": r.traffic.tx_packets,
                "rx_packets": r.traffic.rx_packets,
                "country": r.country,
                "abroad": r.abroad,
                "pids": list(r.pids),
            }
            for r in facts.remotes
        ],
        "flows": [
            {
                "pid": f.key.pid,
                "proto": f.key.protocol,
                "local": format_endpoint(f.key.local_ip, f.key.local_port),
                "remote": format_endpoint(f.key.remote_ip, f.key.remote_port),
                "interface": f.key.interface,
                "netns": f.key.netns_inode,
                "container": _label(facts, f.key.netns_inode),
                "tx_bytes": f.traffic.tx_bytes,
                "rx_bytes": f.traffic.rx_bytes,
                "tx_packets": f.traffic.tx_packets,
                "rx_packets": f.traffic.rx_packets,
            }
            for f in facts.flows
        ],
        "unattributed": {
            "tx_bytes": facts.unattributed.tx_bytes,
            "rx_bytes": facts.unattributed.rx_bytes,
        },
        "interfaces": [
            {
                "name": i.name,
                "tx_bytes": i.traffic.tx_bytes,
                "rx_bytes": i.traffic.rx_bytes,
                "tx_packets": i.traffic.tx_packets,
                "rx_packets": i.traffic.rx_packets,
                "link_speed_mbit": i.link_speed_mbit,
                "unattributed": {
                    "tx_bytes": i.unattributed.tx_bytes,
                    "rx_bytes": i.unattributed.rx_bytes,
                },
            }
            for i in facts.interfaces
        ],
        "containers": [
            {
                "label": c.info.label,
                "kind": c.info.kind,
                "name": c.info.name,
                "netns": c.info.netns_inode,
                "netns_name": c.info.netns_name,
                "cgroup": c.info.cgroup,
                "host_interfaces": list(c.info.host_interfaces),
                "pids": list(c.pids),
                "flow_count": c.flow_count,
                "tx_bytes": c.traffic.tx_bytes,
                "rx_bytes": c.traffic.rx_bytes,
                "tx_packets": c.traffic.tx_packets,
                "rx_packets": c.traffic.rx_packets,
            }
            for c in facts.containers
        ],
        "not_counted": [
            {"key": key, "text": t(key), "detail": detail} for key, detail in facts.not_counted
        ],
        "capture_drops": facts.capture_drops,
    }


def _label(facts: BandwidthFacts, netns: int | None) -> str | None:
    info = facts.container(netns)
    return info.label if info is not None else None


def diagnose_document(
    findings: list[Finding],
    errors: list[str],
    code: int,
    t: Translator,
    bandwidth: BandwidthFacts | None,
) -> str:
    """The ``hostmedic diagnose --json`` document."""
    doc: dict[str, Any] = {
        "schema": DIAGNOSE_SCHEMA,
        "tool": _tool(),
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "language": t.language,
        "exit_code": code,
        "findings": [finding_to_dict(f, t) for f in findings],
        "internal_errors": errors,
        "bandwidth": bandwidth_to_dict(bandwidth, t) if bandwidth is not None else None,
    }
    return json.dumps(doc, ensure_ascii=False, indent=2)

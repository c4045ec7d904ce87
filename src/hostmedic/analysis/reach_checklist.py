"""Seed 004's ticket checklists ("工单提交须知"), filled with what was recorded.

Eight steps for private access, eight for public access, in the seed's order. Each step
is either recorded (the results, as :class:`Reason` items the renderer translates), not
recorded (with the command that records it and where to run it), not needed (the seed
makes steps 6 and 7 of the public list conditional on the ping result), or manual (the
packet capture, which hostmedic does not take). Pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hostmedic.analysis.reach_observations import Observations, Path, Vantage
from hostmedic.analysis.reach_signals import (
    abnormal_redirect,
    ads_injected,
    port_flags,
    tcp_path_command,
)
from hostmedic.analysis.reach_symptoms import (
    Reason,
    icmp_path,
    loss_onset,
    peers_of,
    symptoms_of,
    why,
)

RECORDED, NOT_RECORDED, NOT_NEEDED, MANUAL = "recorded", "not_recorded", "not_needed", "manual"
ON_SOURCE, ON_TARGET, ON_OTHER = "on_source", "on_target", "on_other"


@dataclass(frozen=True, slots=True)
class ChecklistItem:
    """One step of the seed's list: its text key, what was recorded, or what to run where."""

    step: int
    text_key: str
    status: str
    results: tuple[Reason, ...] = ()
    command: str | None = None
    where: str = ON_SOURCE


def _item(step: int, access: str, results: list[Reason], command: str, where: str) -> ChecklistItem:
    key = f"verdict.reach.check.{access}.{step}"
    if results:
        return ChecklistItem(step, key, RECORDED, tuple(results))
    return ChecklistItem(step, key, NOT_RECORDED, command=command, where=where)


def _other_vantages(obs: Observations) -> list[Reason]:
    mine = symptoms_of(obs.primary).failing_checks()
    out: list[Reason] = []
    for v in peers_of(obs):
        s = symptoms_of(v)
        if mine & s.passing_checks() or not s.any:
            names = mine & s.passing_checks() or s.passing_checks()
            out.append(why("other_vantage_works", vantage=v.name, checks=_names(names)))
        else:
            out.append(
                why("other_vantage_fails", vantage=v.name, checks=_names(s.failing_checks()))
            )
    return out


def _names(checks: set[str]) -> str:
    return ", ".join(sorted(checks)) or "-"


def _ping(v: Vantage | None) -> list[Reason]:
    if v is None or v.ping is None:
        return []
    p = v.ping
    if p.ok:
        return [why("ping_ok", sent=p.sent, received=p.received)]
    return [why("ping_bad", loss=round(p.loss_pct), sent=p.sent)]


def _ports(v: Vantage | None) -> list[Reason]:
    reasons = [why("port_state", port=p.port, state=p.state) for p in v.ports] if v else []
    reasons += (
        [why("url_result", url=h.url, status=h.status or h.error) for h in v.http] if v else []
    )
    return reasons


def _gateway_ping(vantages: tuple[Vantage, ...], gateway: str | None) -> list[Reason]:
    for v in vantages:
        if gateway is not None and v.target == gateway and v.ping is not None:
            return [why("gateway_ping", gateway=gateway, loss=round(v.ping.loss_pct))]
    return []


def _source_gateway(obs: Observations) -> list[Reason]:
    """The source's ping of its gateway, or else the first hop of its path (its gateway)."""
    pinged = _gateway_ping(obs.controls, obs.source_gateway)
    path = icmp_path(obs.primary)
    if pinged or path is None or not path.hops:
        return pinged
    first = path.hops[0]
    return [why("first_hop", address=first.address or "*", loss=round(first.loss_pct))]


def path_summary(path: Path) -> Reason:
    """One line for an MTR / TCP traceroute run (checklist steps 6 and 7)."""
    onset = loss_onset(path)
    return why(
        "path_summary",
        mode=path.mode.upper() + (f":{path.port}" if path.port else ""),
        target=path.target,
        answered=len(path.answering()),
        hops=len(path.hops),
        reached=path.reached,
        onset=onset if onset is not None else "-",
    )


def _private(obs: Observations) -> list[ChecklistItem]:
    t, v = obs.target, obs.primary
    sgw, tgw = obs.source_gateway or "SOURCE_GATEWAY", obs.target_gateway or "TARGET_GATEWAY"
    probe = f"hostmedic probe {t}{port_flags(obs)}"
    return [
        _item(1, "private", _other_vantages(obs), f"{probe} --save other.json", ON_OTHER),
        _item(2, "private", _ping(v), f"hostmedic probe {t}", ON_SOURCE),
        _item(3, "private", _ports(v), f"hostmedic probe {t} --port PORT", ON_SOURCE),
        _item(4, "private", _source_gateway(obs), _gw(sgw), ON_SOURCE),
        _item(5, "private", _gateway_ping(obs.from_target, tgw), _gw(tgw, True), ON_TARGET),
        _item(6, "private", _gateway_ping(obs.controls, obs.target_gateway), _gw(tgw), ON_SOURCE),
        _item(7, "private", _gateway_ping(obs.from_target, sgw), _gw(sgw, True), ON_TARGET),
        ChecklistItem(8, "verdict.reach.check.private.8", MANUAL),
    ]


def _gw(gateway: str, on_target: bool = False) -> str:
    vantage = " --vantage target" if on_target else ""
    return f"hostmedic probe {gateway}{vantage} --save gateway-{gateway}.json"


def _not_needed(step: int, when: str) -> ChecklistItem:
    """Steps 6 and 7 of the public list are conditional in the seed."""
    note = Reason(f"verdict.reach.check.when.{when}")
    return ChecklistItem(step, f"verdict.reach.check.public.{step}", NOT_NEEDED, (note,))


def _public(obs: Observations) -> list[ChecklistItem]:
    t, v = obs.target, obs.primary
    probe = f"hostmedic probe {t}{port_flags(obs)}"
    url = " --url URL"
    s = symptoms_of(v)
    asked = bool(v and v.http)
    items = [
        _item(1, "public", _other_vantages(obs), f"{probe} --save other.json", ON_OTHER),
        _item(
            2, "public", list(ads_injected(obs).reasons) if asked else [], probe + url, ON_SOURCE
        ),
        _item(
            3,
            "public",
            list(abnormal_redirect(obs).reasons) if asked else [],
            probe + url,
            ON_SOURCE,
        ),
        _item(4, "public", _ping(v), f"hostmedic probe {t}", ON_SOURCE),
        _item(5, "public", _ports(v), f"hostmedic probe {t} --port PORT", ON_SOURCE),
    ]
    path = icmp_path(v)
    if s.ping == "ok":
        items.append(_not_needed(6, "ping_bad"))
    else:
        results = [path_summary(path)] if path else []
        items.append(_item(6, "public", results, f"hostmedic probe {t} --path", ON_SOURCE))
    failing = [p.port for p in s.failing_ports]
    if s.ping in ("loss", "dead") or not (failing or s.failing_http):
        items.append(_not_needed(7, "port_bad"))
    else:
        tcp = [p for p in (v.paths if v else ()) if p.mode == "tcp"]
        port = failing[0] if failing else 80
        command = tcp_path_command(t, port)
        items.append(_item(7, "public", [path_summary(p) for p in tcp], command, ON_SOURCE))
    items.append(ChecklistItem(8, "verdict.reach.check.public.8", MANUAL))
    return items


BUILDERS: dict[str, Callable[[Observations], list[ChecklistItem]]] = {
    "private": _private,
    "public": _public,
}


def checklist(obs: Observations) -> list[ChecklistItem]:
    """The seed's 8-step ticket list for ``obs.access``, each step filled or explained."""
    return BUILDERS[obs.access](obs)

"""Evidence for and against each cause of the fixed vocabulary.

Once the walk has reached a node, its candidate causes are ranked here. Every cause has
one scoring function that reads the merged :class:`Observations` and returns
:class:`Reason` items: positive weight = evidence for, negative = evidence against. The
weights encode how decisive an observation is under the seed's factor tables (a block
page names its cause outright; a silent drop is only mildly more typical of a security
group than of a host firewall). Causes that look identical from outside get the same
outside score, so the tie is visible and broken only by inside or console evidence. Pure.
"""

from __future__ import annotations

from collections.abc import Callable

from hostmedic.analysis.reach_context import Context
from hostmedic.analysis.reach_observations import (
    PAGE_DDOS,
    PAGE_GREEN_NET,
    PAGE_ICP,
    PAGE_ISP,
    PAGE_WAF,
    REFUSED,
    TIMEOUT,
)
from hostmedic.analysis.reach_signals import (
    ads_injected,
    failing_ports,
    inside_access_ok,
    inside_page_ok,
    listener_reaches_clients,
    target_blocks_client,
)
from hostmedic.analysis.reach_symptoms import (
    Reason,
    dns_mismatch,
    icmp_path,
    loss_onset,
    why,
)

CONSOLE_WEIGHT = 8.0  # a person read the answer off the console: decisive


Scorer = Callable[[Context], list[Reason]]


def _console(
    ctx: Context, key: str, value_for: str, value_against: tuple[str, ...]
) -> list[Reason]:
    answer = ctx.obs.console.get(key)
    if answer == value_for:
        return [why("console", CONSOLE_WEIGHT, question=key, value=answer)]
    if answer in value_against:
        return [why("console", -CONSOLE_WEIGHT, question=key, value=answer)]
    return []


def _none(ctx: Context) -> list[Reason]:
    return [why("no_symptom", 10)]


def _service_down(ctx: Context) -> list[Reason]:
    out: list[Reason] = []
    inside = ctx.obs.target_inside
    ports = failing_ports(ctx.obs)
    if not ports:
        out.append(why("no_port_fails", -3))
    refused = all(p.state == REFUSED for p in ctx.mine.failing_ports)
    open_elsewhere = any(set(ports) & {p.port for p in s.open_ports} for _, s in ctx.peers)
    if ctx.mine.failing_ports and refused and not open_elsewhere:
        out.append(why("refused_everywhere", 2, ports=ctx.ports_text()))
    if ctx.mine.failing_ports and TIMEOUT in ctx.port_states():
        out.append(why("port_timeout", -1, ports=ctx.ports_text()))
    if open_elsewhere:
        out.append(why("port_open_elsewhere", -4))
    if inside is not None:
        for port in ports:
            reach = listener_reaches_clients(inside, port)
            bound = ",".join(sorted({lst.address for lst in inside.listeners if lst.port == port}))
            if reach is False:
                key = "listener_loopback_only" if bound else "no_listener"
                out.append(why(key, 4, port=port, bound=bound))
            elif inside.loopback.get(port) is False:
                out.append(why("inside_connect_fails", 3, port=port))
            elif reach:
                out.append(why("inside_connect_works", -4, port=port, bound=bound))
    page = inside_page_ok(ctx.obs)
    if page.value is False:
        out.append(why("inside_page_bad_weak", 1))
    return out


def _target_host_internal(ctx: Context) -> list[Reason]:
    out: list[Reason] = []
    blocks = ctx.firewall_blocks()
    if blocks:
        out.append(why("host_firewall_blocks", 5, what=", ".join(blocks)))
    elif ctx.firewall_read():
        out.append(why("host_firewall_clean", -3))
    page = inside_page_ok(ctx.obs)
    if page.value is False and (ctx.mine.injected or ctx.mine.offsite_redirects):
        out.append(why("inside_page_same", 4))
    if ctx.mine.ping == "loss" and ctx.all_fail and not _saturated(ctx):
        out.append(why("loss_everywhere", 1))
    if ctx.silently_dropped:
        out.append(why("silent_drop_host", 1, ports=ctx.ports_text()))
    return out


def _saturated(ctx: Context) -> bool:
    return bool(ctx.obs.load and ctx.obs.load.saturated)


def _target_security_group(ctx: Context) -> list[Reason]:
    out = _console(ctx, "security_group", "blocks", ("allows",))
    if ctx.silently_dropped:
        out.append(why("silent_drop", 1, ports=ctx.ports_text()))
    if REFUSED in ctx.port_states():
        out.append(why("port_refused", -2, ports=ctx.ports_text()))
    if ctx.firewall_blocks():
        out.append(why("host_firewall_blocks", -3, what=", ".join(ctx.firewall_blocks())))
    elif (
        ctx.blocked
        and ctx.firewall_read()
        and ctx.service_listens()
        and inside_access_ok(ctx.obs).value
    ):
        out.append(why("inside_clean", 3))
    if _app_denial(ctx):
        out.append(why("app_answers", -3))
    if _public_cut_private_fine(ctx):
        out.append(why("private_path_works", -1))
    return out


def _app_denial(ctx: Context) -> bool:
    return any(h.status in (401, 403) and not h.fingerprints for h in ctx.mine.failing_http)


def _public_cut_private_fine(ctx: Context) -> bool:
    """Every public vantage finds the target dead while a server in its VPC reaches it."""
    if ctx.obs.access != "public" or not ctx.everything_fails_everywhere:
        return False
    return any(v.role == "peer" and not s.everything_fails for v, s in ctx.cross)


def _ddos_waf(ctx: Context) -> list[Reason]:
    out: list[Reason] = []
    pages = ctx.fingerprints() & {PAGE_WAF, PAGE_DDOS}
    if pages:
        out.append(why("block_page_seen", 8, page=",".join(sorted(pages))))
    if _public_cut_private_fine(ctx):
        out.append(why("private_path_works", 4))
    elif ctx.everything_fails_everywhere:
        out.append(why("cut_off_everywhere", 1))
    if ctx.obs.load and ctx.obs.load.inbound_flood:
        out.append(why("inbound_flood", 3, excerpt=ctx.obs.load.excerpt))
    if not pages and (ctx.mine.open_ports or ctx.mine.ping == "ok"):
        out.append(why("no_block_page", -3))
    return out


def _page_cause(page: str) -> Scorer:
    def score(ctx: Context) -> list[Reason]:
        if page in ctx.fingerprints():
            return [why("block_page_seen", 8, page=page)]
        return [why("no_block_page", -3)]

    return score


def _local_dns_hijack(ctx: Context) -> list[Reason]:
    hijack = dns_mismatch(ctx.obs.primary, ctx.obs.target)
    if hijack is not None:
        answers = "; ".join(f"{r}={','.join(a) or '-'}" for r, a in hijack.answers.items())
        return [why("dns_differs", 6, name=hijack.name, answers=answers)]
    asked = [d for d in (ctx.obs.primary.dns if ctx.obs.primary else ()) if len(d.answers) > 1]
    if asked:
        return [why("dns_agrees", -4, name=asked[0].name)]
    return []


def _isp_policy(ctx: Context) -> list[Reason]:
    out: list[Reason] = []
    if PAGE_ISP in ctx.fingerprints():
        out.append(why("block_page_seen", 8, page=PAGE_ISP))
    hijack = dns_mismatch(ctx.obs.primary, ctx.obs.target)
    if ctx.mine.injected or _foreign_scripts(ctx):
        out.append(why("injected_dns_clean", 3) if hijack is None else why("dns_differs_weak", -2))
    if ctx.mine.ping == "ok" and ctx.mine.failing_ports + ctx.mine.failing_http:
        blocked = target_blocks_client(ctx.obs)
        if blocked.value is False:
            out.append(why("blocked_on_the_way", 5))
    if _domain_fails_ip_works(ctx):
        out.append(why("domain_fails_ip_works", 5))
    if ctx.others_work:
        out.append(why("only_this_network", 1))
    if ctx.all_fail:
        out.append(why("all_networks_fail", -4))
    if any(s.any for s in ctx.controls()):
        out.append(why("controls_fail", -2, targets=ctx.control_names()))
    return out


def _foreign_scripts(ctx: Context) -> bool:
    return bool(ctx.obs.primary and ctx.obs.primary.http and ads_injected(ctx.obs).value)


def _domain_fails_ip_works(ctx: Context) -> bool:
    """The seed's "域名无法访问但 IP 访问正常", without a notice page explaining it."""
    v = ctx.obs.primary
    if v is None or ctx.fingerprints():
        return False
    by_name_fails = any(not h.ok and not h.by_address for h in v.http)
    by_ip_works = any(h.ok and h.by_address for h in v.http)
    return by_name_fails and by_ip_works


def _client_local_network(ctx: Context) -> list[Reason]:
    out: list[Reason] = []
    controls = ctx.controls()
    if any(s.any for s in controls):
        out.append(why("controls_fail", 6, targets=ctx.control_names()))
    elif controls:
        out.append(why("controls_work", -4, targets=ctx.control_names()))
    path = icmp_path(ctx.obs.primary)
    if path is not None and path.hops:
        first = path.hops[0]
        if first.address is None or first.loss_pct > 0:
            out.append(why("first_hop_bad", 4, loss=round(first.loss_pct)))
        else:
            out.append(why("first_hop_fine", -2, address=first.address))
    if ctx.all_fail:
        out.append(why("all_networks_fail", -4))
    return out


def _cloud_shield_source_blocked(ctx: Context) -> list[Reason]:
    out = _console(ctx, "shield_blocks_source", "yes", ("no",))
    if ctx.mine.everything_fails and ctx.others_work:
        out.append(why("cut_off_here_only", 3, vantage=ctx.name))
    if ctx.mine.ping == "loss":
        out.append(why("loss_not_cut", -3))
    if ctx.mine.open_ports:
        out.append(why("some_port_works", -4))
    if any(s.any for s in ctx.controls()):
        out.append(why("controls_fail", -3, targets=ctx.control_names()))
    path = icmp_path(ctx.obs.primary)
    if path is not None and path.hops and path.hops[0].address is None:
        out.append(why("first_hop_bad", -2, loss=100))
    return out


def _cut_off(ctx: Context) -> list[Reason]:
    """Shared by the two "the instance is gone" causes (arrears, shield shutdown)."""
    out: list[Reason] = []
    if ctx.everything_fails_everywhere:
        out.append(why("cut_off_everywhere", 3))
    if ctx.mine.open_ports or any(s.open_ports for _, s in ctx.peers + ctx.cross):
        out.append(why("some_port_works", -5))
    return out


def _instance_gone(ctx: Context, state: str, others: tuple[str, ...]) -> list[Reason]:
    """What a stopped or shut-down instance looks like; ``state`` is its console state."""
    out = _console(ctx, "instance_state", state, others) + _cut_off(ctx)
    if ctx.obs.target_inside is None:
        out.append(why("no_inside_evidence", 0.5))
    return out


def _zombie_shutdown(ctx: Context) -> list[Reason]:
    out = _instance_gone(ctx, "locked", ("running", "stopped_arrears"))
    if ctx.obs.load and ctx.obs.load.outbound_flood:
        out.append(why("outbound_flood", 4, excerpt=ctx.obs.load.excerpt))
    return out


def _arrears(ctx: Context) -> list[Reason]:
    out = _instance_gone(ctx, "stopped_arrears", ("running", "locked"))
    if ctx.obs.target_inside is not None:
        out.append(why("instance_runs", -6, host=ctx.obs.target_inside.host))
    return out


def _bandwidth(ctx: Context) -> list[Reason]:
    out: list[Reason] = []
    load = ctx.obs.load
    if load is not None and load.saturated:
        out.append(why("saturated", 6, share=round(load.peak_share_pct or 0), excerpt=load.excerpt))
    elif load is not None and load.saturated is False:
        out.append(why("not_saturated", -4, share=round(load.peak_share_pct or 0)))
    if ctx.mine.ping == "loss" and ctx.all_fail:
        out.append(why("loss_everywhere", 2))
    elif ctx.mine.ping == "loss" and ctx.others_work:
        out.append(why("loss_here_only", -2))
    if ctx.mine.ping != "loss":
        out.append(why("no_loss", -3))
    return out


def _path_loss(ctx: Context) -> list[Reason]:
    out: list[Reason] = []
    if ctx.mine.ping == "loss":
        out.append(why("ping_loss", 2, loss=ctx.loss))
    else:
        out.append(why("no_loss", -2))
    path = icmp_path(ctx.obs.primary)
    onset = loss_onset(path) if path else None
    if onset is not None and onset > 1:
        out.append(why("loss_from_hop", 4, ttl=onset))
    elif onset == 1:
        out.append(why("loss_from_first_hop", -2))
    if _saturated(ctx):
        out.append(why("saturated_instead", -2))
    return out


def _lb_whitelist(ctx: Context) -> list[Reason]:
    out = _console(ctx, "lb_whitelist", "excludes_client", ("none", "includes_client"))
    inside = ctx.obs.target_inside
    if inside is not None and ctx.obs.primary is not None:
        probed = set(ctx.obs.primary.addresses) or {ctx.obs.target}
        if probed & set(inside.addresses):
            out.append(why("probed_address_is_host", -3, address=", ".join(sorted(probed))))
        else:
            out.append(why("probed_address_elsewhere", 4, address=", ".join(sorted(probed))))
    if ctx.others_work and ctx.mine.failing_ports:
        # the whitelist's defining symptom: these sources fail, others pass the same port.
        # On the internet that is the usual use of a listener whitelist; inside a VPC,
        # security-group rules naming other groups produce it as often.
        weight = 2 if ctx.obs.access == "public" else 0.5
        out.append(why("only_these_sources", weight, ports=ctx.ports_text()))
    if REFUSED in ctx.port_states():
        out.append(why("port_refused", -2, ports=ctx.ports_text()))
    return out


def _app_source_acl(ctx: Context) -> list[Reason]:
    out: list[Reason] = []
    if _app_denial(ctx):
        out.append(why("app_denies", 5, status=ctx.mine.failing_http[0].status))
    inside = ctx.obs.target_inside
    denied = inside.firewall.denied_services if inside and inside.firewall else ()
    if denied:
        out.append(why("denied_entries", 3, entries="; ".join(denied)))
    if ctx.mine.failing_ports and not denied:
        out.append(why("tcp_fails_not_app", -2))
    return out


def _source_security_group(ctx: Context) -> list[Reason]:
    out = _console(ctx, "source_security_group", "blocks", ("allows",))
    controls = ctx.controls()
    if any(s.any for s in controls):
        out.append(why("source_controls_fail", 3, targets=ctx.control_names()))
    elif controls:
        out.append(why("source_controls_work", -3, targets=ctx.control_names()))
    fw = ctx.obs.source_inside.firewall if ctx.obs.source_inside else None
    if fw is not None and fw.read:
        if fw.drops_output:
            out.append(why("source_firewall_blocks", -3))
        else:
            out.append(why("source_firewall_clean", 2))
    if ctx.all_fail:
        out.append(why("all_sources_fail", -3))
    return out


def _source_host_internal(ctx: Context) -> list[Reason]:
    out: list[Reason] = []
    fw = ctx.obs.source_inside.firewall if ctx.obs.source_inside else None
    if fw is not None and fw.read:
        if fw.drops_output:
            out.append(why("source_firewall_blocks", 5))
        else:
            out.append(why("source_firewall_clean", -3))
    v = ctx.obs.primary
    if v is not None and v.ping is not None and v.ping.local_block:
        out.append(why("local_block", 5))
    path = icmp_path(v)
    if path is not None and path.hops and path.hops[0].address is None:
        out.append(why("first_hop_bad", 3, loss=100))
    if ctx.all_fail:
        out.append(why("all_sources_fail", -3))
    return out


SCORERS: dict[str, Scorer] = {
    "none": _none,
    "service_down": _service_down,
    "target_host_internal": _target_host_internal,
    "target_security_group": _target_security_group,
    "ddos_waf_interception": _ddos_waf,
    "green_net_block": _page_cause(PAGE_GREEN_NET),
    "icp_filing": _page_cause(PAGE_ICP),
    "local_dns_hijack": _local_dns_hijack,
    "isp_policy": _isp_policy,
    "client_local_network": _client_local_network,
    "cloud_shield_source_blocked": _cloud_shield_source_blocked,
    "cloud_shield_zombie_shutdown": _zombie_shutdown,
    "target_arrears_stopped": _arrears,
    "bandwidth_saturated": _bandwidth,
    "path_loss": _path_loss,
    "lb_whitelist": _lb_whitelist,
    "app_source_acl": _app_source_acl,
    "source_security_group": _source_security_group,
    "source_host_internal": _source_host_internal,
}

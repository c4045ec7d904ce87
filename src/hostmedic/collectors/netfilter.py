"""Read the host firewall of hostmedic's network namespace, read-only.

``nft -j list ruleset`` gives every nftables table. Tables that iptables-nft manages show
iptables' own matches there as opaque ``xt`` expressions, so those tables are read from
``iptables-save`` / ``ip6tables-save`` instead (same rules, fully rendered). Legacy
x_tables rules (a separate, parallel path through the same hooks) are read with
``iptables-legacy-save`` only when the kernel already has legacy tables
(``/proc/net/ip_tables_names`` lists some): running it otherwise could load a module.
Nothing here writes: ``list`` and ``save`` only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from hostmedic.collectors.iptables_save import parse_iptables_save
from hostmedic.collectors.nft_json import parse_nft_json
from hostmedic.errors import FactUnavailable, ParseError
from hostmedic.facts.netfilter import FwChain, NamedSet, Ruleset

TIMEOUT_S = 10.0


def _run(argv: list[str]) -> str:
    """stdout of a read-only firewall listing; FactUnavailable when it cannot run."""
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LC_ALL": "C"},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FactUnavailable(
            f"{argv[0]}: {exc}", key="reason.netfilter_failed", tool=argv[0]
        ) from exc
    if done.returncode != 0:
        detail = (
            done.stderr.strip().splitlines()[-1]
            if done.stderr.strip()
            else f"exit {done.returncode}"
        )
        if "not permitted" in detail.lower() or "permission denied" in detail.lower():
            raise FactUnavailable(detail, key="reason.netfilter_needs_root")
        raise FactUnavailable(
            f"{' '.join(argv)}: {detail}", key="reason.netfilter_failed", tool=argv[0]
        )
    return done.stdout


def _legacy_tables_present(name: str) -> bool:
    try:
        with open(f"/proc/net/{name}", encoding="ascii") as f:
            return bool(f.read().strip())
    except OSError:
        return False


def read_ruleset() -> Ruleset:
    """The ruleset of the current network namespace (needs CAP_NET_ADMIN)."""
    chains: list[FwChain] = []
    sets: list[NamedSet] = []
    sources: list[str] = []
    skipped: list[str] = []
    saved: dict[str, tuple[list[FwChain], str]] = {}
    for family, tool in (("ip", "iptables-save"), ("ip6", "ip6tables-save")):
        if shutil.which(tool):
            try:
                saved[family] = parse_iptables_save(_run([tool]), family=family)
            except ParseError as exc:
                skipped.append(f"{tool}: {exc}")
                continue
            sources.append(f"{tool} ({saved[family][1] or 'no tables'})")
    if shutil.which("nft"):
        try:
            nft_chains, nft_sets, nft_skipped = parse_nft_json(
                _run(["nft", "-j", "list", "ruleset"])
            )
        except ParseError as exc:
            raise FactUnavailable(str(exc), key="reason.netfilter_failed", tool="nft") from exc
        sources.append("nft -j list ruleset")
        skipped += nft_skipped
        for chain in nft_chains:
            twin = saved.get(chain.family)
            if twin and twin[1] == "nf_tables" and any(c.table == chain.table for c in twin[0]):
                continue  # the same table, read from iptables-save
            chains.append(chain)
        sets += nft_sets
        managed = {
            f"{fam} {c.table}" for fam, (cs, v) in saved.items() if v == "nf_tables" for c in cs
        }
        skipped += [
            f"{t}: managed by iptables-nft, read from iptables-save" for t in sorted(managed)
        ]
    elif not saved:
        raise FactUnavailable(
            "neither nft nor iptables-save is installed", key="reason.no_netfilter_tools"
        )
    for found, _variant in saved.values():
        chains += found
    for family, names, tool in (
        ("ip", "ip_tables_names", "iptables-legacy-save"),
        ("ip6", "ip6_tables_names", "ip6tables-legacy-save"),
    ):
        if saved.get(family, ([], ""))[1] == "nf_tables" and _legacy_tables_present(names):
            if shutil.which(tool):
                legacy, _ = parse_iptables_save(_run([tool]), family=family)
                chains += legacy
                sources.append(tool)
            else:
                skipped.append(f"legacy {family} tables exist but {tool} is missing")
    return Ruleset(tuple(chains), tuple(sets), tuple(sources), tuple(skipped), time.time())

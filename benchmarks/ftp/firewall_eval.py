"""Cost of the firewall evaluator on large rulesets (pure: no root, no I/O).

Worlds: an input chain of N accept rules on distinct ports plus a fail2ban-style chain of
M one-address reject rules (both shapes seen on busy servers), policy drop. Measures one
control-port evaluation and one passive-range evaluation (30000-30100, and the whole
ephemeral range 32768-60999 that a server without a range may use), median of 5.

    .venv/bin/python benchmarks/ftp/firewall_eval.py

Prints a Markdown table and writes ``benchmarks/results/ftp-firewall-eval-<date>.json``.
Not a test: never run in CI.
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import time
from pathlib import Path

from hostmedic.analysis.netfilter import Probe, evaluate, evaluate_ports
from hostmedic.facts import netfilter as nf
from hostmedic.facts.netfilter import FwChain, FwRule, Match, Ruleset

RESULTS = Path(__file__).resolve().parents[1] / "results"


def world(port_rules: int, ban_rules: int) -> Ruleset:
    accepts = tuple(
        FwRule((Match(nf.L4PROTO, ("tcp",)), Match(nf.DPORT, (str(1000 + i),))), "accept", "", "")
        for i in range(port_rules)
    )
    jump = FwRule((Match(nf.DPORT, ("20", "21")),), "jump:f2b-vsftpd", "", "")
    bans = [
        FwRule((Match(nf.SADDR, (f"203.0.{i // 250}.{i % 250}",)),), "drop", "", "")
        for i in range(ban_rules)
    ]
    bans.append(FwRule((), "return", "", ""))
    chains = (
        FwChain("iptables", "ip", "filter", "INPUT", "input", 0, "drop", (jump, *accepts)),
        FwChain("iptables", "ip", "filter", "f2b-vsftpd", None, 0, None, tuple(bans)),
    )
    return Ruleset(chains, (), (), (), 0.0)


def median_ms(call: object, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()  # type: ignore[operator]
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    rows = []
    for port_rules, ban_rules in ((100, 100), (1000, 1000), (5000, 5000)):
        rs = world(port_rules, ban_rules)
        rows.append(
            {
                "port_rules": port_rules,
                "ban_rules": ban_rules,
                "control_port_ms": median_ms(lambda rs=rs: evaluate(rs, Probe("ip", "in", 21))),
                "passive_101_ms": median_ms(
                    lambda rs=rs: evaluate_ports(rs, Probe("ip", "in", None), 30000, 30100)
                ),
                "ephemeral_range_ms": median_ms(
                    lambda rs=rs: evaluate_ports(rs, Probe("ip", "in", None), 32768, 60999),
                    repeat=3,
                ),
            }
        )
    print("| accept rules | ban rules | port 21 | 30000-30100 | 32768-60999 |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['port_rules']} | {r['ban_rules']} | {r['control_port_ms']:.1f} ms "
            f"| {r['passive_101_ms']:.1f} ms | {r['ephemeral_range_ms']:.1f} ms |"
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"ftp-firewall-eval-{dt.date.today().isoformat()}.json"
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print("wrote", out)


if __name__ == "__main__":
    main()

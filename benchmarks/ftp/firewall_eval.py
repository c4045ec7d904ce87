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

from hostmedic.analysis.firewall import Packet, evaluate
from hostmedic.analysis.firewall_ports import evaluate_ports
from hostmedic.facts import network as nf
from hostmedic.facts.network import FirewallChain, FirewallFacts, FirewallMatch, FirewallRule

RESULTS = Path(__file__).resolve().parents[1] / "results"


def _is(field: str, *values: str) -> FirewallMatch:
    return FirewallMatch(field, "==", values)


def world(port_rules: int, ban_rules: int) -> FirewallFacts:
    accepts = tuple(
        FirewallRule((_is(nf.L4PROTO, "tcp"), _is(nf.DPORT, str(1000 + i))), "accept", "")
        for i in range(port_rules)
    )
    jump = FirewallRule((_is(nf.DPORT, "20", "21"),), "jump", "", "f2b-vsftpd")
    bans = [
        FirewallRule((_is(nf.SADDR, f"203.0.{i // 250}.{i % 250}"),), "drop", "")
        for i in range(ban_rules)
    ]
    bans.append(FirewallRule((), "return", ""))
    chains = (
        FirewallChain("iptables", "ip", "filter", "INPUT", (jump, *accepts), "input", 0, "drop"),
        FirewallChain("iptables", "ip", "filter", "f2b-vsftpd", tuple(bans)),
    )
    return FirewallFacts(chains, ())


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
                "control_port_ms": median_ms(lambda rs=rs: evaluate(rs, Packet("tcp", dport=21))),
                "passive_101_ms": median_ms(
                    lambda rs=rs: evaluate_ports(rs, Packet("tcp"), 30000, 30100)
                ),
                "ephemeral_range_ms": median_ms(
                    lambda rs=rs: evaluate_ports(rs, Packet("tcp"), 32768, 60999),
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

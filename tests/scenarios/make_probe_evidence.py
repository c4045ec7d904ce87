"""Record the probe scenario evidence from the real lab (run once by hand as root; the JSON
files are committed):

    .venv/bin/python -m tests.scenarios.make_probe_evidence

`probe_client.json`: a client probes www.lab.test (its system resolver is a dnsmasq on the
router) while the target's own firewall drops ping and TCP 9001 — ports 80 and 9001, two
URLs (the site, and a path that redirects to an ICP-filing block page), the target's
resolver as --resolver, an ICMP path. `probe_inside.json`: ``diagnose --only network --save`` on the
target at the same time (its listeners, local connects and firewall).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.lab.probelab import NAME, ROUTER_C4, TARGET4, ProbeLab

HERE = Path(__file__).parent / "evidence"
FIREWALL = """table inet hostfw {
  chain input {
    type filter hook input priority 0; policy accept;
    icmp type echo-request drop
    tcp dport 9001 drop
  }
}
"""


def record() -> None:
    HERE.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, ProbeLab() as lab:
        lab.start_servers(Path(tmp))
        lab.dnsmasq(lab.router, ROUTER_C4, TARGET4, Path(tmp) / "honest.pid")
        lab.wait_listening(lab.router, 53, udp=True)
        lab.set_resolver(ROUTER_C4)
        lab.nft(lab.target, FIREWALL)
        client = lab.hostmedic_in(
            lab.client,
            "probe",
            NAME,
            "--port",
            "80",
            "--port",
            "9001",
            "--url",
            f"http://{NAME}/",
            "--url",
            f"http://{TARGET4}/old",
            "--resolver",
            TARGET4,
            "--path",
            "--cycles",
            "3",
            "--interval",
            "0.3",
            "--timeout",
            "1",
            "--label",
            "office",
            "--save",
            str(HERE / "probe_client.json"),
        )
        inside = lab.hostmedic_in(
            lab.target,
            "diagnose",
            "--only",
            "network",
            "--save",
            str(HERE / "probe_inside.json"),
        )
        print(client.stdout, client.stderr, inside.stdout, inside.stderr)


if __name__ == "__main__":
    record()

"""What every cause score shares: the merged observations, read once per verdict.

:class:`Context` holds the seed's symptoms of each vantage and the judgements several
causes weigh (is the port silently dropped or refused, does the host firewall block it,
does the service listen where clients can reach it). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hostmedic.analysis.reach_observations import REFUSED, TIMEOUT, Observations, Vantage
from hostmedic.analysis.reach_signals import failing_ports, listener_reaches_clients
from hostmedic.analysis.reach_symptoms import Symptoms, peers_of, symptoms_of


@dataclass
class Context:
    """Derived once per verdict: the symptoms of each vantage and shared judgements."""

    obs: Observations
    mine: Symptoms = field(init=False)
    peers: list[tuple[Vantage, Symptoms]] = field(init=False)
    cross: list[tuple[Vantage, Symptoms]] = field(init=False)  # vantages of the other kind

    def __post_init__(self) -> None:
        self.mine = symptoms_of(self.obs.primary)
        peers = peers_of(self.obs)
        self.peers = [(v, symptoms_of(v)) for v in peers]
        self.cross = [
            (v, symptoms_of(v)) for v in self.obs.others if v not in peers and v.role != "target"
        ]

    @property
    def others_work(self) -> bool:
        """Another vantage passes a check this one fails."""
        mine = self.mine.failing_checks()
        return any(mine & s.passing_checks() for _, s in self.peers)

    @property
    def all_fail(self) -> bool:
        return bool(self.peers) and all(s.any for _, s in self.peers) and not self.others_work

    @property
    def everything_fails_everywhere(self) -> bool:
        return self.mine.everything_fails and all(s.everything_fails for _, s in self.peers)

    def controls(self) -> list[Symptoms]:
        gateway = self.obs.target_gateway
        return [symptoms_of(v) for v in self.obs.controls if v.target != gateway]

    @property
    def name(self) -> str:
        return self.obs.primary.name if self.obs.primary else "?"

    @property
    def loss(self) -> int:
        ping = self.obs.primary.ping if self.obs.primary else None
        return round(ping.loss_pct) if ping else 0

    def ports_text(self) -> str:
        """``3306/timeout, 22/refused``: the failing ports of this vantage."""
        return ", ".join(f"{p.port}/{p.state}" for p in self.mine.failing_ports) or "-"

    def control_names(self) -> str:
        gateway = self.obs.target_gateway
        return ", ".join(v.target for v in self.obs.controls if v.target != gateway) or "-"

    def port_states(self) -> set[str]:
        return {p.state for p in self.mine.failing_ports}

    @property
    def silently_dropped(self) -> bool:
        """Failing ports that only time out — and not merely lost to loss the ping shows
        too (a few connects under loss fail at random)."""
        return (
            bool(self.mine.failing_ports)
            and self.port_states() <= {TIMEOUT}
            and self.mine.ping != "loss"
        )

    @property
    def blocked(self) -> bool:
        """Something is refused or dropped, beyond partial loss."""
        return self.silently_dropped or REFUSED in self.port_states() or self.mine.ping == "dead"

    def fingerprints(self) -> set[str]:
        return {f for h in self.mine.block_pages for f in h.fingerprints}

    def firewall_blocks(self) -> list[str]:
        """What the target's own firewall blocks among the failing tests."""
        inside = self.obs.target_inside
        fw = inside.firewall if inside else None
        if fw is None or not fw.read:
            return []
        hits = [f"tcp/{p}" for p in failing_ports(self.obs) if p in fw.blocked_ports]
        if fw.drops_icmp and self.mine.ping in ("dead", "loss"):
            hits.append("icmp")
        if fw.drops_all_inbound:
            hits.append("*")
        hits += list(fw.blocked_sources) + list(fw.denied_services)
        return hits

    def firewall_read(self) -> bool:
        inside = self.obs.target_inside
        return bool(inside and inside.firewall and inside.firewall.read)

    def service_listens(self) -> bool:
        inside = self.obs.target_inside
        ports = failing_ports(self.obs)
        if inside is None or not ports:
            return inside is not None
        return all(listener_reaches_clients(inside, p) for p in ports)

"""Hand-built observations of the fault lab's world, one function per planted fault.

The same addresses as tests/lab/faultlab.py: client1 behind the ISP router, client2 on
another network, the target 203.0.113.10 (VPC address 198.19.1.10), a load-balancer VIP
203.0.113.20 in front of it, peers 198.19.2.20 / 198.19.3.20 in the VPC. Each builder
returns :class:`Observations` as the adapter would produce them from the evidence files
of that scenario: ``outside`` evidence only, or with the separating evidence merged.
"""

from __future__ import annotations

import dataclasses

from hostmedic.analysis.reach_observations import (
    Dns,
    Firewall,
    Hop,
    Http,
    Inside,
    Listener,
    Load,
    Observations,
    Path,
    Ping,
    Port,
    Vantage,
)

T, VIP, GW_T = "203.0.113.10", "203.0.113.20", "198.19.1.1"
URL = "http://www.shop.test/"
PORTS = (80, 3306, 22)


def ping(target: str = T, received: int = 10, sent: int = 10) -> Ping:
    return Ping(target, sent, received, 1.0 if received else None)


def ports(**states: str) -> tuple[Port, ...]:
    """``ports(p3306="timeout")``: every lab port open unless named."""
    return tuple(Port(p, states.get(f"p{p}", "open")) for p in PORTS)


def page(status: int = 200, **kw: object) -> Http:
    fields = {"body_sha256": "good", "scripts": ("/app.js",), **kw}
    return Http(URL, status, **fields)  # type: ignore[arg-type]


def icmp(*hops: tuple[str | None, float], reached: bool = True, target: str = T) -> Path:
    return Path(
        target, "icmp", tuple(Hop(i + 1, a, loss) for i, (a, loss) in enumerate(hops)), reached
    )


def client(name: str = "client1", **kw: object) -> Vantage:
    base: dict[str, object] = {
        "ping": ping(),
        "ports": ports(),
        "http": (page(),),
        "addresses": (T,),
        "paths": (icmp(("198.51.100.1", 0), ("198.18.0.2", 0), (T, 0)),),
    }
    base.update(kw)
    return Vantage(name, "client", T, **base)  # type: ignore[arg-type]


def inside(**kw: object) -> Inside:
    base: dict[str, object] = {
        "host": "target",
        "addresses": ("198.19.1.10", T),
        "listeners": (Listener(80, "0.0.0.0"), Listener(3306, "0.0.0.0"), Listener(22, "::")),
        "loopback": {80: True, 3306: True, 22: True},
        "firewall": Firewall(read=True),
        "gateway": GW_T,
    }
    base.update(kw)
    return Inside(**base)  # type: ignore[arg-type]


def inside_page(**kw: object) -> Vantage:
    return Vantage("target", "target", "127.0.0.1", http=(page(**kw),))


def world(primary: Vantage, *others: Vantage, access: str = "public", **kw: object) -> Observations:
    return Observations(T, access, primary, tuple(others), **kw)  # type: ignore[arg-type]


def merged(obs: Observations, **kw: object) -> Observations:
    return dataclasses.replace(obs, **kw)  # type: ignore[arg-type]


DEAD = {
    "ping": ping(received=0),
    "ports": ports(p80="timeout", p3306="timeout", p22="timeout"),
    "http": (Http(URL, None, error="timeout"),),
}


def healthy() -> tuple[Observations, Observations]:
    o = world(client(), client("client2"))
    return o, merged(o, target_inside=inside())


def service_down() -> tuple[Observations, Observations]:
    o = world(client(ports=ports(p3306="refused")), client("client2", ports=ports(p3306="refused")))
    inner = inside(
        listeners=(Listener(80, "0.0.0.0"), Listener(22, "::")), loopback={80: True, 3306: False}
    )
    return o, merged(o, target_inside=inner)


def service_on_loopback() -> tuple[Observations, Observations]:
    o, _ = service_down()
    inner = inside(listeners=(Listener(80, "0.0.0.0"), Listener(3306, "127.0.0.1")))
    return o, merged(o, target_inside=inner)


def target_port_dropped() -> Observations:
    return world(
        client(ports=ports(p3306="timeout")), client("client2", ports=ports(p3306="timeout"))
    )


def target_host_internal() -> tuple[Observations, Observations]:
    o = target_port_dropped()
    return o, merged(o, target_inside=inside(firewall=Firewall(read=True, blocked_ports=(3306,))))


def target_security_group() -> tuple[Observations, Observations]:
    o = target_port_dropped()
    return o, merged(o, target_inside=inside())


def blackhole() -> tuple[Observations, Observations]:
    cut = {
        **DEAD,
        "paths": (icmp(("198.51.100.1", 0), ("198.18.0.2", 0), (None, 100), reached=False),),
    }
    peer = Vantage("peer1", "peer", "198.19.1.10", ping=ping("198.19.1.10"), ports=ports())
    o = world(client(**cut), client("client2", **DEAD), peer)
    return o, merged(o, target_inside=inside())


def cut_off() -> tuple[Observations, Observations]:
    """Arrears and shield shutdown: dead from everywhere, the VPC included."""
    peer = Vantage("peer1", "peer", "198.19.1.10", ping=ping("198.19.1.10", 0), ports=DEAD["ports"])
    return world(client(**DEAD), client("client2", **DEAD), peer), world(client(**DEAD))


def zombie_shutdown() -> tuple[Observations, Observations]:
    o, _ = cut_off()
    flood = Load(False, 40.0, "eth0", outbound_flood=True, excerpt="pid=4242 name=kworkerds")
    return o, merged(o, load=flood)


def arrears() -> tuple[Observations, Observations]:
    o, _ = cut_off()
    return o, merged(o, console={"instance_state": "stopped_arrears"})


def block_page(kind: str, status: int = 405) -> tuple[Observations, Observations]:
    o = world(
        client(http=(page(status, fingerprints=(kind,), body_sha256="block"),)), client("client2")
    )
    return o, merged(o, target_inside=inside(), from_target=(inside_page(),))


def dns_hijack() -> tuple[Observations, Observations]:
    dns = (Dns("www.shop.test", {"system": ("198.51.100.99",), "203.0.113.53": (T,)}),)
    hijacked = page(
        body_sha256="ads",
        scripts=("/app.js", "http://ads.test/x.js"),
        fingerprints=("injected_ads",),
    )
    o = world(client(http=(hijacked,), dns=dns, addresses=("198.51.100.99",)), client("client2"))
    return o, merged(o, target_inside=inside(), from_target=(inside_page(),))


def isp_injection() -> tuple[Observations, Observations]:
    dns = (Dns("www.shop.test", {"system": (T,), "203.0.113.53": (T,)}),)
    injected = page(body_sha256="inj", scripts=("/app.js", "inline:deadbeef0000"))
    o = world(client(http=(injected,), dns=dns), client("client2"))
    return o, merged(o, target_inside=inside(), from_target=(inside_page(),))


def isp_port_block() -> tuple[Observations, Observations]:
    tcp = Path(
        T, "tcp", (Hop(1, "198.51.100.1"), Hop(2, None, 100.0), Hop(3, None, 100.0)), False, 3306
    )
    paths = (icmp(("198.51.100.1", 0), ("198.18.0.2", 0), (T, 0)), tcp)
    o = world(client(ports=ports(p3306="timeout"), paths=paths), client("client2"))
    return o, merged(o, target_inside=inside())


def lb_whitelist() -> tuple[Observations, Observations]:
    tcp = Path(
        VIP, "tcp", (Hop(1, "198.51.100.1"), Hop(2, "198.18.0.2"), Hop(3, None, 100.0)), False, 80
    )
    paths = (icmp(("198.51.100.1", 0), ("198.18.0.2", 0), (VIP, 0), target=VIP), tcp)
    mine = dataclasses.replace(
        client(
            ports=ports(p80="timeout"),
            paths=paths,
            addresses=(VIP,),
            http=(Http(URL, None, error="timeout"),),
        ),
        target=VIP,
    )
    other = dataclasses.replace(client("client2", addresses=(VIP,)), target=VIP)
    o = Observations(VIP, "public", mine, (other,))
    return o, merged(o, target_inside=inside())


def app_acl() -> tuple[Observations, Observations]:
    o = world(client(http=(page(403, body_sha256="forbidden"),)), client("client2"))
    return o, merged(o, target_inside=inside(), from_target=(inside_page(),))


def client_local_network() -> tuple[Observations, Observations]:
    paths = (icmp((None, 100), (None, 100), (None, 100), reached=False),)
    o = world(client(**{**DEAD, "paths": paths}), client("client2"))
    control = Vantage("client1", "client", "198.51.100.80", ping=ping("198.51.100.80", 0))
    return o, merged(o, controls=(control,))


def shield_source_block() -> tuple[Observations, Observations]:
    paths = (icmp(("198.51.100.1", 0), ("198.18.0.2", 0), (None, 100), reached=False),)
    o = world(client(**{**DEAD, "paths": paths}), client("client2"))
    return o, merged(o, console={"shield_blocks_source": "yes"})


def path_loss() -> tuple[Observations, Observations]:
    paths = (icmp(("198.51.100.1", 0), ("198.18.0.2", 30), (T, 32)),)
    o = world(client(ping=ping(received=14, sent=20), paths=paths), client("client2"))
    return o, merged(o, target_inside=inside())


def bandwidth_saturated() -> tuple[Observations, Observations]:
    lossy = ping(received=16, sent=20)
    o = world(client(ping=lossy), client("client2", ping=ping(received=15, sent=20)))
    load = Load(True, 98.0, "eth0", excerpt="eth0 peak=98% of 10000000")
    return o, merged(o, target_inside=inside(), load=load)


# ---- private access: the source is peer1, peer2 is another server of the VPC


def peer(name: str = "peer1", target: str = "198.19.1.10", **kw: object) -> Vantage:
    base: dict[str, object] = {
        "ping": ping(target),
        "ports": ports(),
        "paths": (icmp(("198.19.2.1", 0), (target, 0), target=target),),
    }
    base.update(kw)
    return Vantage(name, "peer", target, **base)  # type: ignore[arg-type]


def private(primary: Vantage, *others: Vantage, **kw: object) -> Observations:
    return Observations("198.19.1.10", "private", primary, tuple(others), **kw)  # type: ignore[arg-type]


PDEAD = {
    "ping": ping("198.19.1.10", 0),
    "ports": ports(p80="timeout", p3306="timeout", p22="timeout"),
}


def _gw_ok() -> Vantage:
    return Vantage("peer1", "peer", GW_T, ping=ping(GW_T))


def source_security_group() -> tuple[Observations, Observations]:
    paths = (icmp(("198.19.2.1", 0), (None, 100), reached=False, target="198.19.1.10"),)
    p2 = Vantage("peer1", "peer", "198.19.3.20", ping=ping("198.19.3.20", 0))
    o = private(
        peer(**PDEAD, paths=paths), peer("peer2"), controls=(_gw_ok(), p2), target_gateway=GW_T
    )
    source = Inside("peer1", ("198.19.2.20",), firewall=Firewall(read=True), gateway="198.19.2.1")
    return o, merged(o, target_inside=inside(), source_inside=source)


def source_host_internal() -> tuple[Observations, Observations]:
    paths = (icmp((None, 100), (None, 100), reached=False, target="198.19.1.10"),)
    o = private(peer(**PDEAD, paths=paths), peer("peer2"))
    source = Inside("peer1", ("198.19.2.20",), firewall=Firewall(read=True, drops_output=True))
    return o, merged(o, source_inside=source, target_inside=inside())


def private_target_security_group() -> tuple[Observations, Observations]:
    p2 = Vantage("peer1", "peer", "198.19.3.20", ping=ping("198.19.3.20"))
    mine = peer(ports=ports(p3306="timeout"))
    o = private(mine, peer("peer2"), controls=(_gw_ok(), p2), target_gateway=GW_T)
    return o, merged(o, target_inside=inside())


def private_path_loss() -> tuple[Observations, Observations]:
    bad_gw = Vantage("peer1", "peer", GW_T, ping=ping(GW_T, 3))
    paths = (icmp(("198.19.2.1", 0), ("198.19.1.10", 70), target="198.19.1.10"),)
    lossy = tuple(Port(p, "open", loss_pct=60.0) for p in PORTS)
    mine = peer(ping=ping("198.19.1.10", 3), ports=lossy, paths=paths)
    o = private(mine, peer("peer2"), controls=(bad_gw,), target_gateway=GW_T)
    return o, merged(o, target_inside=inside())

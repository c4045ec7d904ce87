"""The reachability lab: a client, a router and a target in network namespaces (hmP-…).

    client 198.51.100.2 ── 198.51.100.1 router 203.0.113.1 ── 203.0.113.10 target
           2001:db8:51::2 ── 2001:db8:51::1        2001:db8:113::1 ── 2001:db8:113::10

The target runs real servers started by the test (nginx-light, a block-page server,
dnsmasq with its own host records and ``--no-resolv``); the router forwards, can drop a
share of packets (nftables ``numgen random mod 100 < N``, no netem) and can run a second,
lying dnsmasq (a DNS hijack). The client's system resolver is set through
``/etc/netns/<client>/resolv.conf``, which ``ip netns exec`` mounts over /etc/resolv.conf,
so the host's own resolver is never asked. The router's ICMP rate limit is off (a
namespace-local sysctl) so that path statistics measure the lab's loss, not the limiter.

Lab addresses only (198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32). Everything — the
processes, the namespaces and the /etc/netns files — is removed by :meth:`destroy`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.lab.netlab import HOSTMEDIC, Lab, _run

CLIENT4, ROUTER_C4, ROUTER_T4, TARGET4 = (
    "198.51.100.2",
    "198.51.100.1",
    "203.0.113.1",
    "203.0.113.10",
)
CLIENT6, ROUTER_C6, ROUTER_T6, TARGET6 = (
    "2001:db8:51::2",
    "2001:db8:51::1",
    "2001:db8:113::1",
    "2001:db8:113::10",
)
HIJACKED = "198.51.100.66"
NAME = "www.lab.test"
PAGES = Path(__file__).with_name("pages.py")


@dataclass
class ProbeLab(Lab):
    """client / router / target namespaces; see the module docstring."""

    prefix: str = "hmP-"
    peers_wanted: int = 0

    @property
    def client(self) -> str:
        return f"{self.prefix}{self.token}-cli"

    @property
    def router(self) -> str:
        return f"{self.prefix}{self.token}-rtr"

    @property
    def target(self) -> str:
        return f"{self.prefix}{self.token}-tgt"

    def build(self) -> None:
        for ns in (self.client, self.router, self.target):
            self._add_ns(ns)
        self._link(
            1, self.client, "eth0", self.router, "c0", (CLIENT4, CLIENT6), (ROUTER_C4, ROUTER_C6)
        )
        self._link(
            2, self.target, "eth0", self.router, "t0", (TARGET4, TARGET6), (ROUTER_T4, ROUTER_T6)
        )
        for ns, gw4, gw6 in (
            (self.client, ROUTER_C4, ROUTER_C6),
            (self.target, ROUTER_T4, ROUTER_T6),
        ):
            _run(["ip", "-n", ns, "route", "add", "default", "via", gw4])
            _run(["ip", "-n", ns, "-6", "route", "add", "default", "via", gw6])
        for setting in (
            "net.ipv4.ip_forward=1",
            "net.ipv6.conf.all.forwarding=1",
            "net.ipv4.icmp_ratelimit=0",
            "net.ipv6.icmp.ratelimit=0",
        ):
            self.exec(self.router, ["sysctl", "-q", "-w", setting])
        self.set_resolver(TARGET4)

    def _link(
        self,
        n: int,
        a: str,
        a_dev: str,
        b: str,
        b_dev: str,
        a_ips: tuple[str, str],
        b_ips: tuple[str, str],
    ) -> None:
        # Fixed MACs and permanent neighbours: no ARP / neighbour discovery on lab links
        # (the namespaces have no link-local addresses, as in netlab).
        a_mac, b_mac = f"02:00:00:50:{n:02x}:01", f"02:00:00:50:{n:02x}:02"
        _run(
            [
                "ip",
                "-n",
                a,
                "link",
                "add",
                a_dev,
                "address",
                a_mac,
                "type",
                "veth",
                "peer",
                "name",
                b_dev,
                "address",
                b_mac,
                "netns",
                b,
            ]
        )
        ends = ((a, a_dev, a_ips, b_ips, b_mac), (b, b_dev, b_ips, a_ips, a_mac))
        for ns, dev, (ip4, ip6), (other4, other6), other_mac in ends:
            _run(["ip", "-n", ns, "addr", "add", f"{ip4}/24", "dev", dev])
            _run(["ip", "-n", ns, "addr", "add", f"{ip6}/64", "dev", dev, "nodad"])
            for other in (other4, other6):
                _run(
                    [
                        "ip",
                        "-n",
                        ns,
                        "neigh",
                        "replace",
                        other,
                        "lladdr",
                        other_mac,
                        "nud",
                        "permanent",
                        "dev",
                        dev,
                    ]
                )
            _run(["ip", "-n", ns, "link", "set", dev, "up"])

    # --- configuration ---------------------------------------------------------------------

    def set_resolver(self, address: str) -> None:
        """The client's system resolver (``/etc/netns/<client>/resolv.conf``)."""
        folder = Path("/etc/netns") / self.client
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "resolv.conf").write_text(f"nameserver {address}\noptions timeout:1 attempts:1\n")

    def nft(self, ns: str, script: str) -> None:
        """Load an nftables script into ``ns`` (its own table, flushed by :meth:`clear_nft`)."""
        done = subprocess.run(
            ["ip", "netns", "exec", ns, "nft", "-f", "-"],
            input=script,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"nft in {ns}: {done.stderr}")

    def clear_nft(self, ns: str) -> None:
        self.exec(ns, ["nft", "flush", "ruleset"])

    def loss(self, percent: int) -> None:
        """Drop ``percent`` % of the packets the router forwards, in each direction."""
        self.nft(
            self.router,
            f"""table inet hmp_loss {{
  chain forward_loss {{
    type filter hook forward priority 0; policy accept;
    numgen random mod 100 < {percent} drop
  }}
}}""",
        )

    # --- servers -----------------------------------------------------------------------------

    def start_servers(self, tmp: Path) -> None:
        """nginx on the target (:80 site, :443 with a self-signed certificate, :9001), the
        page server (:8088), and dnsmasq on the target with the honest record."""
        www = tmp / "www"
        www.mkdir(exist_ok=True)
        (www / "index.html").write_text(
            "<!doctype html><html><head><title>Lab site</title>"
            '<script src="/app.js"></script></head><body>hello</body></html>\n'
        )
        (www / "app.js").write_text("console.log('lab');\n")
        # a self-signed certificate: what an interceptor (or a forgotten default) presents
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=www.lab.test",
                "-keyout",
                str(tmp / "key.pem"),
                "-out",
                str(tmp / "cert.pem"),
            ],
            capture_output=True,
            check=True,
            timeout=60,
        )
        conf = tmp / "nginx.conf"
        conf.write_text(f"""user root;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi; uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
    server {{
        listen {TARGET4}:80; listen [{TARGET6}]:80;
        root {www};
        location = /old {{ return 302 http://{TARGET4}:8088/beian; }}
    }}
    server {{ listen {TARGET4}:9001; root {www}; }}
    server {{
        listen {TARGET4}:443 ssl; root {www};
        ssl_certificate {tmp}/cert.pem; ssl_certificate_key {tmp}/key.pem;
    }}
}}
""")
        nginx = ["nginx", "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(conf)]
        self.spawn(self.target, [*nginx, "-g", "daemon off;"])
        self.page_server(self.target, TARGET4, 8088)
        self.dnsmasq(self.target, TARGET4, TARGET4, tmp / "dns-target.pid")
        for port in (80, 443, 9001):
            self.wait_listening(self.target, port)
        self.wait_listening(self.target, 53, udp=True)

    def page_server(self, ns: str, address: str, port: int) -> subprocess.Popen[str]:
        """tests/lab/pages.py listening on ``address:port`` in ``ns``."""
        return self.spawn(ns, [sys.executable, str(PAGES), address, str(port)], ready_line="READY")

    def dnsmasq(self, ns: str, listen: str, answer: str, pid_file: Path) -> subprocess.Popen[str]:
        """A dnsmasq that knows only ``NAME`` → ``answer`` and asks nobody else."""
        argv = [
            "dnsmasq",
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            f"--listen-address={listen}",
            "--except-interface=lo",
            f"--host-record={NAME},{answer}",
            "--local=/lab.test/",
            "--user=root",
            f"--pid-file={pid_file}",
            "--log-facility=/dev/null",
        ]
        return self.spawn(ns, argv)

    # --- running hostmedic ---------------------------------------------------------------

    def hostmedic_in(
        self, ns: str, *args: str, user: str | None = None, timeout: float = 90.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the real CLI inside ``ns`` (as ``user`` when given) and wait for it."""
        argv = ["ip", "netns", "exec", ns]
        if user is not None:
            argv += ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"]
        env = {**os.environ, "LANG": "C.UTF-8", "COLUMNS": "200", "NO_COLOR": "1"}
        return subprocess.run(
            [*argv, str(HOSTMEDIC), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )

    def destroy(self) -> None:
        super().destroy()
        shutil.rmtree(Path("/etc/netns") / self.client, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.rmdir("/etc/netns")  # only when no other lab uses it

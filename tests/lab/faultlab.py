"""The fault lab of the reachability runbook (seed 004): a small internet in namespaces.

::

    client1 ── isp ──────────┐                         ┌── target (web :80, db :3306, ssh :22)
    (198.51.100.2)  (router, │                         │   198.19.1.10 + public 203.0.113.10
                    dnsmasq, ├── edge ─────────────────┤
                    sites)   │   (cloud edge + VPC     ├── peer1 198.19.2.20 (gw 198.19.2.1)
    client2 ─────────────────┘    router, dnsmasq,     └── peer2 198.19.3.20 (gw 198.19.3.1)
    (198.51.100.34, another        LB VIP 203.0.113.20)
     network)

Lab addresses only (198.18.0.0/15, 198.51.100.0/24, 203.0.113.0/24). client1 resolves
through the ISP's dnsmasq (which can hijack), everyone else through the cloud's
203.0.113.53 (``/etc/netns/<ns>/resolv.conf``, removed on destroy). Faults are nftables
tables named ``hmT_fault`` in the namespace concerned (security group, blackhole, shield
block and LB whitelist on the edge; ISP blocks on the isp router; host firewall on the
target; a source's own firewall on peer1; loss with ``numgen random``), plus service
actions (stop the db port, nginx ``deny``, hijacking dnsmasq, block-page proxies).
:meth:`FaultLab.clear` removes every fault; :meth:`FaultLab.destroy` removes everything
(processes by PID, then whatever still runs inside a lab namespace, then the namespaces).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tests.lab.netlab import stop_group

PREFIX = "hmT-"
HOSTMEDIC = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "hostmedic"
HELPER = Path(__file__).resolve().parent / "fault_http.py"
T, T_VPC, VIP, GW_T = "203.0.113.10", "198.19.1.10", "203.0.113.20", "198.19.1.1"
C1, C2, P1, P2 = "198.51.100.2", "198.51.100.34", "198.19.2.20", "198.19.3.20"
ISP_GW, OTHER_SITE, HIJACK, DNS = "198.51.100.1", "198.51.100.80", "198.51.100.99", "203.0.113.53"
SITE = "www.shop.test"
NAMESPACES = ("c1", "c2", "isp", "edge", "tgt", "p1", "p2")
# (namespace, device, addresses) at each end of a veth pair
LINKS = (
    (("c1", "eth0", ["198.51.100.2/28"]), ("isp", "c1", ["198.51.100.1/28"])),
    (("isp", "wan", ["198.18.0.1/30"]), ("edge", "isp", ["198.18.0.2/30"])),
    (("c2", "eth0", ["198.51.100.34/28"]), ("edge", "c2", ["198.51.100.33/28"])),
    (("tgt", "eth0", ["198.19.1.10/24", "203.0.113.10/32"]), ("edge", "tgt", ["198.19.1.1/24"])),
    (("p1", "eth0", ["198.19.2.20/24"]), ("edge", "p1", ["198.19.2.1/24"])),
    (("p2", "eth0", ["198.19.3.20/24"]), ("edge", "p2", ["198.19.3.1/24"])),
)
ROUTES = {
    "c1": [["default", "via", ISP_GW]],
    "c2": [["default", "via", "198.51.100.33"]],
    "isp": [["default", "via", "198.18.0.2"]],
    "edge": [["198.51.100.0/24", "via", "198.18.0.1"], [f"{T}/32", "dev", "tgt"]],
    "tgt": [["default", "via", GW_T]],
    "p1": [["default", "via", "198.19.2.1"]],
    "p2": [["default", "via", "198.19.3.1"]],
}
LOCAL_ADDRESSES = {"isp": [OTHER_SITE, HIJACK], "edge": [DNS, VIP]}
RESOLVER = {"c1": ISP_GW}  # everyone else asks the cloud's DNS
# The load balancer: VIP listeners 80 and 3306 → the target (in the topology, not a fault).
LB_RULES = f"""table ip hmT_lb {{
    chain pre {{
        type nat hook prerouting priority dstnat; policy accept;
        ip daddr {VIP} tcp dport {{ 80, 3306 }} dnat to {T_VPC}
    }}
}}"""


class LabError(RuntimeError):
    """The lab could not be built or driven (a harness problem, not a verdict)."""


def _run(argv: Sequence[str], timeout: float = 30.0, check: bool = True) -> str:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update({"LANG": "C.UTF-8", "COLUMNS": "120", "NO_COLOR": "1"})
    env.pop("LC_ALL", None)
    return env


def sweep_stale(older_than_s: float = 600.0) -> None:
    """Remove what a SIGKILLed run left: old ``hmT-`` namespaces and their resolv.conf."""
    for line in _run(["ip", "netns", "list"]).splitlines():
        name = line.split()[0] if line.strip() else ""
        if not name.startswith(PREFIX):
            continue
        with contextlib.suppress(OSError):
            if time.time() - os.stat(f"/run/netns/{name}").st_mtime > older_than_s:
                FaultLab.kill_inside(name)
                _run(["ip", "netns", "del", name], check=False)
                shutil.rmtree(f"/etc/netns/{name}", ignore_errors=True)


class FaultLab:
    """The topology above; faults come and go, the topology stays for a test module."""

    def __init__(self, workdir: Path) -> None:
        self.token = secrets.token_hex(2)
        self.workdir = workdir
        self._namespaces: list[str] = []
        self._procs: dict[str, subprocess.Popen[str]] = {}
        self._fault_ns: set[str] = set()

    def ns(self, short: str) -> str:
        return f"{PREFIX}{self.token}-{short}"

    # --- building -------------------------------------------------------------------------

    def build(self) -> None:
        for short in NAMESPACES:
            name = self.ns(short)
            _run(["ip", "netns", "add", name])
            self._namespaces.append(name)
            _run(["ip", "-n", name, "link", "set", "lo", "up"])
            for setting in ("net.ipv6.conf.all.disable_ipv6=1", "net.ipv4.icmp_ratelimit=0"):
                _run(["ip", "netns", "exec", name, "sysctl", "-q", "-w", setting])
            folder = Path(f"/etc/netns/{name}")
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "resolv.conf").write_text(f"nameserver {RESOLVER.get(short, DNS)}\n")
        for short in ("isp", "edge"):
            _run(
                [
                    "ip",
                    "netns",
                    "exec",
                    self.ns(short),
                    "sysctl",
                    "-q",
                    "-w",
                    "net.ipv4.ip_forward=1",
                ]
            )
        for (a, a_dev, a_addrs), (b, b_dev, b_addrs) in LINKS:
            _run(["ip", "-n", self.ns(a), "link", "add", a_dev, "type", "veth",
                  "peer", "name", b_dev, "netns", self.ns(b)])  # fmt: skip
            for short, dev, addrs in ((a, a_dev, a_addrs), (b, b_dev, b_addrs)):
                for addr in addrs:
                    _run(["ip", "-n", self.ns(short), "addr", "add", addr, "dev", dev])
                _run(["ip", "-n", self.ns(short), "link", "set", dev, "up"])
        for short, addrs in LOCAL_ADDRESSES.items():
            for addr in addrs:
                _run(["ip", "-n", self.ns(short), "addr", "add", f"{addr}/32", "dev", "lo"])
        for short, routes in ROUTES.items():
            for route in routes:
                _run(["ip", "-n", self.ns(short), "route", "add", *route])
        self.nft("edge", LB_RULES, table="hmT_lb", family="ip", fault=False)
        self._start_services()

    def _start_services(self) -> None:
        site = self.workdir / "site"
        site.mkdir(exist_ok=True)
        from tests.lab.fault_http import SHOP

        (site / "index.html").write_text(SHOP)
        (site / "app.js").write_text("console.log('shop');\n")
        (self.workdir / "acl.conf").write_text("")
        self._nginx_conf(site)
        self.spawn("nginx", "tgt", ["nginx", "-p", str(self.workdir), "-c",
                   str(self.workdir / "nginx.conf"), "-g", "daemon off;"])  # fmt: skip
        self.start_db()
        self.spawn("ssh", "tgt", self._helper("tcp", "--port", "22", "--banner", "SSH-2.0-lab"))
        self.start_dns("isp", ISP_GW, T)
        self.start_dns("edge", DNS, T)
        self.spawn("other", "isp", self._helper("static", "--bind", OTHER_SITE, "--port", "80",
                   "--page", "other"))  # fmt: skip
        self.spawn("hijacked", "isp", self._helper("static", "--bind", HIJACK, "--port", "80",
                   "--page", "hijacked"))  # fmt: skip
        for short, host, port in (("tgt", T, 80), ("tgt", T, 3306), ("tgt", T, 22),
                                  ("edge", DNS, 53), ("isp", ISP_GW, 53), ("isp", HIJACK, 80)):  # fmt: skip
            self.wait_port(short, host, port)

    def _nginx_conf(self, site: Path) -> None:
        w = self.workdir
        (w / "nginx.conf").write_text(
            f"""user root;
worker_processes 1;
pid {w}/nginx.pid;
error_log {w}/nginx-error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {w}/body;
    proxy_temp_path {w}/proxy;
    fastcgi_temp_path {w}/fastcgi;
    uwsgi_temp_path {w}/uwsgi;
    scgi_temp_path {w}/scgi;
    default_type text/html;
    server {{
        listen 80;
        root {site};
        include {w}/acl.conf;
        location / {{ try_files $uri /index.html; }}
    }}
}}
"""
        )

    def _helper(self, *args: str) -> list[str]:
        return [sys.executable, str(HELPER), *args, "--seconds", "900"]

    def start_db(self, bind: str = "0.0.0.0") -> None:
        self.stop("db")
        self.spawn("db", "tgt", self._helper("tcp", "--bind", bind, "--port", "3306",
                   "--banner", "5.7.0-lab-db"))  # fmt: skip
        self.wait_port("tgt", "127.0.0.1" if bind.startswith("127.") else T, 3306)

    def start_dns(self, short: str, listen: str, answer: str) -> None:
        self.stop(f"dns-{short}")
        self.spawn(f"dns-{short}", short, ["dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null",
                   "--no-resolv", "--no-hosts", "--bind-interfaces", f"--listen-address={listen}",
                   "--user=root", f"--pid-file={self.workdir}/dns-{short}.pid",
                   f"--address=/{SITE}/{answer}"])  # fmt: skip

    def wait_port(self, short: str, host: str, port: int, timeout_s: float = 10.0) -> None:
        """Until something accepts on host:port inside the namespace (UDP 53: bound)."""
        probe = (
            "import socket,sys,time\n"
            f"end=time.time()+{timeout_s}\n"
            "while time.time()<end:\n"
            "    try:\n"
            f"        socket.create_connection(('{host}',{port}),0.5).close(); sys.exit(0)\n"
            "    except OSError: time.sleep(0.05)\n"
            "sys.exit(1)\n"
        )
        done = subprocess.run(["ip", "netns", "exec", self.ns(short), sys.executable, "-c", probe],
                              capture_output=True, timeout=timeout_s + 5, check=False)  # fmt: skip
        if done.returncode != 0:
            raise LabError(f"nothing answers on {host}:{port} in {short}")

    # --- processes ------------------------------------------------------------------------

    def spawn(self, key: str, short: str, argv: Sequence[str]) -> subprocess.Popen[str]:
        """Start ``argv`` inside namespace ``short`` under ``key`` (killed by PID later)."""
        self.stop(key)
        log = open(self.workdir / f"{key}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns(short), *argv], text=True,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=_clean_env())  # fmt: skip
        log.close()
        self._procs[key] = proc
        return proc

    def stop(self, key: str) -> None:
        proc = self._procs.pop(key, None)
        if proc is not None:
            stop_group(proc, 3.0)

    def signal(self, key: str, sig: int) -> None:
        proc = self._procs[key]
        if proc.poll() is None:
            os.kill(proc.pid, sig)

    @staticmethod
    def kill_inside(name: str) -> None:
        # Only processes inside a namespace this lab created: all of them are ours.
        for _ in range(3):
            out = _run(["ip", "netns", "pids", name], check=False)
            pids = [int(p) for p in out.split()]
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)

    def destroy(self) -> None:
        for key in list(self._procs):
            self.stop(key)
        for name in reversed(self._namespaces):
            self.kill_inside(name)
            _run(["ip", "netns", "del", name], check=False)
            shutil.rmtree(f"/etc/netns/{name}", ignore_errors=True)
        self._namespaces.clear()

    # --- faults ---------------------------------------------------------------------------

    def nft(
        self, short: str, ruleset: str, table: str = "hmT_fault", family: str = "inet",
        fault: bool = True,
    ) -> None:  # fmt: skip
        """Load ``ruleset`` (one nft table) inside ``short``, replacing a table of that name."""
        _run(["ip", "netns", "exec", self.ns(short), "nft", "delete", "table", family, table],
             check=False)  # fmt: skip
        done = subprocess.run(["ip", "netns", "exec", self.ns(short), "nft", "-f", "-"],
                              input=ruleset, capture_output=True, text=True, timeout=10,
                              check=False)  # fmt: skip
        if done.returncode != 0:
            raise LabError(f"nft in {short}: {done.stderr.strip()}\n{ruleset}")
        if fault:
            self._fault_ns.add(short)

    def filter(self, short: str, hook: str, *rules: str, priority: str = "filter") -> None:
        """A fault table with one base chain at ``hook`` holding ``rules``."""
        self.chains(short, {hook: rules}, priority)

    def chains(
        self, short: str, hooks: dict[str, Sequence[str]], priority: str = "filter",
        kind: str = "filter",
    ) -> None:  # fmt: skip
        """A fault table with one base chain per hook."""
        chains = "".join(
            f"    chain {hook} {{\n        type {kind} hook {hook} priority {priority}; "
            f"policy accept;\n" + "".join(f"        {r}\n" for r in rules) + "    }\n"
            for hook, rules in hooks.items()
        )
        self.nft(short, f"table inet hmT_fault {{\n{chains}}}\n")

    def redirect(self, short: str, match: str, port: int) -> None:
        """Send matching web traffic crossing ``short`` to a local proxy on ``port``."""
        self.chains(short, {"prerouting": [f"{match} redirect to :{port}"]}, "dstnat", "nat")

    def clear(self) -> None:
        """Remove every fault: fault tables, per-test processes, changed services."""
        for short in self._fault_ns:
            _run(["ip", "netns", "exec", self.ns(short), "nft", "delete", "table", "inet",
                  "hmT_fault"], check=False)  # fmt: skip
        self._fault_ns.clear()
        for key in [k for k in self._procs if k.startswith("test-")]:
            self.stop(key)
        if (
            "db" not in self._procs
            or self._procs["db"].poll() is not None
            or self._db_bind != "0.0.0.0"
        ):
            self._db_bind = "0.0.0.0"
            self.start_db()
        if (self.workdir / "acl.conf").read_text():
            self.set_nginx_acl("")
        if self._dns_hijacked:
            self.start_dns("isp", ISP_GW, T)
            self.wait_port("isp", ISP_GW, 53)
            self._dns_hijacked = False

    _db_bind = "0.0.0.0"
    _dns_hijacked = False

    def stop_db(self) -> None:
        self.stop("db")

    def db_on_loopback(self) -> None:
        self._db_bind = "127.0.0.1"
        self.start_db("127.0.0.1")

    def set_nginx_acl(self, text: str) -> None:
        (self.workdir / "acl.conf").write_text(text)
        self.signal("nginx", signal.SIGHUP)
        time.sleep(0.5)  # the master re-reads its configuration and starts new workers

    def hijack_dns(self) -> None:
        self.start_dns("isp", ISP_GW, HIJACK)
        self.wait_port("isp", ISP_GW, 53)
        self._dns_hijacked = True

    def proxy(self, short: str, port: int, *rules: str) -> None:
        """A block-page / injecting proxy in ``short`` in front of the target's web port."""
        args = ["proxy", "--port", str(port), "--upstream", f"{T}:80"]
        for rule in rules:
            args += ["--rule", rule]
        self.spawn(f"test-proxy-{short}", short, self._helper(*args))
        self.wait_port(short, "127.0.0.1", port)

    # --- running hostmedic ----------------------------------------------------------------

    def hostmedic(
        self, short: str | None, args: Sequence[str], timeout_s: float = 90.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the real CLI inside namespace ``short`` (None: here; for --offline only)."""
        prefix = ["ip", "netns", "exec", self.ns(short)] if short else []
        return subprocess.run([*prefix, str(HOSTMEDIC), *args], capture_output=True, text=True,
                              timeout=timeout_s, env=_clean_env(), check=False)  # fmt: skip

    def start_hostmedic(self, short: str, args: Sequence[str]) -> subprocess.Popen[str]:
        return subprocess.Popen(["ip", "netns", "exec", self.ns(short), str(HOSTMEDIC), *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=_clean_env())  # fmt: skip

    def verdict(self, target: str, evidence: Sequence[Path], *extra: str) -> dict:
        """``hostmedic probe TARGET --offline --evidence … --json``: the verdict object."""
        args = ["probe", target, "--offline", "--json", *extra]
        for path in evidence:
            args += ["--evidence", str(path)]
        done = self.hostmedic(None, args, timeout_s=60)
        if done.returncode not in (0, 1, 2):
            raise LabError(f"probe --offline exited {done.returncode}: {done.stderr[-2000:]}")
        return json.loads(done.stdout)["verdict"]

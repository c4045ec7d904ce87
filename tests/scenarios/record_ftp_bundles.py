"""Record the FTP scenario bundles from a real world (run once by hand, as root; the JSON
files are committed):

    .venv/bin/python -m tests.scenarios.record_ftp_bundles

A lab namespace runs vsftpd (the lab test's configuration, in /tmp/hmV-ftp-scenario) behind
an nftables table. ``ftp-broken.json``: half the passive range closed, the two allowed
clients connected and a third refused with 421. ``ftp-healthy.json``: the whole range
open, no session. Each is ``hostmedic diagnose --only ftp --save`` inside the namespace.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.lab.netlab import HOSTMEDIC, Lab
from tests.lab.test_ftp_lab import _HOLD_TWO_SESSIONS, PASSIVE, SERVER_IP, firewall

HERE = Path(__file__).parent / "bundles"
WORLD = Path("/tmp/hmV-ftp-scenario")


def save(lab: Lab, name: str) -> None:
    target = HERE / name
    subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            lab.srv,
            str(HOSTMEDIC),
            "diagnose",
            "--only",
            "ftp",
            "--save",
            str(target),
        ],
        capture_output=True,
        check=False,
    )
    print("wrote", target)


def main() -> None:
    shutil.rmtree(WORLD, ignore_errors=True)
    (WORLD / "empty").mkdir(parents=True)
    (WORLD / "anon").mkdir()
    config = WORLD / "vsftpd.conf"
    config.write_text(
        f"listen=YES\nlisten_address={SERVER_IP}\nbackground=NO\nanonymous_enable=YES\n"
        f"no_anon_password=YES\nanon_root={WORLD / 'anon'}\nlocal_enable=NO\n"
        f"secure_chroot_dir={WORLD / 'empty'}\nseccomp_sandbox=NO\npasv_enable=YES\n"
        f"pasv_min_port={PASSIVE[0]}\npasv_max_port={PASSIVE[1]}\npasv_address={SERVER_IP}\n"
        f"connect_from_port_20=YES\nmax_clients=2\nxferlog_enable=YES\n"
        f"vsftpd_log_file={WORLD / 'vsftpd.log'}\n"
    )
    with Lab(peers_wanted=1, prefix="hmV-") as lab:
        lab.spawn(lab.srv, ["/usr/sbin/vsftpd", str(config)])
        lab.wait_listening(lab.srv, 21)
        firewall(lab, passive=f"tcp dport {PASSIVE[0]}-{PASSIVE[1]} accept")
        save(lab, "ftp-healthy.json")
        firewall(lab, passive="tcp dport 30000-30049 accept")
        holder = subprocess.Popen(
            ["ip", "netns", "exec", lab.peer(1).ns, sys.executable, "-c", _HOLD_TWO_SESSIONS],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3):
            holder.stdout.readline()  # type: ignore[union-attr]
        time.sleep(0.2)
        save(lab, "ftp-broken.json")
        holder.communicate("\n", timeout=10)
    shutil.rmtree(WORLD, ignore_errors=True)


if __name__ == "__main__":
    main()

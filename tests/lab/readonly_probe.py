"""Run inside fresh mount + PID namespaces (see test_diagnose_readonly.py): put a private
copy of /etc in place, start a few processes, snapshot files / firewall / processes, run
every ``hostmedic diagnose`` category, snapshot again, and write both snapshots as JSON.

Inside its own PID namespace the process list is exactly this world's, and the private
/etc copy cannot be changed by anything running elsewhere on the machine: whatever
differs between the snapshots was done by hostmedic.

    python3 readonly_probe.py ETC_COPY TREE HOSTMEDIC OUT
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time


def files(top: str) -> dict[str, list[object]]:
    """path → [mode, uid, gid, size, mtime_ns, sha256 or link target]."""
    found: dict[str, list[object]] = {}
    for folder, dirs, names in os.walk(top):
        for name in sorted(dirs + names):
            path = os.path.join(folder, name)
            st = os.lstat(path)
            row: list[object] = [st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns]
            if os.path.islink(path):
                row.append(os.readlink(path))
            elif os.path.isfile(path):
                with open(path, "rb") as f:
                    row.append(hashlib.sha256(f.read()).hexdigest())
            found[path] = row
    return found


def processes() -> list[list[object]]:
    """[pid, start time, cmdline] of every process in this PID namespace but this one."""
    rows = []
    for name in sorted(os.listdir("/proc"), key=lambda n: int(n) if n.isdigit() else 0):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                start = f.read().rsplit(b")", 1)[1].split()[19].decode()
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        rows.append([int(name), start, cmdline])
    return rows


def command(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    # packet counters move with any traffic and iptables-save stamps the time in comments;
    # the rules are what must not change
    text = "".join(line for line in (done.stdout + done.stderr).splitlines(True) if line[:1] != "#")
    return re.sub(r"\[\d+:\d+\]", "[counters]", text)


def snapshot(tree: str) -> dict[str, object]:
    return {
        "etc": files("/etc"),
        "tree": files(tree),
        "nft": command("nft", "list", "ruleset"),
        "iptables": command("iptables-save"),
        "ip6tables": command("ip6tables-save"),
        "processes": processes(),
        "state_dir": os.path.exists("/var/lib/hostmedic"),
    }


def main() -> None:
    etc_copy, tree, hostmedic, out = sys.argv[1:5]
    subprocess.run(["mount", "--bind", etc_copy, "/etc"], check=True)
    sleepers = [subprocess.Popen(["sleep", "600"]) for _ in range(2)]
    time.sleep(0.2)
    before = snapshot(tree)
    runs = {}
    diagnose = [hostmedic, "diagnose", "--duration", "1", "--json"]
    usage = subprocess.run([hostmedic, "diagnose", "--help"], capture_output=True, text=True)
    for name, argv in (("live", diagnose), ("root", [*diagnose, "--root", tree])):
        if name == "root" and "--root" not in usage.stdout:
            continue  # the CLI has no --root yet: the planted tree is still checked
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        runs[name] = [done.returncode, done.stderr[-2000:]]
    after = snapshot(tree)
    for proc in sleepers:
        proc.kill()
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"before": before, "after": after, "runs": runs}, f)


if __name__ == "__main__":
    main()

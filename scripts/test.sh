#!/usr/bin/env bash
# Install everything the tests need on a Debian 12 machine as root, then run the whole
# suite (unit, scenario and lab tests) plus lint. This is what CI runs (.ci/run).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

if [ "$(id -u)" -ne 0 ]; then
  echo "test.sh: run as root (lab tests build network namespaces and load eBPF)" >&2
  exit 1
fi
apt_packages=(python3-venv iproute2 iperf3 nftables iptables nethogs iftop iputils-ping
              tcpdump ethtool nginx-light procps mariadb-server mariadb-client postgresql e2fsprogs
              redis-server gcc vsftpd dnsmasq)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# nginx-light's package starts a system nginx; the tests start their own, so stop it.
systemctl disable --now nginx >/dev/null 2>&1 || true
# same for the databases: the health lab starts private instances on private sockets,
# the security lab private Redis and MariaDB instances
systemctl disable --now mariadb postgresql redis-server >/dev/null 2>&1 || true
# and vsftpd: the FTP lab starts its own, in a namespace
systemctl disable --now vsftpd >/dev/null 2>&1 || true
systemctl disable --now dnsmasq >/dev/null 2>&1 || true

/usr/bin/python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip
.venv/bin/pip install --quiet -e ".[test]"

lint_targets=(src tests)
[ -d benchmarks ] && lint_targets+=(benchmarks)
.venv/bin/ruff check "${lint_targets[@]}"
.venv/bin/ruff format --check "${lint_targets[@]}"
.venv/bin/mypy
exec .venv/bin/pytest -q "$@"

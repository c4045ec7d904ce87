#!/usr/bin/env bash
# Install hostmedic on a Debian/Ubuntu machine as root: Debian's Python venv support,
# a virtualenv in /opt/hostmedic with hostmedic and its Python dependencies from PyPI,
# and /usr/local/bin/hostmedic. Safe to run again (it upgrades in place).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix="${HOSTMEDIC_PREFIX:-/opt/hostmedic}"

if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root (it installs Debian packages and /usr/local/bin/hostmedic)" >&2
  exit 1
fi
if ! /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
/usr/bin/python3 -m venv "$prefix"
"$prefix/bin/pip" install --quiet --upgrade pip
"$prefix/bin/pip" install --quiet "$here"
ln -sf "$prefix/bin/hostmedic" /usr/local/bin/hostmedic
echo "hostmedic installed: $(/usr/local/bin/hostmedic --version | head -1)"

#!/usr/bin/env bash
# Installs what tapewatch and its test suite need on a fresh Debian machine with Python 3.11:
# the Debian servers the tests start (redis-server, prometheus + promtool, alertmanager + amtool)
# and the Python package with its test extras. Idempotent; apt is skipped when all binaries exist.
set -euo pipefail
PY=${PYTHON:-python3}
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
if [ "${1:-}" = "--test" ] && [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
extras=""; [ "${1:-}" = "--test" ] && extras="[test,bench]"
$PY -m pip install -q --disable-pip-version-check -e ".${extras}"

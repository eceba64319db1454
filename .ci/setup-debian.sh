#!/usr/bin/env bash
# Debian packages the tests use: redis-server (store suite, production mode), chromium (widget
# and @n8n/chat browser tests), nginx (reverse-proxy test), nodejs (the widget's Markdown unit
# test, tests/unit/test_widget_markdown.py), prometheus + promtool (the alert rules' unit tests
# and the live check of every shipped PromQL expression). Idempotent; needs root or sudo.
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v node >/dev/null 2>&1 || need+=(nodejs)
{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || need+=(prometheus)
if [ ${#need[@]} -eq 0 ]; then
  echo "Debian packages present"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
# Debian's prometheus package enables a system service (and its node exporter); the tests run
# their own Prometheus on a free loopback port and need neither.
if command -v systemctl >/dev/null 2>&1; then
  for unit in prometheus prometheus-node-exporter; do
    if systemctl is-active --quiet "$unit" 2>/dev/null; then $sudo systemctl stop "$unit" || true; fi
  done
fi

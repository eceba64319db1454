#!/usr/bin/env bash
# Debian packages the tests use: redis-server (store suite, production mode), chromium (widget
# and @n8n/chat browser tests), nginx (reverse-proxy test), nodejs (the widget's Markdown unit
# test, tests/unit/test_widget_markdown.py). Idempotent; needs root or sudo.
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v node >/dev/null 2>&1 || need+=(nodejs)
if [ ${#need[@]} -eq 0 ]; then
  echo "Debian packages present"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"

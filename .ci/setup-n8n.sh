#!/usr/bin/env bash
# Install n8n 1.123.x (for tests/e2e) into a cache outside the repository, once.
#
# Idempotent and safe to interrupt: the install goes into a fresh temporary directory beside the
# cache and is renamed into place only after `n8n --version` works, so the cache directory either
# holds a complete install or does not exist. A lock keeps two runs from installing at once.
# The first install takes about 4 minutes and 1.6 GB; later runs return at once.
set -euo pipefail

N8N_VERSION="1.123.81"
cache_root="${QUARTPROXY_CACHE:-$HOME/.cache/quartproxy}"
target="$cache_root/n8n"
bin="$target/node_modules/.bin/n8n"

if [[ -x "$bin" ]]; then
  exit 0
fi

command -v node >/dev/null || { echo "setup-n8n: node (>= 20) is required" >&2; exit 1; }
command -v npm >/dev/null || { echo "setup-n8n: npm is required" >&2; exit 1; }
mkdir -p "$cache_root"

exec 9>"$cache_root/n8n.lock"
flock 9
if [[ -x "$bin" ]]; then  # another run finished the install while we waited for the lock
  exit 0
fi

tmp="$(mktemp -d "$cache_root/n8n.partial.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# xlsx: a dependency points at a non-registry URL; isolated-vm: the default fails to build on Node 20.
cat >"$tmp/package.json" <<EOF
{"name":"qp-n8n-cache","private":true,"dependencies":{"n8n":"$N8N_VERSION"},"overrides":{"xlsx":"0.18.5","isolated-vm":"5.0.4"}}
EOF
echo "setup-n8n: installing n8n $N8N_VERSION into $target (takes a few minutes)" >&2
(cd "$tmp" && npm install --no-audit --no-fund --omit=optional --loglevel=error >&2)
# n8n writes its settings under N8N_USER_FOLDER; keep this check away from $HOME.
N8N_USER_FOLDER="$tmp/.check" "$tmp/node_modules/.bin/n8n" --version >/dev/null
rm -rf "$tmp/.check"

rm -rf "$target"  # a leftover from an install made some other way without its n8n binary
mv "$tmp" "$target"
trap - EXIT
echo "setup-n8n: n8n $N8N_VERSION ready in $target" >&2

#!/usr/bin/env bash
# Installs everything the tests need, then runs every check: lint, types, and the whole test
# suite (unit, integration, stores on real Redis/SQLite, real nginx, headless Chromium, and the
# end-to-end suite against a real n8n). Idempotent; heavy installs are cached outside the repo
# in ${QUARTPROXY_CACHE:-~/.cache/quartproxy} and reused.
#
#   bash scripts/test.sh            everything
#   bash scripts/test.sh -k name    extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
export QUARTPROXY_CACHE="${QUARTPROXY_CACHE:-$HOME/.cache/quartproxy}"
mkdir -p "$QUARTPROXY_CACHE"

step() { printf '\n== %s ==\n' "$*"; }

step "Debian packages (redis-server, chromium, nginx)"
bash .ci/setup-debian.sh

step "Python venv (.venv, $(python3 --version))"
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt

for setup in .ci/setup-n8n.sh .ci/setup-n8n-chat.sh; do
  if [ -f "$setup" ]; then step "$setup"; bash "$setup"; fi
done

step "ruff"
.venv/bin/ruff check .
step "mypy"
.venv/bin/mypy

step "pytest (Python 3.11: everything)"
.venv/bin/python -m pytest tests -q "$@"

# The same code must work on Python 3.13 (other Quart / quart-trio versions): run the fast
# suites there too when a 3.13 interpreter is on the machine.
py313=""
root313="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"
for candidate in "$root313"/versions/3.13*/bin/python "$HOME"/.pyenv/versions/3.13*/bin/python \
    python3.13; do
  # A pyenv shim exists even when it cannot run: ask the interpreter itself.
  if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' >/dev/null 2>&1; then
    py313="$candidate"; break
  fi
done
if [ -n "$py313" ] && [ $# -eq 0 ]; then
  step "pytest (Python 3.13: unit and integration)"
  [ -x .venv313/bin/python ] || "$py313" -m venv .venv313
  .venv313/bin/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
  .venv313/bin/python -m pytest tests/unit tests/integration -q -p no:cacheprovider
fi
if [ -z "$py313" ]; then
  echo "(no Python 3.13 on this machine: the 3.13 run was not made)"
fi

#!/usr/bin/env bash
# Fetch the official @n8n/chat widget for the browser tests, outside the repository.
# Idempotent: does nothing when the pinned version is already unpacked.
# `npm install @n8n/chat` fails (it pins an unpublished @n8n/design-system); `npm pack` works,
# and dist/chat.bundle.es.js + dist/style.css are self-contained.
set -euo pipefail
VERSION="${N8N_CHAT_VERSION:-1.37.0}"
CACHE="${QUARTPROXY_CACHE:-$HOME/.cache/quartproxy}/n8n-chat"
DEST="$CACHE/$VERSION"
if [ -f "$DEST/package/dist/chat.bundle.es.js" ] && [ -f "$DEST/package/dist/style.css" ]; then
  echo "@n8n/chat $VERSION already in $DEST"
  exit 0
fi
mkdir -p "$DEST"
tmp="$(mktemp -d "$CACHE/.pack.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "@n8n/chat@$VERSION" >/dev/null)
tar -xzf "$tmp"/n8n-chat-"$VERSION".tgz -C "$tmp"
rm -rf "$DEST/package"
mv "$tmp/package" "$DEST/package"
echo "@n8n/chat $VERSION unpacked into $DEST/package"

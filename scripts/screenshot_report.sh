#!/usr/bin/env bash
# Dev check: render a report page in headless Chromium and save a PNG to look at.
#   scripts/screenshot_report.sh runs/demo/report/index.html [/tmp/report.png] [HEIGHT]
# Installs chromium with apt-get when missing (root or sudo). Not needed by `make demo`.
set -euo pipefail
page="${1:?usage: $0 REPORT/index.html [OUT.png] [HEIGHT]}"
out="${2:-/tmp/report.png}"
height="${3:-4000}"
[ -f "$page" ] || { echo "no such file: $page" >&2; exit 2; }
if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get install -y chromium >/dev/null
fi
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
  --disable-sync --no-first-run --user-data-dir="$profile" --screenshot="$out" --window-size=1280,"$height" \
  "file://$(realpath "$page")" 2>/dev/null
echo "$out"

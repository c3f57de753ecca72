#!/usr/bin/env bash
# Render a run's report.html in headless Chromium and save a full-page screenshot, to check by eye
# that it opens in a real browser with every image (Debian: apt-get install chromium).
#   bash tools/check_report_in_browser.sh edgecnn-demo/run/report.html report.png
set -euo pipefail
report=$(realpath "$1"); out=${2:-report.png}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$browser" ] || { echo "no Chromium found; install it with: apt-get install chromium" >&2; exit 2; }
profile=$(mktemp -d); trap 'rm -rf "$profile"' EXIT
# The flags keep Chromium off the network (this machine has none) and away from the user's profile.
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$profile" --window-size=1200,3200 \
  --screenshot="$(realpath -m "$out")" "file://$report" 2>/dev/null
echo "wrote $out"

#!/usr/bin/env bash
# An RTSP server for the stream tests (tests/rtsp_server.py): Debian's GStreamer RTSP server through the
# system python3's GObject bindings. Idempotent: installs only what is missing. Without these packages the
# RTSP test skips and says which are missing; the MJPEG-over-HTTP stream tests need nothing from apt.
set -euo pipefail
source "$(dirname "$0")/apt_install.sh"
packages=(python3-gi gir1.2-gstreamer-1.0 gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "rtsp server: GStreamer RTSP server packages are installed"
  exit 0
fi
apt_install "${missing[@]}"
echo "rtsp server: installed ${missing[*]}"

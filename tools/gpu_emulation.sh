#!/usr/bin/env bash
# A software Vulkan device for LiteRT's GPU accelerator, so the GPU tests run on machines without a GPU.
# SwiftShader comes with Debian's chromium-common (/usr/lib/chromium/vk_swiftshader_icd.json); the Vulkan
# loader is libvulkan1. Mesa's lavapipe does not do: LiteRT finds no adapter on it (it lacks dynamic indexing).
# Idempotent: installs only what is missing. Point the loader at the driver with
#   VK_DRIVER_FILES=/usr/lib/chromium/vk_swiftshader_icd.json   (tests/conftest.py does this for the test run)
set -euo pipefail
source "$(dirname "$0")/apt_install.sh"
ICD=/usr/lib/chromium/vk_swiftshader_icd.json
missing=()
[ -f "$ICD" ] || missing+=(chromium-common)
ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 ' || missing+=(libvulkan1)
if [ "${#missing[@]}" -eq 0 ]; then
  echo "gpu emulation: SwiftShader and the Vulkan loader are installed ($ICD)"
  exit 0
fi
apt_install "${missing[@]}"
[ -f "$ICD" ] || { echo "gpu emulation: $ICD is still missing after installing chromium-common" >&2; exit 1; }
echo "gpu emulation: installed ${missing[*]} ($ICD)"

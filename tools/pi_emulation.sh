#!/usr/bin/env bash
# Run edgecnn's device half on an emulated arm64 Raspberry Pi OS and compare its answers with the host's.
#
#   sudo tools/pi_emulation.sh [trixie|bookworm] [cortex-a76|cortex-a72]
#
# trixie = Debian 13 / Python 3.13 (Raspberry Pi OS 2025+), bookworm = Debian 12 / Python 3.11;
# cortex-a76 = Pi 5, cortex-a72 = Pi 4. User-mode QEMU through binfmt_misc, in a chroot of a
# debootstrapped arm64 minbase root cached in $EDGECNN_PI_CACHE (default /var/cache/edgecnn-pi),
# outside the repository; the first run per suite takes minutes, later runs reuse it.
# It installs edgecnn's wheel with the device extra into a fresh venv there, from wheels only
# (--only-binary=:all:, as a Pi would), runs doctor, inspect, classify, profile, run and parity on
# models and inputs made on the host, and fails when top-1 or scores differ from the host's by
# more than one quantization step or when a tie breaks differently. Exit 0 = the Pi's answers agree.
#
# Traps this handles (found in issue 19):
#  - QEMU_CPU is pinned: qemu 7.2's default "max" CPU advertises SVE/SME, and XNNPACK's int8
#    results are then silently wrong.
#  - qemu 7.2 (Debian 12's) shows the guest the host's x86 /proc/cpuinfo, and LiteRT's cpuinfo
#    parser segfaults on it: an ARM cpuinfo matching the emulated CPU is bind-mounted over it
#    (a mismatched one gives SIGILL). qemu 8+ fakes one itself.
set -euo pipefail

SUITE=${1:-trixie}
CPU=${2:-cortex-a76}
case "$SUITE" in trixie|bookworm) ;; *) echo "Error: suite must be trixie or bookworm, got '$SUITE'" >&2; exit 2 ;; esac
case "$CPU" in cortex-a76|cortex-a72) ;; *) echo "Error: CPU must be cortex-a76 or cortex-a72, got '$CPU'" >&2; exit 2 ;; esac
if [ "$(id -u)" -ne 0 ]; then
  echo "Error: pi_emulation.sh must run as root: it installs packages, mounts binfmt_misc and chroots (sudo $0 $*)" >&2
  exit 2
fi

REPO=$(cd "$(dirname "$0")/.." && pwd)
HOST_PY=${EDGECNN_HOST_PYTHON:-$REPO/.venv/bin/python}
CACHE=${EDGECNN_PI_CACHE:-/var/cache/edgecnn-pi}
ROOT=$CACHE/$SUITE
RUN=/tmp/edgecnn-pi-run   # the same folder name on the host side (under $ROOT) and in the guest
VENV=/opt/edgecnn-venv
export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}  # the host runs this checkout's code
[ -x "$HOST_PY" ] || { echo "Error: no host Python at $HOST_PY (run tools/setup.sh, or set EDGECNN_HOST_PYTHON)" >&2; exit 2; }

MOUNTS=()
cleanup() {
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    umount "${MOUNTS[$i]}" 2>/dev/null || umount -l "${MOUNTS[$i]}" 2>/dev/null || echo "warning: could not unmount ${MOUNTS[$i]}" >&2
  done
  [ -d "$ROOT$RUN" ] && rm -rf "${ROOT:?}$RUN"
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

START=$(date +%s)
PHASE_START=$START
phase() {  # phase NAME: report the time of the phase that just ended, start the next
  local now
  now=$(date +%s)
  [ -n "${PHASE:-}" ] && printf '[pi %s/%s] %-22s %4ss\n' "$SUITE" "$CPU" "$PHASE" "$((now - PHASE_START))"
  PHASE=$1
  PHASE_START=$now
}

host_tools() {
  local missing=()
  command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v update-binfmts >/dev/null || missing+=(binfmt-support)
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if ! mountpoint -q /proc/sys/fs/binfmt_misc; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  fi
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || { echo "Error: binfmt_misc has no qemu-aarch64 entry after update-binfmts" >&2; exit 1; }
}

host_mirror() {  # the Debian mirror the host's apt uses (deb822 or one-line sources), else deb.debian.org
  local uri
  uri=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -n1 || true)
  [ -n "$uri" ] || uri=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
    | grep -v security | awk '{for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' | head -n1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

build_root() {
  if [ -e "$ROOT/.edgecnn-complete" ]; then
    echo "reusing $ROOT"
    return
  fi
  local mirror
  mirror=$(host_mirror)
  echo "debootstrap $SUITE arm64 from $mirror into $ROOT (minutes; cached afterwards)"
  mkdir -p "$CACHE"
  rm -rf "$ROOT.partial"
  debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    "$SUITE" "$ROOT.partial" "$mirror" >"$CACHE/$SUITE.debootstrap.log" 2>&1 \
    || { echo "Error: debootstrap failed; see $CACHE/$SUITE.debootstrap.log" >&2; tail -n 20 "$CACHE/$SUITE.debootstrap.log" >&2; exit 1; }
  rm -rf "$ROOT"
  mv "$ROOT.partial" "$ROOT"
  touch "$ROOT/.edgecnn-complete"
}

arm_cpuinfo() {  # an ARM /proc/cpuinfo for the emulated CPU, one block per host core
  local part variant revision features i
  if [ "$CPU" = cortex-a76 ]; then  # Pi 5 (BCM2712)
    part=0xd0b variant=0x4 revision=1
    features="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"
  else  # Pi 4 (BCM2711): no crypto extensions
    part=0xd08 variant=0x0 revision=3
    features="fp asimd evtstrm crc32 cpuid"
  fi
  for ((i = 0; i < $(nproc); i++)); do
    printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\n' "$i" "$features"
    printf 'CPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: %s\n\n' "$variant" "$part" "$revision"
  done
}

mount_root() {
  mount -t proc proc "$ROOT/proc" && MOUNTS+=("$ROOT/proc")
  mount --bind /dev "$ROOT/dev" && MOUNTS+=("$ROOT/dev")
  mount -t sysfs sysfs "$ROOT/sys" && MOUNTS+=("$ROOT/sys")
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
  # The host's trust store, so pip in the guest reaches the registry the way the host does
  # (through any TLS-inspecting proxy whose CA the host trusts).
  cp "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$ROOT/etc/ssl/certs/edgecnn-host-ca.crt"
  local qemu_major
  qemu_major=$(qemu-aarch64-static --version | grep -oE 'version [0-9]+' | grep -oE '[0-9]+')
  if [ "$qemu_major" -lt 8 ]; then
    arm_cpuinfo >"$CACHE/cpuinfo-$CPU"
    mount --bind "$CACHE/cpuinfo-$CPU" "$ROOT/proc/cpuinfo" && MOUNTS+=("$ROOT/proc/cpuinfo")
    echo "qemu $qemu_major: bind-mounted an ARM $CPU /proc/cpuinfo"
  fi
}

guest() {  # run a command in the emulated Pi, with the CPU pinned and the venv first on PATH
  chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 QEMU_CPU="$CPU" \
    PIP_CERT=/etc/ssl/certs/edgecnn-host-ca.crt SSL_CERT_FILE=/etc/ssl/certs/edgecnn-host-ca.crt \
    ${PIP_INDEX_URL:+PIP_INDEX_URL="$PIP_INDEX_URL"} ${HTTPS_PROXY:+HTTPS_PROXY="$HTTPS_PROXY"} \
    ${https_proxy:+https_proxy="$https_proxy"} PIP_DEFAULT_TIMEOUT=180 \
    PATH="$VENV/bin:/usr/local/bin:/usr/bin:/bin" "$@"
}

phase "host tools"; host_tools
phase "root filesystem"; build_root
phase "mounts"; mount_root
guest /bin/true || { echo "Error: the arm64 root does not execute under qemu-aarch64 (QEMU_CPU=$CPU)" >&2; exit 1; }

phase "host wheel + inputs"
rm -rf "${ROOT:?}$RUN"
mkdir -p "$ROOT$RUN/wheel"
"$HOST_PY" -m pip wheel --quiet --no-deps -w "$ROOT$RUN/wheel" "$REPO" >"$ROOT$RUN/wheel.log" 2>&1 \
  || { cat "$ROOT$RUN/wheel.log" >&2; echo "Error: pip wheel of $REPO failed (above)" >&2; exit 1; }
"$HOST_PY" "$REPO/tools/pi_emulation_inputs.py" "$ROOT$RUN/inputs"
for model in int8 fp32; do
  "$HOST_PY" -m edgecnn classify --json --top-k 3 "$ROOT$RUN/inputs/$model.tflite" "$ROOT$RUN/inputs/images" \
    2>/dev/null >"$ROOT$RUN/host-$model.jsonl"
done

phase "venv + pip install"
guest python3 --version
rm -rf "${ROOT:?}$VENV"
guest python3 -m venv "$VENV"
wheel=$(cd "$ROOT$RUN/wheel" && ls edgecnn-*.whl)
guest pip install --quiet --disable-pip-version-check --only-binary=:all: --report "$RUN/pip-report.json" \
  "$RUN/wheel/$wheel[device]"
"$HOST_PY" - "$ROOT$RUN/pip-report.json" <<'EOF'
import json, sys
for item in json.load(open(sys.argv[1]))["install"]:
    print("  resolved:", item["download_info"]["url"].rsplit("/", 1)[-1])
EOF

phase "doctor + inspect"
guest edgecnn doctor
guest edgecnn inspect "$RUN/inputs/int8.tflite" >/dev/null

phase "classify"
for model in int8 fp32; do
  guest edgecnn classify --json --top-k 3 "$RUN/inputs/$model.tflite" "$RUN/inputs/images" \
    2>/dev/null >"$ROOT$RUN/guest-$model.jsonl"
done

phase "profile + run + parity"
guest edgecnn profile --runs 20 --warmup 3 "$RUN/inputs/int8.tflite" 2>/dev/null | tail -n 4
frames=$(guest edgecnn run --source "$RUN/inputs/clip.avi" --headless --json "$RUN/inputs/int8.tflite" 2>/dev/null \
  | grep -c '"frame"' || true)
[ "$frames" -eq 24 ] || { echo "Error: run on the 24-frame clip gave $frames frame results in the emulation" >&2; exit 1; }
echo "run: 24 of 24 clip frames classified"
guest edgecnn parity "$RUN/inputs/fp32.tflite" "$RUN/inputs/int8.tflite" --data "$RUN/inputs/images" \
  2>/dev/null | tail -n 3

phase "compare with host"
failed=0
# int8 output: scale 1/256 (the softmax output every converter gives int8); fp32: rounding to 6 decimals only.
"$HOST_PY" "$REPO/tools/pi_emulation_compare.py" "$ROOT$RUN/host-int8.jsonl" "$ROOT$RUN/guest-int8.jsonl" --step 0.00390625 || failed=1
"$HOST_PY" "$REPO/tools/pi_emulation_compare.py" "$ROOT$RUN/host-fp32.jsonl" "$ROOT$RUN/guest-fp32.jsonl" --step 0.000002 || failed=1
phase "done"
echo "pi emulation $SUITE/$CPU: $(( $(date +%s) - START ))s in all"
[ "$failed" -eq 0 ] || { echo "Error: the emulated Pi's answers differ from the host's (above)" >&2; exit 1; }
echo "pi emulation $SUITE/$CPU: answers agree with the host"

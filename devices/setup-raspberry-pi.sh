#!/usr/bin/env bash
# Set up edgecnn's device half on Raspberry Pi OS Bookworm (64-bit), Pi 4 or Pi 5.
#
#   bash setup-raspberry-pi.sh                 # venv in ~/edgecnn/.venv with picamera2 visible
#   bash setup-raspberry-pi.sh --coral         # + the Coral Edge TPU runtime (libedgetpu1-std)
#   bash setup-raspberry-pi.sh --service /home/pi/edgecnn/model_int8.tflite
#                                              # + a systemd unit that runs the model at boot
#
# Environment: EDGECNN_HOME (default ~/edgecnn), EDGECNN_SPEC (what pip installs, default
# "edgecnn[device]"; a wheel path works too, e.g. "./edgecnn-0.1.0-py3-none-any.whl[device]").
# Safe to run again: every step checks what is already there.
set -euo pipefail

EDGECNN_HOME="${EDGECNN_HOME:-$HOME/edgecnn}"
EDGECNN_SPEC="${EDGECNN_SPEC:-edgecnn[device]}"
VENV="$EDGECNN_HOME/.venv"
WITH_CORAL=0
SERVICE_MODEL=""
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "setup-raspberry-pi: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --coral) WITH_CORAL=1 ;;
    --service) [ $# -ge 2 ] || die "--service needs the path of a .tflite model"; SERVICE_MODEL="$2"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1'; see --help" ;;
  esac
  shift
done

# --- 1. the platform -----------------------------------------------------------------------
arch="$(uname -m)"
if [ "$arch" != "aarch64" ]; then
  # ai-edge-litert publishes aarch64 wheels only; 32-bit Raspberry Pi OS (armv7l) has none.
  die "this is $arch; install the 64-bit Raspberry Pi OS (aarch64), which ai-edge-litert supports"
fi
# 32-bit Raspberry Pi OS on a Pi 4 or 5 boots a 64-bit kernel: uname says aarch64, but its armhf
# userland and Python get no ai-edge-litert or OpenCV wheels, and pip would fail to build them.
userland="$(dpkg --print-architecture 2>/dev/null || echo unknown)"
if [ "$userland" = "armhf" ] || [ "$userland" = "armel" ]; then
  die "this is 32-bit Raspberry Pi OS ($userland userland on a 64-bit kernel): ai-edge-litert and OpenCV publish no 32-bit ARM wheels; install the 64-bit Raspberry Pi OS"
fi
if [ -r /proc/device-tree/model ]; then
  echo "board: $(tr -d '\0' </proc/device-tree/model)"
fi
. /etc/os-release
echo "os: ${PRETTY_NAME:-unknown}"
[ "${VERSION_CODENAME:-}" = "bookworm" ] || echo "note: written for Bookworm; on ${VERSION_CODENAME:-this release} the steps should still apply"

# --- 2. system packages: picamera2 comes from apt, not pip (it needs the system libcamera) ----
sudo apt-get update
sudo apt-get install -y --no-install-recommends python3-venv python3-pip python3-picamera2

# --- 3. a venv that can see the system's picamera2 --------------------------------------------
mkdir -p "$EDGECNN_HOME"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv --system-site-packages "$VENV"
fi
"$VENV/bin/python" -m pip install --upgrade pip

# picamera2's compiled helpers (simplejpeg) are built against the system's numpy. Bookworm ships
# numpy 1.24: a numpy 2 inside the venv would shadow it and break 'import picamera2'
# ("numpy.dtype size changed"). So keep the venv on the system's major version; OpenCV wheels
# from 4.10 on require numpy 2, hence the matching cap.
constraints=()
system_numpy="$(/usr/bin/python3 -c 'import numpy; print(numpy.__version__)' 2>/dev/null || echo "")"
if [ "${system_numpy%%.*}" = "1" ]; then
  echo "system numpy is $system_numpy: keeping the venv on numpy 1.x for picamera2"
  constraints=("numpy<2" "opencv-python-headless<4.10")
fi
"$VENV/bin/pip" install "$EDGECNN_SPEC" "${constraints[@]}"

# --- 4. optional: the Coral Edge TPU runtime from Coral's apt repository ----------------------
if [ "$WITH_CORAL" = 1 ]; then
  keyring=/usr/share/keyrings/coral-edgetpu.gpg
  if [ ! -f "$keyring" ]; then
    curl -fsSL https://packages.cloud.google.com/apt/doc/apt-key.gpg | sudo gpg --dearmor -o "$keyring"
  fi
  echo "deb [signed-by=$keyring] https://packages.cloud.google.com/apt coral-edgetpu-stable main" \
    | sudo tee /etc/apt/sources.list.d/coral-edgetpu.list >/dev/null
  sudo apt-get update
  # -std runs the Edge TPU at its standard clock; libedgetpu1-max is faster but Coral warns the
  # USB Accelerator then gets very hot.
  sudo apt-get install -y libedgetpu1-std
  # The package's udev rule gives the plugdev group access to the accelerator.
  sudo usermod -aG plugdev "$USER"
  echo "Coral runtime installed: unplug and replug the USB Accelerator (and log in again for the plugdev group)"
fi

# --- 5. check ------------------------------------------------------------------------------
"$VENV/bin/python" -c "import picamera2" && echo "picamera2: visible in the venv" \
  || echo "warning: picamera2 does not import in the venv; CSI cameras will not work (USB webcams still do)"
"$VENV/bin/edgecnn" --version
"$VENV/bin/edgecnn" doctor || true

# --- 6. optional: run a model at boot --------------------------------------------------------
if [ -n "$SERVICE_MODEL" ]; then
  [ -f "$SERVICE_MODEL" ] || die "model $SERVICE_MODEL does not exist; copy it to the Pi first"
  unit=/etc/systemd/system/edgecnn.service
  sed -e "s#@USER@#$USER#g" -e "s#@HOME@#$EDGECNN_HOME#g" -e "s#@MODEL@#$(realpath "$SERVICE_MODEL")#g" \
    "$HERE/edgecnn.service" | sudo tee "$unit" >/dev/null
  sudo systemctl daemon-reload
  sudo systemctl enable --now edgecnn.service
  echo "edgecnn.service enabled: 'systemctl status edgecnn', results in $EDGECNN_HOME/results.jsonl"
fi

echo "done. Activate with: source $VENV/bin/activate"
echo "profile a model:     edgecnn profile model_int8.tflite --device raspberry-pi-5 --out pi5.json"

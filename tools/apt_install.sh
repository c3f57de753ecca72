# Sourced by the set-up scripts that need Debian packages (gpu_emulation.sh, rtsp_server_deps.sh,
# test_toolchain.sh): one way to install them, as root or through sudo, without prompts.
apt_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
}

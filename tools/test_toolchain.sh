#!/usr/bin/env bash
# A C compiler for the tests: tests/fake_delegate.py builds a TFLite delegate library with gcc in the test
# set-up, to see --delegate reach the interpreter (the tests skip, saying so, without it). Idempotent.
set -euo pipefail
if command -v gcc >/dev/null 2>&1; then
  echo "test toolchain: gcc is installed ($(command -v gcc))"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends gcc libc6-dev
echo "test toolchain: installed gcc"

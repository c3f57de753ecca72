#!/usr/bin/env bash
# A C compiler for the tests: tests/fake_delegate.py builds a TFLite delegate library with gcc in the test
# set-up, to see --delegate reach the interpreter (the tests skip, saying so, without it). Idempotent.
set -euo pipefail
source "$(dirname "$0")/apt_install.sh"
if command -v gcc >/dev/null 2>&1; then
  echo "test toolchain: gcc is installed ($(command -v gcc))"
  exit 0
fi
apt_install gcc libc6-dev
echo "test toolchain: installed gcc"

#!/usr/bin/env bash
# One set-up for a fresh machine: a virtual environment in .venv with edgecnn and all extras.
# Idempotent: a second run only checks that everything is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[train,device,serve,dev]"
.venv/bin/edgecnn --version

#!/usr/bin/env bash
# The pinned venv for bench-peers/peers.py (PyTorch and JAX), in bench-peers/.venv.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python3 -m venv "$here/.venv"
"$here/.venv/bin/pip" install --progress-bar off -r "$here/requirements.txt"

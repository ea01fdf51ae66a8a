#!/usr/bin/env bash
# Runs every test: sets up libtorch and the Python readers the interop test uses, then
# `cargo test`. Tests make their own small IDX data; they need no download.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/env.sh
scripts/setup-libtorch.sh
scripts/setup-python.sh
FSTREAM_PYTHON="$root/.venv/bin/python" cargo test --release --locked "$@"

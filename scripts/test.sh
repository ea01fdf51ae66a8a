#!/usr/bin/env bash
# Runs every test: sets up libtorch, the Python readers the interop tests use and headless
# Chromium for the report test, then `cargo test`. Tests make their own small IDX data; they
# need no download.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/env.sh
scripts/setup-libtorch.sh
scripts/setup-python.sh
chromium=$(scripts/setup-chromium.sh)
FSTREAM_PYTHON="$root/.venv/bin/python" FSTREAM_CHROMIUM="$chromium" \
  cargo test --release --locked "$@"

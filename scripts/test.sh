#!/usr/bin/env bash
# Runs every test: sets up libtorch, the Python readers the interop tests use, headless
# Chromium for the report test and Slurm for the cluster tests (each test starts its own
# single-node cluster), then `cargo test`. Tests make their own small IDX data; they need no
# download.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/env.sh
scripts/setup-libtorch.sh
scripts/setup-python.sh
chromium=$(scripts/setup-chromium.sh)
scripts/slurm-test-cluster.sh install
FSTREAM_PYTHON="$root/.venv/bin/python" FSTREAM_CHROMIUM="$chromium" FSTREAM_SLURM=1 \
  cargo test --release --locked "$@"

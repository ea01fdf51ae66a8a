#!/usr/bin/env bash
# Runs every test: sets up libtorch, the Python readers the interop tests use (with Java and
# PySpark for the Spark SQL check), headless Chromium for the report test and Slurm for the
# cluster tests (each test starts its own
# single-node cluster), then `cargo test`. Tests make their own small IDX data; they need no
# download.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/env.sh
scripts/setup-libtorch.sh
scripts/setup-python.sh
scripts/setup-spark.sh
chromium=$(scripts/setup-chromium.sh)
# The cluster's daemons run as root (munged as the munge user): as another user the Slurm
# tests say they are skipped.
slurm=""
if [[ $(id -u) -eq 0 ]]; then
  scripts/slurm-test-cluster.sh install
  slurm=1
fi
FSTREAM_PYTHON="$root/.venv/bin/python" FSTREAM_SPARK=1 FSTREAM_CHROMIUM="$chromium" \
  FSTREAM_SLURM="$slurm" \
  cargo test --release --locked "$@"

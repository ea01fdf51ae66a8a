#!/usr/bin/env bash
# The main job: a small real MNIST forgetting experiment. Sets up libtorch and MNIST, builds
# fstream, trains SEEDS runs (default 2) for EPOCHS epochs (default 3) concurrently with the
# paper's MNIST configuration (--no-dropout), orders the examples by forgetting and prints the
# unforgettable count and the test accuracy. Each configuration has its own root,
# results/quickstart-SEEDSxEPOCHS: running it again resumes or skips the runs already there
# (they are deterministic) and never deletes a result.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/env.sh
scripts/setup-libtorch.sh
scripts/fetch-mnist.sh data
cargo build --release --locked --bin fstream --bin fstream-train
fstream="$CARGO_TARGET_DIR/release/fstream"

out="results/quickstart-${SEEDS:-2}x${EPOCHS:-3}"
# --resume: continue the runs of this experiment that are incomplete, start the seeds that
# never started, leave complete runs alone.
"$fstream" train --dataset mnist --data-dir data --output-dir "$out" \
  --seeds "1..${SEEDS:-2}" --epochs "${EPOCHS:-3}" --no-dropout --resume
"$fstream" order --input-dir "$out" --dataset mnist --output-dir "$out" --output-name mnist_order
echo "SQL check (queries/unforgettable_count.sql):"
"$fstream" query queries/unforgettable_count.sql --root "$out"
"$fstream" query queries/test_accuracy.sql --root "$out"
"$fstream" -q report --root "$out" --data-dir data --output "$out/report" >/dev/null
echo "sorting file: $out/mnist_order.parquet (and .csv); tables: $out/"
echo "report with the figures: $out/report/index.html"

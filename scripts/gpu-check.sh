#!/usr/bin/env bash
# GPU check: trains ResNet18 for one epoch on generated CIFAR-10 data (real binary format) on
# `cuda` and on `cpu` with the same seed, compares the per-example statistics of the first
# batches (loss, margin within a tolerance; correctness may flip only where the margin is near
# 0), and prints images/s of both. Needs a CUDA build of libtorch 2.13 (see README, "Using your
# own PyTorch") and a GPU. Usage: scripts/gpu-check.sh [IMAGES] (default 2,560).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/env.sh
cargo build --release --locked --bin fstream --bin fstream-train
fstream="$CARGO_TARGET_DIR/release/fstream"
images="${1:-2560}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$work/data/cifar-10-batches-bin" "$images" <<'PY'
import os, random, sys
out, n = sys.argv[1], int(sys.argv[2])
os.makedirs(out, exist_ok=True)
rng = random.Random(0)
def record(i):
    label = i % 10
    return bytes([label]) + bytes((rng.randrange(256) // 2 + 100 * (c == label % 3)) % 256
                                  for c in range(3) for _ in range(1024))
per_file = n // 5
for f in range(5):
    with open(f"{out}/data_batch_{f + 1}.bin", "wb") as w:
        w.write(b"".join(record(f * per_file + i) for i in range(per_file)))
with open(f"{out}/test_batch.bin", "wb") as w:
    w.write(b"".join(record(i) for i in range(256)))
PY

# FIRST_DEVICE=cpu runs the whole check on the CPU twice (a dry run without a GPU).
first="${FIRST_DEVICE:-cuda}"
for side in first cpu; do
  device=$([[ $side == first ]] && echo "$first" || echo cpu)
  "$fstream" train --dataset cifar10 --data-dir "$work/data" --output-dir "$work/$side" \
    --device "$device" --epochs 1 --seed 1 --threads 1 --no-download --progress never -q >/dev/null
done
echo "SELECT example_id, loss, correct, margin FROM presentations WHERE step < 4 ORDER BY example_id" >"$work/first.sql"
echo "SELECT r.device, r.train_examples / e.seconds AS images_per_s FROM runs r JOIN (SELECT run_id, SUM(train_seconds) AS seconds FROM epochs GROUP BY run_id) e ON r.run_id = e.run_id" >"$work/speed.sql"
for side in first cpu; do
  "$fstream" query "$work/first.sql" --root "$work/$side" --format csv >"$work/$side.csv"
  "$fstream" query "$work/speed.sql" --root "$work/$side" --format csv | tail -n 1 | sed 's/^/device, images\/s: /'
done
python3 - "$work/first.csv" "$work/cpu.csv" <<'PY'
import csv, sys
cuda, cpu = ([row for row in csv.DictReader(open(path))] for path in sys.argv[1:])
assert len(cuda) == len(cpu) > 0, (len(cuda), len(cpu))
worst = {"loss": 0.0, "margin": 0.0}
for a, b in zip(cuda, cpu):
    assert a["example_id"] == b["example_id"]
    for column in worst:
        worst[column] = max(worst[column], abs(float(a[column]) - float(b[column])))
    if a["correct"] != b["correct"]:
        assert abs(float(b["margin"])) < 1e-2, ("correctness differs away from the boundary", a, b)
print(f"first batches: {len(cuda)} examples, largest |cuda - cpu|: loss {worst['loss']:.2e}, margin {worst['margin']:.2e}")
assert worst["loss"] < 1e-2 and worst["margin"] < 1e-2, worst
print("gpu check: OK")
PY

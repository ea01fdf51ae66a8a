#!/usr/bin/env bash
# Prints the pipeline's performance figures (see benches/pipeline.rs). Sections: train, writer,
# order (default: all). Uses data/mnist when present (scripts/fetch-mnist.sh).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/env.sh
scripts/setup-libtorch.sh >/dev/null
[[ -x .venv/bin/python ]] && export FSTREAM_PYTHON="$root/.venv/bin/python"
cargo bench --locked --bench pipeline -- "$@"

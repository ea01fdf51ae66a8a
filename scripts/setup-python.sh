#!/usr/bin/env bash
# Creates .venv with the readers the interoperability tests use (pyarrow, pandas, DuckDB,
# polars), pinned. Idempotent.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
pins=(pyarrow==26.0.1 pandas==3.1.1 duckdb==2.0.1 polars==2.1.0)
if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -m pip freeze 2>/dev/null | grep -qx "polars==2.1.0"; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: "${pins[@]}"
echo "python readers ready in $venv"

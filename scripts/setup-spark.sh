#!/usr/bin/env bash
# Adds Spark to the test venv for the Spark SQL interop test: Java 17 from Debian
# (openjdk-17-jre-headless; `sudo` when not root) and PySpark 4.3.0 with py4j, hash-pinned
# (a 456 MB source archive from PyPI, with Spark's jars inside). Idempotent; run after
# scripts/setup-python.sh.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
if ! command -v java >/dev/null; then
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi
if "$venv/bin/python" -m pip freeze 2>/dev/null | grep -q "^pyspark"; then
  exit 0
fi
requirements=$(mktemp)
trap 'rm -f "$requirements"' EXIT
cat >"$requirements" <<'PINS'
pyspark==4.3.0 --hash=sha256:e8c517948eff7088a7aa07449aa8eafa4a15a8d50319de2525a6fd26622476c6
py4j==0.10.9.9 --hash=sha256:c7c26e4158defb37b0bb124933163641a2ff6e3a3913f7811b0ddbe07ed61533
PINS
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes \
  --no-deps -r "$requirements"
echo "pyspark ready in $venv"

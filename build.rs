//! Gives every binary (including tests and benches) an rpath to libtorch, which torch-sys does
//! not do (without it `cargo test` fails with "libtorch_cpu.so: cannot open shared object
//! file"), and links libtorch_cuda when the libtorch in use has it, since `--as-needed` would
//! otherwise drop it and CUDA would silently be unavailable.
//!
//! The first rpath entry is `$ORIGIN/../lib`: an installed fstream (`scripts/install.sh`:
//! `PREFIX/bin/fstream-train` beside `PREFIX/lib/`) loads its own copy of libtorch and keeps
//! working when the clone it was built in is moved or deleted. A binary in the target directory
//! has no such `lib/` and falls through to the libtorch it was built against.
//!
//! The command line's package (`fstream`) and the training crate (`fstream-torch`) both use this
//! script. The `fstream` binary itself does not link libtorch, and must not get libtorch_cuda
//! either: in that package it goes to `fstream-train`, the tests and the benches only.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let lib_dir = std::env::var("DEP_TCH_LIBTORCH_LIB").unwrap_or_default();
    println!("cargo:rustc-env=FSTREAM_LIBTORCH_VERSION={}", libtorch_version(Path::new(&lib_dir)));
    if lib_dir.is_empty() {
        return;
    }
    println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/../lib:{lib_dir}");
    if Path::new(&lib_dir).join("libtorch_cuda.so").exists() {
        let cuda = "-Wl,--no-as-needed,-ltorch_cuda,--as-needed";
        if std::env::var("CARGO_PKG_NAME").as_deref() == Ok("fstream") {
            println!("cargo:rustc-link-arg-bin=fstream-train={cuda}");
            println!("cargo:rustc-link-arg-tests={cuda}");
            println!("cargo:rustc-link-arg-benches={cuda}");
        } else {
            println!("cargo:rustc-link-arg={cuda}");
        }
    }
}

/// The libtorch version: `build-version` of a libtorch directory, or `__version__` of a PyTorch
/// installation's `version.py` (when `LIBTORCH_USE_PYTORCH=1`).
fn libtorch_version(lib_dir: &Path) -> String {
    let Some(root) = lib_dir.parent() else { return "unknown".into() };
    if let Ok(version) = std::fs::read_to_string(root.join("build-version")) {
        return version.trim().to_string();
    }
    std::fs::read_to_string(root.join("version.py"))
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with("__version__"))?;
            Some(line.split(['\'', '"']).nth(1)?.to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

//! Deterministic crash points, for testing crash safety in the normal release build. When the
//! environment variable `FSTREAM_CRASH_POINT` names a point, the process kills itself with
//! SIGKILL the moment it reaches it, exactly as an outside `kill -9` (or a power cut, for what
//! has not been fsynced) would stop it there. Unset, a point costs one relaxed atomic load.
//!
//! Syntax: `FSTREAM_CRASH_POINT=NAME[@PATH][#N]`: crash at point `NAME`, only where the file it
//! concerns contains `PATH`, on the `N`-th such hit (default 1). The points are listed in
//! [`POINTS`] and documented in `docs/crash-safety.md`.

use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The environment variable that arms a crash point.
pub const ENV: &str = "FSTREAM_CRASH_POINT";

/// Every crash point: its name and where it is.
pub const POINTS: [(&str, &str); 10] = [
    ("write-partial", "a Parquet file is half written (a row group on disk, no footer)"),
    ("write-renamed", "a committed file was renamed into place, before the directory fsync"),
    ("checkpoint-partial", "half of a checkpoint's bytes are written"),
    ("epoch-after-presentations", "an epoch's presentations are committed, nothing else"),
    (
        "epoch-after-dynamics",
        "presentations and the dynamics file committed, before the checkpoint",
    ),
    (
        "epoch-after-checkpoint",
        "presentations, dynamics and checkpoint committed, before the epochs rows",
    ),
    ("epoch-after-epochs-rows", "the epochs rows committed, before the runs row"),
    ("epoch-after-runs-row", "the runs row declares the epoch, before the old checkpoint goes"),
    ("download-partial", "a download has received its first bytes"),
    ("extract-partial", "a tarball's first entry is extracted"),
];

struct Armed {
    name: String,
    path: Option<String>,
    hit: u32,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var(ENV).ok()?;
            let (rest, hit) = match spec.rsplit_once('#') {
                Some((rest, n)) => (rest, n.parse().unwrap_or(1)),
                None => (spec.as_str(), 1),
            };
            let (name, path) = match rest.split_once('@') {
                Some((name, path)) => (name, Some(path.to_string())),
                None => (rest, None),
            };
            Some(Armed { name: name.to_string(), path, hit })
        })
        .as_ref()
}

/// Crashes here if point `name` is armed (and, when the spec names a path, `path` contains it).
pub fn point(name: &str, path: Option<&Path>) {
    static HITS: AtomicU32 = AtomicU32::new(0);
    let Some(armed) = armed() else { return };
    debug_assert!(POINTS.iter().any(|(n, _)| *n == name), "undocumented crash point {name}");
    if armed.name != name {
        return;
    }
    if let Some(wanted) = &armed.path
        && !path.is_some_and(|p| p.to_string_lossy().contains(wanted.as_str()))
    {
        return;
    }
    if HITS.fetch_add(1, Ordering::SeqCst) + 1 == armed.hit {
        // SAFETY: kill and getpid have no preconditions.
        unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
        std::process::abort();
    }
}

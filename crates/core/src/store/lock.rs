//! Run locks: a process holds an OS lock (`flock`) on `ROOT/locks/RUN_ID.lock` while it trains
//! or deletes a run. The OS releases it when the process ends, however it ends, so a crashed
//! run can be resumed at once while a live one cannot be trained twice. The lock needs a
//! filesystem with working advisory locks (local disks; NFS v4 and Lustre with `flock`).

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::MetadataExt;

use super::layout::Layout;
use crate::error::{Error, IoContext, Result};

/// A held run lock; released when dropped.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Takes the lock of `run_id` without waiting.
///
/// # Errors
/// [`Error::Config`] when another process holds it; [`Error::Io`] naming the lock file or
/// its directory when it cannot be created.
pub fn lock_run(layout: &Layout, run_id: &str) -> Result<RunLock> {
    let path = layout.lock_file(run_id);
    let dir = path.parent().expect("lock files live in a directory");
    std::fs::create_dir_all(dir).at(dir)?;
    let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).at(&path)?;
    match file.try_lock() {
        Ok(()) => Ok(RunLock { _file: file }),
        Err(TryLockError::WouldBlock) => Err(Error::Config(format!(
            "run {run_id} is being trained by another process (lock {} is held{})",
            path.display(),
            lock_holder(layout, run_id).map_or(String::new(), |pid| format!(" by pid {pid}"))
        ))),
        Err(TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}

/// The process that holds the lock of `run_id`, if any, read from `/proc/locks` without
/// touching the lock (so that asking never makes a trainer fail to start). `None` where
/// `/proc/locks` is missing or does not list the filesystem's locks.
pub fn lock_holder(layout: &Layout, run_id: &str) -> Option<u32> {
    let meta = std::fs::metadata(layout.lock_file(run_id)).ok()?;
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let (major, minor) = (libc::major(meta.dev()), libc::minor(meta.dev()));
    let wanted = format!("{major:02x}:{minor:02x}:{}", meta.ino());
    locks.lines().find_map(|line| {
        // "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (pid, id) = (fields.get(4)?, fields.get(5)?);
        (fields.get(1) == Some(&"FLOCK") && same_file_id(id, &wanted)).then(|| pid.parse().ok())?
    })
}

/// Whether process `pid` exists (read from `/proc`, so only on Linux).
pub(crate) fn process_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether a `/proc/locks` file id (`MAJ:MIN:INODE`, device numbers in hex of any width)
/// equals `wanted`.
fn same_file_id(id: &str, wanted: &str) -> bool {
    let parse = |s: &str| -> Option<(u64, u64, u64)> {
        let mut parts = s.split(':');
        let major = u64::from_str_radix(parts.next()?, 16).ok()?;
        let minor = u64::from_str_radix(parts.next()?, 16).ok()?;
        Some((major, minor, parts.next()?.parse().ok()?))
    };
    parse(id).is_some() && parse(id) == parse(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_refused_and_names_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        let lock = lock_run(&layout, "r1").unwrap();
        assert_eq!(lock_holder(&layout, "r1"), Some(std::process::id()));
        let err = lock_run(&layout, "r1").unwrap_err().to_string();
        assert!(err.contains("run r1 is being trained by another process"), "{err}");
        assert!(err.contains(&format!("by pid {}", std::process::id())), "{err}");
        drop(lock);
        assert_eq!(lock_holder(&layout, "r1"), None);
        lock_run(&layout, "r1").unwrap();
    }

    #[test]
    fn proc_locks_ids_compare_by_value() {
        assert!(same_file_id("fd:01:5678", "fd:1:5678"));
        assert!(!same_file_id("fd:01:5678", "fd:01:5679"));
        assert!(!same_file_id("x", "x"));
    }
}

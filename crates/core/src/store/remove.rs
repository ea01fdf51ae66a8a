//! Removing files of a root, and nothing else. Every removal fstream makes goes through
//! [`remove_inside`], which resolves the path (symlinks of its directories included) and
//! refuses anything that is not strictly inside the root: no run id, file name or symlink can
//! make a command delete the root, one of its table directories, or a path outside it.

use std::path::{Component, Path, PathBuf};

use super::layout::Layout;
use crate::error::{Error, IoContext, Result};

/// Removes `path` (a file, a symlink, or a directory with everything in it) when it lies
/// inside `layout`'s root: below one of the root's directories, or a temporary file
/// (`.NAME.tmp`) directly in the root. A missing path is not an error.
///
/// # Errors
/// [`Error::Config`] when `path` resolves to the root, a directory directly in it, or a path
/// outside it (nothing is removed then); [`Error::Io`] when the removal fails.
pub fn remove_inside(layout: &Layout, path: &Path) -> Result<()> {
    let Some((resolved, is_dir)) = check_inside(layout, path)? else { return Ok(()) };
    let removed =
        if is_dir { std::fs::remove_dir_all(&resolved) } else { std::fs::remove_file(&resolved) };
    match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}

/// What [`remove_inside`] would remove: `path` resolved, and whether it is a directory
/// (`None`: it does not exist). Callers that remove several paths check them all first, so
/// that a refusal removes nothing.
///
/// # Errors
/// As [`remove_inside`], without removing anything.
pub fn check_inside(layout: &Layout, path: &Path) -> Result<Option<(PathBuf, bool)>> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let root = std::fs::canonicalize(layout.root()).at(layout.root())?;
    let resolved = resolve(path)?;
    let refuse = || {
        Error::Config(format!(
            "refusing to remove {}: it resolves to {}, not a file inside the root {} (a symlinked directory?); nothing was removed",
            path.display(),
            resolved.display(),
            layout.root().display()
        ))
    };
    let relative = resolved.strip_prefix(&root).map_err(|_| refuse())?;
    let depth = relative.components().count();
    let name = relative.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let root_temporary = !metadata.is_dir() && name.starts_with('.') && name.ends_with(".tmp");
    if depth == 0 || (depth == 1 && !root_temporary) {
        return Err(refuse());
    }
    Ok(Some((resolved, metadata.is_dir())))
}

/// `path` with its directory resolved (symlinks, `..`) and its own name kept, so that a
/// symlink is removed as a link. Refuses a path whose last component is not a name (`..`).
fn resolve(path: &Path) -> Result<PathBuf> {
    let Some(Component::Normal(name)) = path.components().next_back() else {
        return Err(Error::Config(format!(
            "refusing to remove {}: not a file name",
            path.display()
        )));
    };
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    Ok(std::fs::canonicalize(parent).at(parent)?.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_below_the_roots_directories_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside.txt");
        std::fs::write(&outside, "keep").unwrap();
        std::fs::create_dir_all(root.join("checkpoints/run-a")).unwrap();
        std::fs::write(root.join("checkpoints/run-a/epoch-1.pt"), "x").unwrap();
        std::fs::write(root.join(".space-reserve-1.tmp"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("checkpoints/link")).unwrap();
        let layout = Layout::new(&root);
        for refused in [
            root.clone(),
            root.join("checkpoints"),
            root.join("checkpoints/.."),
            root.join("checkpoints/run-a/../.."),
            root.join(".."),
            outside.clone(),
        ] {
            let err = remove_inside(&layout, &refused).unwrap_err().to_string();
            assert!(err.starts_with("refusing to remove"), "{}: {err}", refused.display());
        }
        assert!(root.join("checkpoints/run-a/epoch-1.pt").exists());
        // A symlink goes as a link; its target stays.
        remove_inside(&layout, &root.join("checkpoints/link")).unwrap();
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
        remove_inside(&layout, &root.join("checkpoints/run-a")).unwrap();
        remove_inside(&layout, &root.join(".space-reserve-1.tmp")).unwrap();
        remove_inside(&layout, &root.join("checkpoints/missing")).unwrap();
        assert!(root.join("checkpoints").is_dir() && !root.join("checkpoints/run-a").exists());
    }
}

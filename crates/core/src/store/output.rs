//! Where a command may write a file for the user (a query result, a sorting or score file and
//! its CSV, an export, a figure, a report): [`check_output`] is called before anything is
//! computed or written, and refuses an output that would replace a dataset root's committed
//! files or one of the command's own inputs. Writing itself goes through the store's atomic
//! protocol ([`super::StagedFiles`]).

use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// The directories of a dataset root that hold its committed state. No output goes inside
/// them.
pub const ROOT_DIRS: [&str; 7] =
    ["presentations", "runs", "epochs", "examples", "dynamics", "locks", "checkpoints"];

/// What a command reads, which its outputs must not replace.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// A file the command reads (an SQL file, a sorting file, a spec).
    File(&'a Path),
    /// A directory whose files the command reads (a dataset's files): no output inside it.
    Dir(&'a Path),
}

/// Refuses `output` (named by `flag` in the error) when it lies inside a table directory of
/// any dataset root (see [`ROOT_DIRS`]; a root is found by its `runs/` directory, whatever
/// root the command was given), is one of `inputs` (the same file, by any path or hard link),
/// or lies inside an input directory.
///
/// # Errors
/// [`Error::Config`] saying which rule `output` breaks and what to do instead.
pub fn check_output(flag: &str, output: &Path, inputs: &[Input<'_>]) -> Result<()> {
    let resolved = resolve(output);
    let shown = output.display();
    for dir in resolved.ancestors() {
        let Some(name) = dir.file_name().and_then(|n| n.to_str()) else { continue };
        if let Some(root) = dir.parent().filter(|root| ROOT_DIRS.contains(&name) && is_root(root)) {
            return Err(Error::Config(format!(
                "{flag} {shown}: inside {}, a table directory of the dataset root {}; write outputs outside its {} directories",
                dir.display(),
                root.display(),
                ROOT_DIRS.map(|d| format!("{d}/")).join(" ")
            )));
        }
    }
    for input in inputs {
        match *input {
            Input::File(file) if same_file(&resolved, file) => {
                return Err(Error::Config(format!(
                    "{flag} {shown}: is the input {}; write the output to another path",
                    file.display()
                )));
            }
            Input::Dir(dir) if resolved.starts_with(resolve(dir)) => {
                return Err(Error::Config(format!(
                    "{flag} {shown}: inside {}, which this command reads; write the output elsewhere",
                    dir.display()
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether `dir` is a dataset root: it has a `runs/` directory and another of [`ROOT_DIRS`]
/// (every root has its `locks/` from the first run on).
fn is_root(dir: &Path) -> bool {
    dir.join("runs").is_dir() && ROOT_DIRS[..].iter().filter(|d| dir.join(d).is_dir()).count() >= 2
}

/// Whether `a` and `b` are the same existing file (device and inode: any path, symlink or
/// hard link to it).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// `path` made absolute with its longest existing ancestor resolved (symlinks, `..`) and the
/// components that do not exist yet appended, `..` among them applied.
fn resolve(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = absolute.as_path();
    let mut rest: Vec<Component<'_>> = Vec::new();
    let mut resolved = loop {
        if let Ok(canonical) = std::fs::canonicalize(existing) {
            break canonical;
        }
        match (existing.parent(), existing.components().next_back()) {
            (Some(parent), Some(last)) => {
                rest.push(last);
                existing = parent;
            }
            _ => break PathBuf::from("/"),
        }
    };
    for component in rest.into_iter().rev() {
        match component {
            Component::ParentDir => {
                resolved.pop();
            }
            Component::Normal(name) => resolved.push(name),
            _ => {}
        }
    }
    resolved
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_in(dir: &Path) -> PathBuf {
        let root = dir.join("root");
        for d in ["runs", "locks", "presentations/dataset=mnist"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("runs/a.parquet"), "x").unwrap();
        root
    }

    #[test]
    fn outputs_inside_a_roots_tables_are_refused_by_any_path() {
        let dir = tempfile::tempdir().unwrap();
        let root = root_in(dir.path());
        std::os::unix::fs::symlink(root.join("runs"), dir.path().join("link")).unwrap();
        for refused in [
            root.join("runs/a.parquet"),
            root.join("runs/new.csv"),
            root.join("presentations/dataset=mnist/x/y.parquet"),
            root.join("checkpoints/x"),
            root.join("locks/../runs/b.parquet"),
            dir.path().join("link/c.parquet"),
        ] {
            let err = check_output("--output", &refused, &[]).unwrap_err().to_string();
            assert!(err.contains("a table directory of the dataset root"), "{err}");
        }
        // Beside the tables, and in a directory that merely has a table's name, is fine.
        check_output("--output", &root.join("order.parquet"), &[]).unwrap();
        std::fs::create_dir_all(dir.path().join("elsewhere/runs")).unwrap();
        check_output("--output", &dir.path().join("elsewhere/runs/x.csv"), &[]).unwrap();
    }

    #[test]
    fn an_output_that_is_an_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("order.parquet");
        std::fs::write(&input, "x").unwrap();
        std::fs::hard_link(&input, dir.path().join("twin.parquet")).unwrap();
        let inputs = [Input::File(&input), Input::Dir(&dir.path().join("data/mnist"))];
        for refused in [input.clone(), dir.path().join("./twin.parquet")] {
            let err = check_output("--output", &refused, &inputs).unwrap_err().to_string();
            assert!(err.contains("is the input"), "{err}");
        }
        let err = check_output("--output", &dir.path().join("data/mnist/x.png"), &inputs)
            .unwrap_err()
            .to_string();
        assert!(err.contains("which this command reads"), "{err}");
        check_output("--output", &dir.path().join("other.parquet"), &inputs).unwrap();
    }
}

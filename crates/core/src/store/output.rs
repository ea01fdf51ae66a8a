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
    /// A file it reads (an SQL file, a sorting file).
    File(&'a Path),
    /// The root it opens: nothing goes into its table directories, wherever they resolve (a
    /// symlinked `runs/` or `checkpoints/` on another disk).
    Root(&'a Path),
}

/// Refuses `output` (named by `flag` in the error) when it is an existing directory, lies
/// inside a table directory of any dataset root (see [`ROOT_DIRS`]; a root is found by its
/// `runs/` directory, whatever root the command was given), in a directory that holds a
/// dataset's files (any dataset's, whatever the command reads), or is one of `inputs` (the
/// same file, by any path or hard link).
///
/// # Errors
/// [`Error::Config`] saying which rule `output` breaks and what to do instead.
pub fn check_output(flag: &str, output: &Path, inputs: &[Input<'_>]) -> Result<()> {
    let resolved = resolve(output);
    let shown = output.display();
    if resolved.is_dir() {
        return Err(Error::Config(format!(
            "{flag} {shown}: is a directory; expected the path of a file to write"
        )));
    }
    // An output replaces its path with a new file: never a device, a FIFO or a symlink
    // (`-o /dev/null` would unlink the device).
    if let Ok(metadata) = std::fs::symlink_metadata(output)
        && !metadata.file_type().is_file()
    {
        return Err(Error::Config(format!(
            "{flag} {shown}: exists and is not a regular file (a symlink, device or FIFO); fstream replaces its outputs whole, so write to a new path"
        )));
    }
    if let Some(dir) = resolved.parent().filter(|dir| crate::data::holds_dataset_files(dir)) {
        return Err(Error::Config(format!(
            "{flag} {shown}: inside {}, which holds a dataset's files; write outputs elsewhere",
            dir.display()
        )));
    }
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
            Input::Root(root) => {
                let tables =
                    ROOT_DIRS.iter().filter_map(|d| std::fs::canonicalize(root.join(d)).ok());
                if let Some(table) = tables.into_iter().find(|t| resolved.starts_with(t)) {
                    return Err(Error::Config(format!(
                        "{flag} {shown}: inside {}, a table directory of the root {}; write outputs outside its {} directories",
                        table.display(),
                        root.display(),
                        ROOT_DIRS.map(|d| format!("{d}/")).join(" ")
                    )));
                }
            }
            Input::File(_) => {}
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
        // The root's own table directories, wherever a symlink puts them.
        let elsewhere = dir.path().join("checkpoints-disk");
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join("checkpoints")).unwrap();
        let err = check_output("-o", &elsewhere.join("x.csv"), &[Input::Root(&root)]).unwrap_err();
        assert!(err.to_string().contains("a table directory of the root"), "{err}");
        std::fs::create_dir_all(dir.path().join("elsewhere/runs")).unwrap();
        check_output("--output", &dir.path().join("elsewhere/runs/x.csv"), &[]).unwrap();
    }

    #[test]
    fn an_output_that_is_an_input_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("order.parquet");
        std::fs::write(&input, "x").unwrap();
        std::fs::hard_link(&input, dir.path().join("twin.parquet")).unwrap();
        let inputs = [Input::File(&input)];
        for refused in [input.clone(), dir.path().join("./twin.parquet")] {
            let err = check_output("--output", &refused, &inputs).unwrap_err().to_string();
            assert!(err.contains("is the input"), "{err}");
        }
        check_output("--output", &dir.path().join("other.parquet"), &inputs).unwrap();
        // Never among a dataset's files, nor onto a directory.
        std::fs::create_dir_all(dir.path().join("data/mnist")).unwrap();
        std::fs::write(dir.path().join("data/mnist/t10k-labels-idx1-ubyte.gz"), "x").unwrap();
        let err = check_output("-o", &dir.path().join("data/mnist/x.csv"), &[]).unwrap_err();
        assert!(err.to_string().contains("which holds a dataset's files"), "{err}");
        let err = check_output("-o", &dir.path().join("data"), &[]).unwrap_err();
        assert!(err.to_string().contains("-o "), "{err}");
        assert!(err.to_string().ends_with("is a directory; expected the path of a file to write"));
    }
}

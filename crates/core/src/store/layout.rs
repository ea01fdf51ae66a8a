//! Where each table's files live under a dataset root. Only `presentations` is
//! hive-partitioned (`dataset=…/run_id=…/epoch=…`): it is the big table, and partition pruning
//! lets a query read only the runs and epochs it asks for. The small tables hold one file per
//! run with `run_id` as a column.
//!
//! Every committed file ends in `.parquet`; files being written never do, so a `**/*.parquet`
//! glob sees only complete files.

use std::path::{Path, PathBuf};

/// The tables of a dataset root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// One row per presentation of an example (hive-partitioned).
    Presentations,
    /// One row per run and epoch.
    Epochs,
    /// One row per run and dataset example.
    Examples,
    /// One row per run.
    Runs,
    /// One row per run and presented example: the run's training dynamics.
    Dynamics,
}

impl Table {
    /// All tables, as registered for SQL.
    pub const ALL: [Table; 5] =
        [Table::Presentations, Table::Epochs, Table::Examples, Table::Runs, Table::Dynamics];

    /// The tables kept as one file per run (every table but `presentations`).
    pub const PER_RUN: [Table; 4] = [Table::Runs, Table::Epochs, Table::Examples, Table::Dynamics];

    /// The table's name in SQL and its directory under the root.
    pub fn name(self) -> &'static str {
        match self {
            Table::Presentations => "presentations",
            Table::Epochs => "epochs",
            Table::Examples => "examples",
            Table::Runs => "runs",
            Table::Dynamics => "dynamics",
        }
    }
}

/// Paths of a dataset root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// A layout rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Layout { root: root.into() }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of `table`.
    pub fn table_dir(&self, table: Table) -> PathBuf {
        self.root.join(table.name())
    }

    /// The glob matching every committed file of `table`.
    pub fn table_glob(&self, table: Table) -> String {
        // Each epoch partition holds one file: another (a stray copy) is never read.
        let pattern = match table {
            Table::Presentations => "**/part-0.parquet",
            _ => "*.parquet",
        };
        format!("{}/{pattern}", self.table_dir(table).display())
    }

    /// The file of a small table (`epochs`, `examples`, `runs`, `dynamics`) for one run.
    pub fn run_file(&self, table: Table, run_id: &str) -> PathBuf {
        debug_assert_ne!(table, Table::Presentations);
        self.table_dir(table).join(format!("{run_id}.parquet"))
    }

    /// The directory of one run's presentations.
    pub fn run_presentations_dir(&self, dataset: &str, run_id: &str) -> PathBuf {
        self.table_dir(Table::Presentations)
            .join(format!("dataset={dataset}"))
            .join(format!("run_id={run_id}"))
    }

    /// The file of one epoch of one run's presentations.
    pub fn presentations_file(&self, dataset: &str, run_id: &str, epoch: u32) -> PathBuf {
        self.run_presentations_dir(dataset, run_id)
            .join(format!("epoch={epoch}"))
            .join("part-0.parquet")
    }
}

impl Layout {
    /// The committed checkpoint of a run after `epoch`.
    pub fn checkpoint_file(&self, run_id: &str, epoch: u32) -> PathBuf {
        self.checkpoint_dir(run_id).join(format!("epoch-{epoch}.pt"))
    }

    /// The temporary name a trainer writes a checkpoint under before it is committed.
    pub fn checkpoint_temp_file(&self, run_id: &str, epoch: u32) -> PathBuf {
        self.checkpoint_dir(run_id).join(format!(".epoch-{epoch}.pt.tmp"))
    }

    /// The writer's disk-space reserve (see the writer), one per process.
    pub fn space_reserve_file(&self) -> PathBuf {
        self.root.join(format!("{SPACE_RESERVE_PREFIX}{}.tmp", std::process::id()))
    }

    /// Every space reserve in the root, with the process id in its name.
    ///
    /// # Errors
    /// [`crate::Error::Io`] when the root cannot be listed.
    pub fn space_reserve_files(&self) -> crate::Result<Vec<(PathBuf, Option<u32>)>> {
        use crate::error::IoContext;
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.root).at(&self.root)? {
            let name = entry.at(&self.root)?.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix(SPACE_RESERVE_PREFIX) {
                found.push((self.root.join(&name), pid.trim_end_matches(".tmp").parse().ok()));
            }
        }
        Ok(found)
    }

    /// The directory of a run's checkpoints.
    pub fn checkpoint_dir(&self, run_id: &str) -> PathBuf {
        self.root.join("checkpoints").join(run_id)
    }

    /// The epoch of a committed checkpoint file (`epoch-12.pt` → 12).
    pub fn checkpoint_epoch(&self, path: &Path) -> Option<u32> {
        let name = path.file_name()?.to_str()?;
        name.strip_prefix("epoch-")?.strip_suffix(".pt")?.parse().ok()
    }

    /// The lock file a process holds while it trains a run.
    pub fn lock_file(&self, run_id: &str) -> PathBuf {
        self.root.join("locks").join(format!("{run_id}.lock"))
    }
}

impl Layout {
    /// The run ids that have files in any table (presentation partitions, `epochs`,
    /// `examples`, `runs`), sorted. Names that are not valid run ids ([`crate::record::RunId::parse`])
    /// are left out: no path is ever built from them.
    pub fn run_ids_with_files(&self) -> Vec<String> {
        let names = |dir: PathBuf| -> Vec<String> {
            std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        };
        let mut ids = std::collections::BTreeSet::new();
        for dataset_dir in names(self.table_dir(Table::Presentations)) {
            let dir = self.table_dir(Table::Presentations).join(dataset_dir);
            ids.extend(
                names(dir).iter().filter_map(|n| n.strip_prefix("run_id=")).map(String::from),
            );
        }
        for table in Table::PER_RUN {
            let files = names(self.table_dir(table));
            let stems = files
                .iter()
                .filter(|n| !n.starts_with('.'))
                .filter_map(|n| n.strip_suffix(".parquet"));
            ids.extend(stems.map(String::from));
        }
        ids.into_iter().filter(|id| crate::record::RunId::parse(id).is_ok()).collect()
    }
}

/// Names of the writers' space reserves start with this (then the process id, `.tmp`).
const SPACE_RESERVE_PREFIX: &str = ".space-reserve-";

/// The epoch of a presentations partition directory name (`epoch=12` → 12).
pub fn parse_epoch_dir(name: &str) -> Option<u32> {
    name.strip_prefix("epoch=")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presentations_paths_are_hive_partitions() {
        let layout = Layout::new("/data/root");
        assert_eq!(
            layout.presentations_file("mnist", "mnist-s1-x", 12),
            PathBuf::from(
                "/data/root/presentations/dataset=mnist/run_id=mnist-s1-x/epoch=12/part-0.parquet"
            )
        );
        assert_eq!(
            layout.table_glob(Table::Presentations),
            "/data/root/presentations/**/part-0.parquet"
        );
    }

    #[test]
    fn small_tables_have_one_file_per_run() {
        let layout = Layout::new("r");
        assert_eq!(layout.run_file(Table::Runs, "abc"), PathBuf::from("r/runs/abc.parquet"));
        assert_eq!(layout.table_glob(Table::Epochs), "r/epochs/*.parquet");
    }

    #[test]
    fn epoch_dirs_parse() {
        assert_eq!(parse_epoch_dir("epoch=7"), Some(7));
        assert_eq!(parse_epoch_dir("epoch=x"), None);
        assert_eq!(parse_epoch_dir("run_id=7"), None);
    }
}

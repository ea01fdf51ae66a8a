//! A spec expanded into its tasks: one `fstream train` command per run, with a deterministic
//! run id from the sweep, the stage and the run's configuration, and one `fstream order`
//! command per order stage. Every command is idempotent: started again it skips a complete
//! run, resumes an incomplete one and starts a missing one (`train --resume --run-id`).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::spec::{FlagValue, Flags, Stage, StageKind, SweepSpec};
use crate::error::{Error, Result};
use crate::query::sql_string;

/// Flags that say where and how a run is trained, not what is trained: they are left out of
/// its run id, so that moving the data or changing the thread count keeps the ids.
pub const PLACEMENT_FLAGS: [&str; 8] =
    ["data_dir", "device", "no_cuda", "threads", "progress", "mirror", "no_download", "verbose"];

/// Flags whose values are paths, made absolute (from the working directory) so that the
/// commands run from anywhere.
const PATH_FLAGS: [&str; 3] = ["data_dir", "sorting_file", "input_dir"];

/// A sweep ready to run: its stages, each with its tasks.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    /// The spec.
    pub spec: SweepSpec,
    /// The dataset root every run is written to (absolute).
    pub root: PathBuf,
    /// The stages, in the spec's order (each after its dependencies).
    pub stages: Vec<PlannedStage>,
}

/// A stage and its tasks.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedStage {
    /// The stage's name.
    pub name: String,
    /// Indices into [`Sweep::stages`] of the stages it waits for.
    pub depends_on: Vec<usize>,
    /// Its tasks, in a fixed order (a Slurm array task's index is its position here).
    pub tasks: Vec<Task>,
}

/// One command of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// The run id (train) or `SWEEP-STAGE` (order).
    pub id: String,
    /// What the task produces.
    pub kind: TaskKind,
    /// The `fstream` arguments (after the program name).
    pub args: Vec<String>,
    /// The flags that vary within the stage (seed and grid), for display.
    pub varying: Vec<(String, String)>,
}

/// What a task produces.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskKind {
    /// A run of the root.
    Train,
    /// A sorting file.
    Order {
        /// The sorting file (`.parquet`).
        output: PathBuf,
        /// The runs it counts (the source stage's): a file counted over others is stale.
        runs: Vec<String>,
    },
}

impl Sweep {
    /// Expands `spec` into tasks writing to `root`; `data_dir` (if given) overrides the
    /// spec's data directory. Relative paths are taken from the working directory.
    ///
    /// # Errors
    /// [`Error::Io`] when the working directory is unknown; [`Error::Format`] naming the spec
    /// when an order stage counts runs without a dataset flag.
    pub fn plan(spec: SweepSpec, root: &Path, data_dir: Option<&Path>) -> Result<Self> {
        let root = std::path::absolute(root).map_err(|e| Error::io(root, e))?;
        let dir = sweep_dir(&root, &spec.name);
        let mut stages: Vec<PlannedStage> = Vec::new();
        for stage in &spec.stages {
            let depends_on = stage
                .depends_on
                .iter()
                .map(|name| spec.stages.iter().position(|s| &s.name == name).expect("checked"))
                .collect();
            let tasks = match &stage.kind {
                StageKind::Train { flags, grid, seeds, sorting } => {
                    let mut flags = flags.clone();
                    if let Some(dir) = data_dir {
                        flags.insert("data_dir".into(), FlagValue::Text(dir.display().to_string()));
                    }
                    let sorting = match sorting {
                        Some(order) => {
                            let order = stages.iter().find(|s| &s.name == order).expect("checked");
                            match &order.tasks[0].kind {
                                TaskKind::Order { output, runs } => {
                                    Some(Sorting { file: output.clone(), runs: runs.clone() })
                                }
                                TaskKind::Train => {
                                    unreachable!("checked: sorting names an order stage")
                                }
                            }
                        }
                        None => None,
                    };
                    train_tasks(&spec.name, stage, &flags, grid, seeds, sorting.as_ref(), &root)?
                }
                StageKind::Order { runs_of, flags } => {
                    let source = stages.iter().find(|s| &s.name == runs_of).expect("checked");
                    vec![order_task(&spec, stage, source, flags, &root, &dir)?]
                }
            };
            stages.push(PlannedStage { name: stage.name.clone(), depends_on, tasks });
        }
        check_distinct_tasks(&spec, &stages)?;
        Ok(Sweep { spec, root, stages })
    }

    /// The sweep's own directory under the root: sorting files, logs, Slurm scripts.
    pub fn dir(&self) -> PathBuf {
        sweep_dir(&self.root, &self.spec.name)
    }

    /// The log file of a task (both executors append to it).
    pub fn log_file(&self, task: &Task) -> PathBuf {
        self.dir().join("logs").join(format!("{}.log", task.id))
    }

    /// Every task, with the index of its stage.
    pub fn tasks(&self) -> impl Iterator<Item = (usize, &Task)> {
        self.stages.iter().enumerate().flat_map(|(i, s)| s.tasks.iter().map(move |t| (i, t)))
    }
}

/// Refuses two tasks of one run: grid values that are equal once parsed (`0`, `0.0` and
/// `0e0`) would start the same run twice and share one log.
///
/// # Errors
/// [`Error::Format`] naming the spec, the stage and both tasks' values.
fn check_distinct_tasks(spec: &SweepSpec, stages: &[PlannedStage]) -> Result<()> {
    let mut seen: std::collections::HashMap<&str, (&str, &Task)> = std::collections::HashMap::new();
    for stage in stages {
        for task in &stage.tasks {
            if let Some((other_stage, other)) = seen.insert(&task.id, (&stage.name, task)) {
                let shown = |t: &Task| {
                    t.varying
                        .iter()
                        .map(|(k, v)| format!("{k} = {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                return Err(Error::format(
                    &spec.path,
                    format!(
                        "stage {:?}: tasks {} (stage {other_stage:?}) and {} are the same run {}: give each grid value once",
                        stage.name,
                        shown(other),
                        shown(task),
                        task.id
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// `ROOT/sweeps/NAME`.
fn sweep_dir(root: &Path, name: &str) -> PathBuf {
    root.join("sweeps").join(name)
}

/// The name (without `.parquet`) of the sorting file an order stage writes: the stage and a
/// hash of what the file is computed from (its flags and the runs it counts), so that an
/// edited order stage or base stage writes, and its removal runs read, another file.
fn sorting_name(stage: &str, flags: &Flags, runs: &[String]) -> String {
    let mut canonical = format!("fstream sweep order v1\nstage={stage}\n");
    for (name, value) in flags {
        canonical.push_str(&format!("{name}={value}\n"));
    }
    let mut runs = runs.to_vec();
    runs.sort();
    canonical.push_str(&format!("runs={}\n", runs.join(",")));
    format!("{stage}-{}", short_hash(&canonical))
}

/// The first 8 hex digits of the SHA-256 of `text`.
fn short_hash(text: &str) -> String {
    Sha256::digest(text.as_bytes())[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// The sorting file a removal stage reads, and the runs its order stage counts.
#[derive(Debug, Clone)]
struct Sorting {
    file: PathBuf,
    runs: Vec<String>,
}

/// One train task per grid point and seed (seeds innermost).
fn train_tasks(
    sweep: &str,
    stage: &Stage,
    flags: &Flags,
    grid: &[(String, Vec<FlagValue>)],
    seeds: &[u64],
    sorting: Option<&Sorting>,
    root: &Path,
) -> Result<Vec<Task>> {
    let mut tasks = Vec::new();
    for point in grid_points(grid) {
        for &seed in seeds {
            let mut all = flags.clone();
            all.extend(point.iter().cloned());
            let sorting_name = sorting.and_then(|s| s.file.file_stem()).and_then(|s| s.to_str());
            let id = run_id(sweep, &stage.name, seed, &all, sorting_name);
            if let Some(sorting) = sorting {
                let file = FlagValue::Text(sorting.file.display().to_string());
                all.insert("sorting_file".into(), file);
            }
            let mut args = vec!["train".to_string()];
            args.extend(["--output-dir".into(), root.display().to_string()]);
            args.extend(["--run-id".into(), id.clone(), "--resume".into()]);
            args.extend(["--seed".into(), seed.to_string()]);
            if let Some(sorting) = sorting {
                args.extend(["--sorting-runs".into(), sorting.runs.join(",")]);
            }
            args.extend(command_flags(&all)?);
            let mut varying = vec![("seed".to_string(), seed.to_string())];
            varying.extend(point.iter().map(|(k, v)| (k.clone(), v.to_string())));
            tasks.push(Task { id, kind: TaskKind::Train, args, varying });
        }
    }
    Ok(tasks)
}

/// The order task over the runs of `source`, with the dataset of its runs.
fn order_task(
    spec: &SweepSpec,
    stage: &Stage,
    source: &PlannedStage,
    flags: &Flags,
    root: &Path,
    dir: &Path,
) -> Result<Task> {
    let source_flags = match &spec.stage(&source.name).expect("checked").kind {
        StageKind::Train { flags, .. } => flags,
        StageKind::Order { .. } => unreachable!("checked: order stages count train stages"),
    };
    let dataset = source_flags.get("dataset").ok_or_else(|| {
        Error::format(
            &spec.path,
            format!("stage {:?}: stage {:?} has no dataset flag", stage.name, source.name),
        )
    })?;
    let runs: Vec<String> = source.tasks.iter().map(|t| t.id.clone()).collect();
    let ids: Vec<String> = runs.iter().map(|id| sql_string(id)).collect();
    let mut args = vec!["order".to_string()];
    args.extend(["--root".into(), root.display().to_string()]);
    args.extend(["--dataset".into(), dataset.to_string()]);
    args.extend(["--where".into(), format!("run_id IN ({})", ids.join(", "))]);
    let name = sorting_name(&stage.name, flags, &runs);
    args.extend(["--output-dir".into(), dir.display().to_string()]);
    args.extend(["--output-name".into(), name.clone()]);
    args.extend(command_flags(flags)?);
    let output = dir.join(format!("{name}.parquet"));
    Ok(Task {
        id: format!("{}-{}", spec.name, stage.name),
        kind: TaskKind::Order { output, runs },
        args,
        varying: Vec::new(),
    })
}

/// Every combination of the grid's values (one empty point for no grid).
fn grid_points(grid: &[(String, Vec<FlagValue>)]) -> Vec<Vec<(String, FlagValue)>> {
    let mut points = vec![Vec::new()];
    for (name, values) in grid {
        points = points
            .into_iter()
            .flat_map(|point| {
                values.iter().map(move |value| {
                    let mut point = point.clone();
                    point.push((name.clone(), value.clone()));
                    point
                })
            })
            .collect();
    }
    points
}

/// A run's id: `SWEEP-STAGE-sSEED-HASH`, HASH the first 8 hex digits of the SHA-256 of the
/// sweep, the stage, the seed and every flag but the placement ones (sorted by name; a sorting
/// file the sweep writes counts by its name, `sorting`, which hashes the order stage's flags
/// and the runs it counts, not by its path). The same spec gives the same ids wherever it
/// runs, and a removal run's id changes with its order and base stages, so an edited spec
/// never reuses removal runs of the old one.
pub fn run_id(sweep: &str, stage: &str, seed: u64, flags: &Flags, sorting: Option<&str>) -> String {
    let mut canonical =
        format!("fstream sweep run v1\nsweep={sweep}\nstage={stage}\nseed={seed}\n");
    for (name, value) in flags {
        if !PLACEMENT_FLAGS.contains(&name.as_str()) {
            canonical.push_str(&format!("{name}={value}\n"));
        }
    }
    if let Some(sorting) = sorting {
        canonical.push_str(&format!("sorting={sorting}\n"));
    }
    format!("{sweep}-{stage}-s{seed}-{}", short_hash(&canonical))
}

/// The command-line form of `flags`: `--name value`, `--name` for a true switch, nothing for
/// a false one; paths made absolute.
fn command_flags(flags: &Flags) -> Result<Vec<String>> {
    let mut args = Vec::new();
    for (name, value) in flags {
        let flag = format!("--{}", name.replace('_', "-"));
        match value {
            FlagValue::Switch(true) => args.push(flag),
            FlagValue::Switch(false) => {}
            FlagValue::Text(path) if PATH_FLAGS.contains(&name.as_str()) => {
                let absolute = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
                args.extend([flag, absolute.display().to_string()]);
            }
            other => args.extend([flag, other.argument().unwrap_or_default()]),
        }
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> Sweep {
        let spec = SweepSpec::parse(text, Path::new("test.toml")).unwrap();
        Sweep::plan(spec, Path::new("/r"), None).unwrap()
    }

    const REMOVAL: &str = r#"
        name = "small"
        [train]
        dataset = "mnist"
        epochs = 3
        no_dropout = true
        [[stage]]
        name = "base"
        seeds = [1, 2]
        [[stage]]
        name = "order"
        order = "base"
        [[stage]]
        name = "removal"
        sorting = "order"
        seeds = "1..2"
        [stage.grid]
        remove_n = { range = [0, 40, 20] }
        keep_lowest_n = [0, -1]
    "#;

    #[test]
    fn stages_expand_into_the_product_of_grid_and_seeds() {
        let sweep = plan(REMOVAL);
        let counts: Vec<usize> = sweep.stages.iter().map(|s| s.tasks.len()).collect();
        assert_eq!(counts, [2, 1, 8]);
        assert_eq!(sweep.stages[2].depends_on, [1]);
        assert_eq!(sweep.stages[1].depends_on, [0]);
        let first = &sweep.stages[2].tasks[0];
        assert_eq!(
            first.varying,
            [
                ("seed".into(), "1".into()),
                ("keep_lowest_n".into(), "0".into()),
                ("remove_n".into(), "0".into())
            ]
        );
        let args = first.args.join(" ");
        assert!(args.starts_with("train --output-dir /r --run-id small-removal-s1-"), "{args}");
        assert!(
            args.contains(
                "--keep-lowest-n 0 --no-dropout --remove-n 0 --sorting-file /r/sweeps/small/order-"
            ),
            "{args}"
        );
        let order = sweep.stages[1].tasks[0].args.join(" ");
        let base_ids: Vec<&str> = sweep.stages[0].tasks.iter().map(|t| t.id.as_str()).collect();
        assert!(
            order.contains(&format!("--where run_id IN ('{}', '{}')", base_ids[0], base_ids[1])),
            "{order}"
        );
    }

    #[test]
    fn run_ids_depend_on_configuration_but_not_on_placement() {
        let mut flags = Flags::new();
        flags.insert("dataset".into(), FlagValue::Text("mnist".into()));
        let id = run_id("s", "base", 1, &flags, None);
        assert_eq!(id, run_id("s", "base", 1, &flags, None));
        let mut placed = flags.clone();
        placed.insert("data_dir".into(), FlagValue::Text("/elsewhere".into()));
        placed.insert("threads".into(), FlagValue::Integer(4));
        assert_eq!(id, run_id("s", "base", 1, &placed, None));
        let mut other = flags.clone();
        other.insert("epochs".into(), FlagValue::Integer(4));
        assert_ne!(id, run_id("s", "base", 1, &other, None));
        assert_ne!(id, run_id("s", "base", 2, &flags, None));
        assert_ne!(id, run_id("s", "other", 1, &flags, None));
        // A removal run's id follows its sorting file, whose name follows the order stage's
        // flags and the runs it counts (in any order).
        let (a, b) = ("s-base-s1-aaaaaaaa".to_string(), "s-base-s2-bbbbbbbb".to_string());
        let name = sorting_name("order", &Flags::new(), &[a.clone(), b.clone()]);
        assert_eq!(name, sorting_name("order", &Flags::new(), &[b.clone(), a.clone()]));
        assert_ne!(name, sorting_name("order", &Flags::new(), std::slice::from_ref(&a)));
        let mut tie_break = Flags::new();
        tie_break.insert("tie_break".into(), FlagValue::Text("random".into()));
        assert_ne!(name, sorting_name("order", &tie_break, &[a.clone(), b.clone()]));
        let sorted = run_id("s", "base", 1, &flags, Some(&name));
        assert_ne!(sorted, id);
        assert!(id.starts_with("s-base-s1-") && id.len() == "s-base-s1-".len() + 8, "{id}");
    }

    #[test]
    fn bad_specs_name_the_stage_and_the_problem() {
        let error =
            |text: &str| SweepSpec::parse(text, Path::new("x.toml")).unwrap_err().to_string();
        assert_eq!(
            error("name = \"s\"\n[[stage]]\nname = \"a\"\nsorting = \"order\""),
            "x.toml: stage \"a\": sorting = \"order\": no earlier stage of that name"
        );
        assert_eq!(
            error("name = \"s\"\n[[stage]]\nname = \"a\"\n[stage.flags]\nseed = 3"),
            "x.toml: stage \"a\": seed: set by the sweep itself, not in a spec"
        );
        assert_eq!(
            error(
                "name = \"s\"\n[[stage]]\nname = \"a\"\n[stage.grid]\nremove_n = { range = [0, 10] }"
            ),
            "x.toml: stage \"a\": grid.remove_n: range: expected three integers [start, stop, step]"
        );
        assert_eq!(
            error("name = \"S\""),
            "x.toml: name: \"S\": expected 1 to 64 lower-case letters, digits and dashes"
        );
        assert!(error("name = \"s\"\nstages = 1").contains("unknown field `stages`"));
    }
}

//! Sweep specifications: a TOML file of stages (train runs over seeds and a grid of `train`
//! flags, or an `order` step over an earlier stage's runs), read and checked into a
//! [`SweepSpec`]. The format is documented in docs/sweeps.md.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// A value of a `train` or `order` flag: `true` gives the flag alone, `false` leaves it out,
/// anything else is its value.
#[derive(Debug, Clone, PartialEq)]
pub enum FlagValue {
    /// A switch (`no_dropout = true`).
    Switch(bool),
    /// A whole number.
    Integer(i64),
    /// A number with a fraction.
    Float(f64),
    /// Text (names, paths, lists such as `lr_milestones = "60,120,160"`).
    Text(String),
}

impl FlagValue {
    /// The value as the command line spells it (`None` for a switch).
    pub fn argument(&self) -> Option<String> {
        match self {
            FlagValue::Switch(_) => None,
            FlagValue::Integer(n) => Some(n.to_string()),
            FlagValue::Float(x) => Some(x.to_string()),
            FlagValue::Text(s) => Some(s.clone()),
        }
    }

    fn from_toml(value: &toml::Value) -> std::result::Result<Self, String> {
        match value {
            toml::Value::Boolean(b) => Ok(FlagValue::Switch(*b)),
            toml::Value::Integer(n) => Ok(FlagValue::Integer(*n)),
            toml::Value::Float(x) => Ok(FlagValue::Float(*x)),
            toml::Value::String(s) => Ok(FlagValue::Text(s.clone())),
            other => {
                Err(format!("expected a boolean, number or string, found {}", other.type_str()))
            }
        }
    }
}

impl std::fmt::Display for FlagValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FlagValue::Switch(b) => write!(f, "{b}"),
            other => f.write_str(&other.argument().unwrap_or_default()),
        }
    }
}

/// Flags by name, in `snake_case` (`remove_n`; written `remove-n` in a spec they mean the same).
pub type Flags = BTreeMap<String, FlagValue>;

/// A checked sweep specification.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSpec {
    /// The sweep's name: the prefix of its run ids, and its directory `ROOT/sweeps/NAME`.
    pub name: String,
    /// What it reproduces.
    pub description: String,
    /// The file it was read from.
    pub path: PathBuf,
    /// The stages, each after the stages it depends on.
    pub stages: Vec<Stage>,
}

/// One stage of a sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    /// Its name (unique in the sweep).
    pub name: String,
    /// Stages that must be complete before it starts (named by `after`, `order` or `sorting`).
    pub depends_on: Vec<String>,
    /// What it does.
    pub kind: StageKind,
}

/// What a stage does.
#[derive(Debug, Clone, PartialEq)]
pub enum StageKind {
    /// Train one run per seed and grid point.
    Train {
        /// `train` flags every run of the stage gets (the spec's `[train]` table, then the
        /// stage's `flags`).
        flags: Flags,
        /// Flags that vary, each over its values; the runs are the product of all, in the
        /// order of the flag names, with the seeds innermost.
        grid: Vec<(String, Vec<FlagValue>)>,
        /// The seeds.
        seeds: Vec<u64>,
        /// The order stage whose sorting file the runs use (`--sorting-file`).
        sorting: Option<String>,
    },
    /// Count forgetting events over the runs of a train stage and write the sorting file.
    Order {
        /// The train stage whose runs are counted.
        runs_of: String,
        /// Extra `order` flags (`fidelity`, `epochs`, `tie_break`, `seed`).
        flags: Flags,
    },
}

/// `train` flags the sweep sets itself.
const RESERVED_TRAIN_FLAGS: [&str; 6] =
    ["seed", "seeds", "output_dir", "resume", "run_id", "quiet"];
/// `order` flags the sweep sets itself.
const RESERVED_ORDER_FLAGS: [&str; 7] =
    ["input_dir", "root", "where", "dataset", "output_dir", "output_name", "quiet"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    train: toml::Table,
    #[serde(default)]
    stage: Vec<RawStage>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    name: String,
    order: Option<String>,
    sorting: Option<String>,
    seeds: Option<toml::Value>,
    #[serde(default)]
    after: Vec<String>,
    #[serde(default)]
    flags: toml::Table,
    #[serde(default)]
    grid: toml::Table,
}

impl SweepSpec {
    /// Reads and checks the spec at `path`.
    ///
    /// # Errors
    /// [`Error::Input`] when the file cannot be read; [`Error::Format`] naming the file (and
    /// the stage) when it is not a valid spec.
    pub fn read(path: &Path) -> Result<Self> {
        let text = crate::input::read_text(path)?;
        Self::parse(&text, path)
    }

    /// Parses and checks spec text; `path` names it in errors.
    ///
    /// # Errors
    /// [`Error::Format`] naming `path` (and the stage) when it is not a valid spec.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let raw: RawSpec =
            toml::from_str(text).map_err(|e| Error::format(path, one_line(&e.to_string())))?;
        check_name(&raw.name).map_err(|e| Error::format(path, format!("name: {e}")))?;
        let defaults = flags(&raw.train, &RESERVED_TRAIN_FLAGS)
            .map_err(|e| Error::format(path, format!("[train]: {e}")))?;
        let mut stages: Vec<Stage> = Vec::new();
        for raw_stage in &raw.stage {
            let stage = stage(raw_stage, &defaults, &stages)
                .map_err(|e| Error::format(path, format!("stage {:?}: {e}", raw_stage.name)))?;
            stages.push(stage);
        }
        if stages.is_empty() {
            return Err(Error::format(path, "no [[stage]] tables: a sweep needs at least one"));
        }
        Ok(SweepSpec {
            name: raw.name,
            description: raw.description,
            path: path.to_path_buf(),
            stages,
        })
    }

    /// The stage named `name`.
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }
}

/// Checks one stage against the stages before it (so dependencies point backwards and the
/// file's order is an order to run them in).
fn stage(
    raw: &RawStage,
    defaults: &Flags,
    earlier: &[Stage],
) -> std::result::Result<Stage, String> {
    check_name(&raw.name)?;
    if earlier.iter().any(|s| s.name == raw.name) {
        return Err("a stage of this name comes earlier".into());
    }
    let find = |name: &str, what: &str| -> std::result::Result<&Stage, String> {
        earlier
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| format!("{what} = {name:?}: no earlier stage of that name"))
    };
    let mut depends_on: Vec<String> = Vec::new();
    let mut depend_on = |name: &str| {
        if !depends_on.iter().any(|d| d == name) {
            depends_on.push(name.to_string());
        }
    };
    for name in &raw.after {
        find(name, "after")?;
        depend_on(name);
    }
    let kind = if let Some(runs_of) = &raw.order {
        if raw.sorting.is_some() || raw.seeds.is_some() || !raw.grid.is_empty() {
            return Err("an order stage takes no sorting, seeds or grid".into());
        }
        if !matches!(find(runs_of, "order")?.kind, StageKind::Train { .. }) {
            return Err(format!("order = {runs_of:?}: not a train stage"));
        }
        depend_on(runs_of);
        StageKind::Order {
            runs_of: runs_of.clone(),
            flags: flags(&raw.flags, &RESERVED_ORDER_FLAGS)?,
        }
    } else {
        let mut all = defaults.clone();
        all.extend(flags(&raw.flags, &RESERVED_TRAIN_FLAGS)?);
        if let Some(sorting) = &raw.sorting {
            if !matches!(find(sorting, "sorting")?.kind, StageKind::Order { .. }) {
                return Err(format!("sorting = {sorting:?}: not an order stage"));
            }
            if all.contains_key("sorting_file") {
                return Err("both sorting and a sorting_file flag: give one".into());
            }
            depend_on(sorting);
        }
        let mut grid = Vec::new();
        for (key, values) in &raw.grid {
            let name = flag_name(key, &RESERVED_TRAIN_FLAGS)?;
            if all.contains_key(&name) {
                return Err(format!("grid.{key}: also set as a flag; give it in one place"));
            }
            let values = grid_values(values).map_err(|e| format!("grid.{key}: {e}"))?;
            grid.push((name, values));
        }
        grid.sort_by(|a, b| a.0.cmp(&b.0));
        let seeds = match &raw.seeds {
            None => vec![1],
            Some(value) => seeds(value).map_err(|e| format!("seeds: {e}"))?,
        };
        let tasks =
            grid.iter().fold(seeds.len() as i128, |n, (_, values)| n * values.len() as i128);
        check_task_count(tasks, "the grid's points times the seeds")?;
        StageKind::Train { flags: all, grid, seeds, sorting: raw.sorting.clone() }
    };
    Ok(Stage { name: raw.name.clone(), depends_on, kind })
}

/// The flags of a TOML table, refusing the `reserved` ones.
fn flags(table: &toml::Table, reserved: &[&str]) -> std::result::Result<Flags, String> {
    table
        .iter()
        .map(|(key, value)| {
            let name = flag_name(key, reserved)?;
            let value = FlagValue::from_toml(value).map_err(|e| format!("{key}: {e}"))?;
            Ok((name, value))
        })
        .collect()
}

/// A spec key as a flag name (`remove-n` and `remove_n` are both `remove_n`).
fn flag_name(key: &str, reserved: &[&str]) -> std::result::Result<String, String> {
    let name = key.replace('-', "_");
    if reserved.contains(&name.as_str()) {
        return Err(format!("{key}: set by the sweep itself, not in a spec"));
    }
    if name.is_empty()
        || !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(format!("{key}: expected a flag name in lower case"));
    }
    Ok(name)
}

/// A grid's values: a non-empty array of scalars, or `{ range = [start, stop, step] }` with
/// Python's `range` meaning (stop excluded), as the reference's README writes its grids.
fn grid_values(value: &toml::Value) -> std::result::Result<Vec<FlagValue>, String> {
    let values: Vec<FlagValue> = match value {
        toml::Value::Array(items) => {
            items.iter().map(FlagValue::from_toml).collect::<std::result::Result<_, _>>()?
        }
        toml::Value::Table(table) => {
            let bounds = match (table.get("range"), table.len()) {
                (Some(toml::Value::Array(bounds)), 1) => bounds,
                _ => return Err("expected an array or { range = [start, stop, step] }".into()),
            };
            let numbers: Vec<i64> = bounds.iter().filter_map(toml::Value::as_integer).collect();
            let [start, stop, step] = numbers[..] else {
                return Err("range: expected three integers [start, stop, step]".into());
            };
            if step <= 0 || numbers.len() != bounds.len() {
                return Err("range: expected three integers with step at least 1".into());
            }
            let span = (i128::from(stop) - i128::from(start)).max(0);
            let count = (span + i128::from(step) - 1) / i128::from(step);
            check_task_count(count, "range")?;
            (start..stop).step_by(step as usize).map(FlagValue::Integer).collect()
        }
        _ => return Err("expected an array or { range = [start, stop, step] }".into()),
    };
    if values.is_empty() {
        return Err("no values".into());
    }
    if values.iter().any(|v| matches!(v, FlagValue::Switch(false))) {
        return Err("false leaves a switch out; vary switches as [true, false] is not supported, use two stages".into());
    }
    Ok(values)
}

/// The most tasks one stage expands into: the paper's largest grid (Figure 6) has 600 runs.
/// A bound keeps a typo (`range = [0, 1000000000, 1]`) from planning for hours.
pub const MAX_TASKS_PER_STAGE: i128 = 10_000;

/// Refuses `count` tasks of `what` beyond [`MAX_TASKS_PER_STAGE`], before any is built.
fn check_task_count(count: i128, what: &str) -> std::result::Result<(), String> {
    if count > MAX_TASKS_PER_STAGE {
        return Err(format!(
            "{what} give {count} tasks, more than the {MAX_TASKS_PER_STAGE} a stage may have; split the stage"
        ));
    }
    Ok(())
}

/// Seeds: an array of integers, or `"A..B"` (inclusive) as `train --seeds` takes it.
fn seeds(value: &toml::Value) -> std::result::Result<Vec<u64>, String> {
    let seeds: Vec<u64> = match value {
        toml::Value::Array(items) => items
            .iter()
            .map(|v| v.as_integer().and_then(|n| u64::try_from(n).ok()))
            .collect::<Option<_>>()
            .ok_or("expected non-negative integers")?,
        toml::Value::String(range) => {
            let parse = |s: &str| s.trim().parse::<u64>().ok();
            match range.split_once("..").map(|(a, b)| (parse(a), parse(b))) {
                Some((Some(a), Some(b))) if a <= b => {
                    check_task_count(i128::from(b) - i128::from(a) + 1, "the seeds")?;
                    (a..=b).collect()
                }
                _ => return Err(format!("{range:?}: expected \"A..B\" with A <= B")),
            }
        }
        _ => return Err("expected an array of integers or \"A..B\"".into()),
    };
    if seeds.is_empty() {
        return Err("no seeds".into());
    }
    let unique: HashSet<u64> = seeds.iter().copied().collect();
    if unique.len() != seeds.len() {
        return Err("a seed is given twice".into());
    }
    Ok(seeds)
}

/// Sweep and stage names become parts of run ids and file names: lower-case letters, digits
/// and dashes.
fn check_name(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('-')
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!("{name:?}: expected 1 to 64 lower-case letters, digits and dashes"))
    }
}

/// The TOML parser's message on one line.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

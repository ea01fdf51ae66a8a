//! Forgetting events and counts (docs/semantics.md): per run, an example's count is the number of
//! times `correct` went from true to false between consecutive presentations, or, if it was
//! never correct, a penalty (its number of presentations; the reference used its `--epochs`
//! flag, bug 4). Counts are summed over runs and sorted ascending with a deterministic
//! tie-break.
//!
//! A run's counts come from its `dynamics` file (one row per example) when that covers the
//! epochs counted. Otherwise (an `--epochs N` prefix) the layout makes streaming cheap: each
//! epoch partition is one file sorted by `example_id`, read in epoch order into dense
//! per-example state. No sort, no group-by; runs are counted in parallel.

use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use rand::seq::SliceRandom;

use super::Catalog;
use super::predicate::RunsPredicate;
use crate::dynamics::RunDynamics;
use crate::error::{Error, Result, first_line, or_none};
use crate::fidelity::Fidelity;
use crate::record::RunInfo;
use crate::store::checksums::{Checksums, check_file};
use crate::store::dynamics::{Needed, read_dynamics, rebuild_dynamics};
use crate::store::layout::Table;
use crate::store::schema::{RunStatus, col};
use crate::store::sorting::{Ranked, SortingFile};

/// How ties between equal forgetting counts are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TieBreak {
    /// By ascending example id (default; stable and reproducible).
    #[default]
    ById,
    /// By a seeded random shuffle (the paper's "ties are broken at random", reproducibly).
    Random {
        /// Shuffle seed.
        seed: u64,
    },
}

/// The reference's `--epochs` default, the faithful never-learned penalty.
pub const REFERENCE_EPOCHS: u32 = 200;

/// Which runs to count and how.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderOptions {
    /// Dataset name the runs must have.
    pub dataset: String,
    /// Extra SQL predicate over the `runs` table (e.g. `no_dropout AND seed < 3`).
    pub where_sql: Option<String>,
    /// Also count runs that are still running or failed (their committed epochs).
    pub include_incomplete: bool,
    /// Use only the first N epochs of each run (the reference's `--epochs`).
    pub epochs: Option<u32>,
    /// Corrected or faithful semantics.
    pub fidelity: Fidelity,
    /// Tie-break of equal counts.
    pub tie_break: TieBreak,
}

impl OrderOptions {
    /// The SQL condition over `runs` that selects these options' runs: their dataset and the
    /// `--where` predicate (parsed against `catalog`'s runs columns, see [`RunsPredicate`]).
    /// `qualifier` names the runs table in a join (`r`), or is empty.
    ///
    /// # Errors
    /// [`Error::Config`] when the predicate is not one condition over the runs columns.
    pub fn runs_condition(&self, catalog: &Catalog, qualifier: &str) -> Result<String> {
        let prefix = if qualifier.is_empty() { String::new() } else { format!("{qualifier}.") };
        let dataset = format!("{prefix}{} = {}", col::DATASET, super::sql_string(&self.dataset));
        Ok(match self.where_sql.as_deref() {
            Some(w) => {
                let predicate = RunsPredicate::parse(w, &catalog.runs_columns()?)?;
                format!("{dataset} AND {}", predicate.to_sql(qualifier))
            }
            None => dataset,
        })
    }
}

/// A run chosen for counting.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectedRun {
    /// The run.
    pub run_id: String,
    /// Its status (a failed run's error is not read here).
    pub status: RunStatus,
    /// Epochs it committed.
    pub epochs_completed: u32,
    /// Size of its dataset's training split.
    pub dataset_examples: u32,
    /// Its whole recorded configuration.
    pub info: RunInfo,
}

/// Why a matching run is not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Running or failed (counted with `include_incomplete`).
    Incomplete,
    /// Trained with `--no-record`: no presentations.
    NotRecorded,
}

/// The runs [`select_runs`] chose.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSelection {
    /// The runs to count.
    pub counted: Vec<SelectedRun>,
    /// Matching runs that are not counted, and why.
    pub skipped: Vec<(SelectedRun, SkipReason)>,
}

/// Runs matching the options, and those skipped (with why). The counted runs must be
/// comparable: one pixel permutation, one training set, no run twice.
///
/// # Errors
/// [`Error::Config`] when the `--where` predicate is invalid, no run matches, or the runs
/// cannot be summed (see [`check_comparable`]).
pub fn select_runs(catalog: &Catalog, options: &OrderOptions) -> Result<RunSelection> {
    let where_error = |e: Error| match e {
        Error::Polars(e) => {
            let where_sql = options.where_sql.as_deref().unwrap_or("");
            Error::Config(format!("--where {where_sql:?}: {}", first_line(&e.to_string())))
        }
        other => other,
    };
    let matching = matching_runs(catalog, &options.runs_condition(catalog, "")?);
    let mut selected = Vec::new();
    let mut skipped = Vec::new();
    for run in matching.map_err(where_error)? {
        if !run.info.record_presentations {
            skipped.push((run, SkipReason::NotRecorded));
        } else if options.include_incomplete || run.status == RunStatus::Complete {
            selected.push(run);
        } else {
            skipped.push((run, SkipReason::Incomplete));
        }
    }
    if selected.is_empty() {
        let why = |reason| skipped.iter().any(|(_, r)| *r == reason);
        let why = match (why(SkipReason::Incomplete), why(SkipReason::NotRecorded)) {
            (true, _) => " (incomplete runs exist: see --include-incomplete)",
            (false, true) => {
                " (the matching runs were trained with --no-record: they have no presentations to count)"
            }
            (false, false) => "",
        };
        return Err(Error::Config(format!(
            "no complete run of dataset '{}' matches{}{why}",
            options.dataset,
            options.where_sql.as_deref().map_or(String::new(), |w| format!(" --where {w:?}")),
        )));
    }
    check_comparable(&selected)?;
    Ok(RunSelection { counted: selected, skipped })
}

/// Every run `condition` (SQL over `runs`, unqualified) selects, by id.
///
/// # Errors
/// [`Error::Polars`] when the condition cannot be run; [`Error::Config`] for a run whose
/// `config` or `status` is not fstream's.
pub fn matching_runs(catalog: &Catalog, condition: &str) -> Result<Vec<SelectedRun>> {
    let sql = format!(
        "SELECT {}, {}, {}, {}, {} FROM runs WHERE {condition} ORDER BY {}",
        col::RUN_ID,
        col::STATUS,
        col::EPOCHS_COMPLETED,
        col::DATASET_EXAMPLES,
        col::CONFIG,
        col::RUN_ID,
    );
    let frame = catalog.sql_context()?.execute(&sql)?.collect()?;
    let ids = frame.column(col::RUN_ID)?.str()?;
    let statuses = frame.column(col::STATUS)?.str()?;
    let epochs = frame.column(col::EPOCHS_COMPLETED)?.u32()?;
    let sizes = frame.column(col::DATASET_EXAMPLES)?.u32()?;
    let configs = frame.column(col::CONFIG)?.str()?;
    (0..frame.height())
        .map(|i| {
            let run_id = ids.get(i).unwrap_or_default().to_string();
            let info: RunInfo = serde_json::from_str(configs.get(i).unwrap_or_default())
                .map_err(|e| Error::Config(format!("run {run_id}: invalid config column: {e}")))?;
            Ok(SelectedRun {
                status: RunStatus::from_stored(statuses.get(i).unwrap_or_default(), None)
                    .map_err(|e| Error::Config(format!("run {run_id}: {e}")))?,
                epochs_completed: epochs.get(i).unwrap_or_default(),
                dataset_examples: sizes.get(i).unwrap_or_default(),
                run_id,
                info,
            })
        })
        .collect()
}

/// Refuses runs whose counts must not be summed: different pixel permutations (permuted
/// MNIST), different data (their recorded `data_sha256` fingerprints differ: the same example
/// id is another image or label), different training sets (removal flags), or the same run
/// twice (same configuration and seed).
///
/// # Errors
/// [`Error::Config`] naming two such runs and how to select comparable ones.
pub fn check_comparable(runs: &[SelectedRun]) -> Result<()> {
    let training_set = |r: &RunInfo| {
        (r.sorting_file.clone(), r.remove_n, r.keep_lowest_n, r.remove_subsample, r.train_examples)
    };
    let first = &runs[0];
    for run in &runs[1..] {
        let (a, b) = (&first.info, &run.info);
        if a.permutation_seed != b.permutation_seed {
            return Err(Error::Config(format!(
                "runs {} and {} were trained on different pixel permutations (permutation_seed {} and {}): their counts cannot be summed; select one with --where \"permutation_seed = N\"",
                first.run_id,
                run.run_id,
                or_none(a.permutation_seed),
                or_none(b.permutation_seed)
            )));
        }
        if training_set(a) != training_set(b) {
            return Err(Error::Config(format!(
                "runs {} and {} trained on different training sets (remove_n {} and {}, sorting_file {} and {}, {} and {} examples): removed examples would be counted over fewer runs; select one training set with --where",
                first.run_id,
                run.run_id,
                a.remove_n,
                b.remove_n,
                or_none(a.sorting_file.as_ref()),
                or_none(b.sorting_file.as_ref()),
                a.train_examples,
                b.train_examples
            )));
        }
    }
    check_same_data(runs)?;
    check_no_twins(runs)
}

/// Refuses runs trained on different data (their `data_sha256` fingerprints differ: the same
/// example id is another image or label). Removal and noise runs share their base runs'
/// fingerprint: it is taken before removal and noise.
///
/// # Errors
/// [`Error::Config`] naming two such runs and their data directories.
pub fn check_same_data(runs: &[SelectedRun]) -> Result<()> {
    let known: Vec<&SelectedRun> = runs.iter().filter(|r| !r.info.data_sha256.is_empty()).collect();
    let Some(first) = known.first() else { return Ok(()) };
    match known.iter().find(|r| r.info.data_sha256 != first.info.data_sha256) {
        Some(other) => Err(different_data(
            [&first.run_id, &other.run_id],
            [&first.info.data_sha256, &other.info.data_sha256],
            [&first.info.data_dir, &other.info.data_dir],
        )),
        None => Ok(()),
    }
}

/// Refuses the same run twice (same configuration and seed: a copy, or an import done
/// twice), which any sum or mean would count twice.
///
/// # Errors
/// [`Error::Config`] naming both runs.
pub fn check_no_twins(runs: &[SelectedRun]) -> Result<()> {
    for (i, run) in runs.iter().enumerate() {
        if let Some(twin) = runs[..i].iter().find(|other| other.info.same_experiment(&run.info)) {
            return Err(Error::Config(format!(
                "runs {} and {} are the same run (configuration and seed {}): summing or averaging both counts it twice; delete one with `fstream rm` or leave it out with --where",
                twin.run_id, run.run_id, run.info.seed
            )));
        }
    }
    Ok(())
}

/// The data fingerprint of runs [`check_comparable`] accepted (`None` when no run recorded
/// one).
pub fn data_fingerprint(runs: &[SelectedRun]) -> Option<String> {
    runs.iter().map(|r| &r.info.data_sha256).find(|f| !f.is_empty()).cloned()
}

/// The error of two runs trained on different data: their ids, `data_sha256` fingerprints and
/// data directories.
pub(crate) fn different_data(runs: [&str; 2], fingerprints: [&str; 2], dirs: [&str; 2]) -> Error {
    Error::Config(format!(
        "runs {} and {} were trained on different data (data_sha256 {} from {}, {} from {}): their numbers cannot be combined; select the runs of one data set with --where \"data_sha256 = '…'\"",
        runs[0],
        runs[1],
        short_fingerprint(fingerprints[0]),
        dirs[0],
        short_fingerprint(fingerprints[1]),
        dirs[1]
    ))
}

/// The first 12 hex digits of a fingerprint, as errors show it.
pub fn short_fingerprint(fingerprint: &str) -> &str {
    &fingerprint[..fingerprint.len().min(12)]
}

/// Forgetting counts summed over runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForgettingCounts {
    /// Sum over runs of each example's count (0 for never-presented examples).
    pub totals: Vec<u32>,
    /// Whether any counted run presented the example.
    pub presented: Vec<bool>,
}

/// Counts forgetting events of `runs` (chosen by [`select_runs`]).
///
/// # Errors
/// [`Error::Config`] when runs of different sizes or epoch counts would be mixed (see
/// [`plan_epochs`]); [`Error::Damaged`] naming the file when a partition is corrupt.
pub fn count_forgetting(
    catalog: &Catalog,
    runs: &[SelectedRun],
    options: &OrderOptions,
) -> Result<ForgettingCounts> {
    let plan = plan_epochs(runs, options)?;
    let n = plan.num_examples;
    let empty = || ForgettingCounts { totals: vec![0; n], presented: vec![false; n] };
    fold_runs(
        catalog,
        runs,
        &plan,
        Needed::Correctness,
        empty,
        |sums, dynamics| {
            for i in 0..n {
                if let Some(count) = dynamics.forgetting_count(i, plan.penalty) {
                    sums.totals[i] += count;
                    sums.presented[i] = true;
                }
            }
        },
        |sums, other| {
            for i in 0..n {
                sums.totals[i] += other.totals[i];
                sums.presented[i] |= other.presented[i];
            }
        },
    )
}

/// Which epochs of each selected run are counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochPlan {
    /// Examples in the runs' dataset.
    pub num_examples: usize,
    /// Epochs counted of each run (its first ones), in the order of the runs.
    pub epochs: Vec<u32>,
    /// The faithful never-learned penalty (the reference's `--epochs`), if any.
    pub penalty: Option<u32>,
}

/// Checks that `runs` can be counted together under `options` and says how many epochs of
/// each are counted: all committed ones, the first `--epochs N`, or (faithful) at most N.
///
/// # Errors
/// [`Error::Config`] when the runs' datasets differ in size, `--epochs` is 0 or more than a
/// run committed, or (corrected) the runs would be counted over different epoch counts.
pub fn plan_epochs(runs: &[SelectedRun], options: &OrderOptions) -> Result<EpochPlan> {
    let num_examples = runs[0].dataset_examples as usize;
    if let Some(other) = runs.iter().find(|r| r.dataset_examples as usize != num_examples) {
        return Err(Error::Config(format!(
            "runs {} and {} have datasets of different sizes ({num_examples} and {})",
            runs[0].run_id, other.run_id, other.dataset_examples
        )));
    }
    if options.epochs == Some(0) {
        return Err(Error::Config("--epochs must be at least 1".into()));
    }
    if let (Fidelity::Corrected, Some(epochs)) = (options.fidelity, options.epochs)
        && let Some(short) = runs.iter().find(|r| r.epochs_completed < epochs)
    {
        return Err(Error::Config(format!(
            "--epochs {epochs}: run {} has only {} committed epochs",
            short.run_id, short.epochs_completed
        )));
    }
    let limit = match options.fidelity {
        Fidelity::Corrected => options.epochs,
        Fidelity::Faithful => Some(options.epochs.unwrap_or(REFERENCE_EPOCHS)),
    };
    let epochs: Vec<u32> = runs
        .iter()
        .map(|run| limit.map_or(run.epochs_completed, |n| n.min(run.epochs_completed)))
        .collect();
    if options.fidelity == Fidelity::Corrected
        && let Some(i) = epochs.iter().position(|&e| e != epochs[0])
    {
        return Err(Error::Config(format!(
            "runs have different epoch counts ({}: {}, {}: {}); pass --epochs N to use the first N epochs of each (N at most the smallest), or --fidelity faithful",
            runs[0].run_id, epochs[0], runs[i].run_id, epochs[i]
        )));
    }
    let penalty = match options.fidelity {
        Fidelity::Corrected => None,
        Fidelity::Faithful => limit,
    };
    Ok(EpochPlan { num_examples, epochs, penalty })
}

/// Loads each run's dynamics over its planned epochs (at least the `needed` columns), runs
/// spread over the cores, and folds them: `add` into one accumulator per worker (made by
/// `empty`), then `merge` into one.
///
/// # Errors
/// The first run whose dynamics cannot be read ([`run_dynamics`]).
pub fn fold_runs<A: Send>(
    catalog: &Catalog,
    runs: &[SelectedRun],
    plan: &EpochPlan,
    needed: Needed,
    empty: impl Fn() -> A + Sync,
    add: impl Fn(&mut A, &RunDynamics) + Sync,
    merge: impl Fn(&mut A, A),
) -> Result<A> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(runs.len());
    let (empty, add) = (&empty, &add);
    let per_worker = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                scope.spawn(move || -> Result<A> {
                    let mut acc = empty();
                    for (run, &epochs) in runs.iter().zip(&plan.epochs).skip(w).step_by(workers) {
                        let dynamics =
                            run_dynamics(catalog, run, epochs, plan.num_examples, needed)?;
                        add(&mut acc, &dynamics);
                    }
                    Ok(acc)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join()).collect::<Vec<_>>()
    });
    let mut result = empty();
    for partial in per_worker {
        let partial = partial.map_err(|_| Error::Thread {
            thread: "run counter".into(),
            reason: "panicked".into(),
        })??;
        merge(&mut result, partial);
    }
    Ok(result)
}

/// The dynamics of `run` over its first `epochs` epochs: its `dynamics` file when that covers
/// exactly those (one row per example), else built from its presentation files (an
/// `--epochs N` prefix, or a file that is missing or damaged), the `needed` columns only.
///
/// # Errors
/// [`Error::Damaged`] naming a presentation file that is missing or damaged.
pub fn run_dynamics(
    catalog: &Catalog,
    run: &SelectedRun,
    epochs: u32,
    num_examples: usize,
    needed: Needed,
) -> Result<RunDynamics> {
    if epochs == run.epochs_completed {
        let layout = catalog.layout();
        let file = layout.run_file(Table::Dynamics, &run.run_id);
        // The file that covers the committed epochs is the one whose checksum was recorded
        // (a footer that records checksums but none of this file is damaged).
        let recorded = Checksums::of_run(layout, &run.run_id)?;
        let checked = |dynamics: RunDynamics| -> Result<RunDynamics> {
            if let Some(recorded) = &recorded {
                let crc32 = recorded.dynamics.ok_or_else(|| {
                    Error::damaged(&file, "no checksum recorded in its run's runs file")
                })?;
                check_file(&file, Some(crc32))?;
            }
            Ok(dynamics)
        };
        match read_dynamics(layout, &run.run_id, num_examples) {
            Ok(Some(dynamics)) if dynamics.epochs() == epochs => match checked(dynamics) {
                Ok(dynamics) => return Ok(dynamics),
                Err(e) => log::warn!("{e}; counting run {}'s presentations instead", run.run_id),
            },
            Ok(_) => log::info!(
                "run {}: no dynamics file covering its {epochs} epochs; counting its presentations (`fstream rebuild` writes one)",
                run.run_id
            ),
            Err(e) => log::warn!("{e}; counting run {}'s presentations instead", run.run_id),
        }
    }
    rebuild_dynamics(catalog.layout(), &run.info, epochs, needed)
}

/// Orders every example: the presented ones by total count ascending, ties by `tie_break`,
/// then the ones no counted run presented (count 0), by id.
pub fn order(counts: &ForgettingCounts, tie_break: TieBreak) -> (Vec<u32>, Vec<u32>) {
    let value = |i: usize| f64::from(counts.totals[i]);
    let ids = rank_examples(value, &counts.presented, false, tie_break);
    let count = |i: usize| if counts.presented[i] { counts.totals[i] } else { 0 };
    let sorted_counts = ids.iter().map(|&i| count(i as usize)).collect();
    (ids, sorted_counts)
}

/// Example ids by rank: the presented examples by `value` (lowest first, or highest first
/// when `descending`), ties by `tie_break`; then those no counted run presented, by id.
pub fn rank_examples(
    value: impl Fn(usize) -> f64,
    presented: &[bool],
    descending: bool,
    tie_break: TieBreak,
) -> Vec<u32> {
    let mut ids: Vec<u32> = (0..presented.len() as u32).collect();
    if let TieBreak::Random { seed } = tie_break {
        ids.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    }
    // A stable sort: equal values keep the tie-break's order.
    ids.sort_by(|&a, &b| {
        let (a, b) = (a as usize, b as usize);
        match (presented[a], presented[b]) {
            (true, true) => {
                let by_value = value(a).total_cmp(&value(b));
                if descending { by_value.reverse() } else { by_value }
            }
            (false, false) => a.cmp(&b),
            // Presented before not presented.
            (a_presented, b_presented) => b_presented.cmp(&a_presented),
        }
    });
    ids
}

/// Everything `fstream order` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderReport {
    /// The sorting file (order, counts, provenance).
    pub sorting: SortingFile,
    /// Matching runs that were not counted, and why.
    pub skipped: Vec<(SelectedRun, SkipReason)>,
    /// Examples with total count 0.
    pub unforgettable: usize,
}

/// Selects runs, counts forgetting and orders the examples.
///
/// # Errors
/// See [`select_runs`] and [`count_forgetting`].
pub fn compute_order(catalog: &Catalog, options: &OrderOptions) -> Result<OrderReport> {
    let RunSelection { counted: runs, skipped } = select_runs(catalog, options)?;
    let counts = count_forgetting(catalog, &runs, options)?;
    let (example_ids, forgetting_counts) = order(&counts, options.tie_break);
    let presented: Vec<bool> = example_ids.iter().map(|&i| counts.presented[i as usize]).collect();
    let unforgettable =
        forgetting_counts.iter().zip(&presented).filter(|&(&c, &p)| p && c == 0).count();
    Ok(OrderReport {
        sorting: SortingFile {
            dataset: options.dataset.clone(),
            dataset_examples: counts.totals.len(),
            permutation_seed: runs[0].info.permutation_seed,
            data_sha256: data_fingerprint(&runs),
            runs: runs.into_iter().map(|r| r.run_id).collect(),
            example_ids,
            ranked: Ranked::ForgettingCounts(forgetting_counts),
            presented,
        },
        skipped,
        unforgettable,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_breaks_ties_by_example_id() {
        let counts = ForgettingCounts {
            totals: vec![3, 0, 1, 0, 1, 9],
            presented: vec![true, true, true, true, true, false],
        };
        let (ids, sorted) = order(&counts, TieBreak::ById);
        // The never-presented example 5 comes last, with count 0.
        assert_eq!(ids, vec![1, 3, 2, 4, 0, 5]);
        assert_eq!(sorted, vec![0, 0, 1, 1, 3, 0]);
    }

    #[test]
    fn random_tie_break_is_seeded_and_keeps_counts_sorted() {
        let counts = ForgettingCounts { totals: vec![0; 50], presented: vec![true; 50] };
        let (a, _) = order(&counts, TieBreak::Random { seed: 1 });
        let (b, _) = order(&counts, TieBreak::Random { seed: 1 });
        let (c, _) = order(&counts, TieBreak::Random { seed: 2 });
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, (0..50).collect::<Vec<u32>>());
    }
}

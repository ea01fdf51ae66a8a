//! Per-example scores computed from the runs' training dynamics (formulas and citations in
//! `schemas/dynamics.md`): forgetting counts, when examples are learned, area under the
//! margin and dataset cartography's confidence, variability and correctness. Each run gives
//! one value per presented example; forgetting counts are summed over runs (as the paper sums
//! seeds), every other score is averaged over the runs that presented the example. EL2N comes
//! from the presentations of one epoch instead (runs trained with `--record el2n`).

use super::Catalog;
use super::forgetting::{
    EpochPlan, OrderOptions, RunSelection, SelectedRun, SkipReason, fold_runs, plan_epochs,
    rank_examples, select_runs,
};
use arrow::array::{Float32Array, UInt32Array};

use crate::dynamics::RunDynamics;
use crate::error::{Error, Result};
use crate::store::dynamics::{Needed, checked_example, read_presentation_columns};
use crate::store::runs::column;
use crate::store::schema::col;
use crate::store::sorting::{Ranked, SortingFile};

/// The scores `fstream scores` computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Score {
    /// Forgetting events (Toneva et al. 2019), summed over runs.
    Forgetting,
    /// The first epoch the example was classified correctly.
    FirstLearned,
    /// The epoch from which the example stayed learned (its last misclassification + 1).
    LearnedAt,
    /// Area under the margin (Pleiss et al. 2020): the mean margin over presentations.
    Aum,
    /// Dataset cartography's confidence (Swayamdipta et al. 2020): the mean p(label).
    Confidence,
    /// Dataset cartography's variability: the standard deviation of p(label).
    Variability,
    /// Dataset cartography's correctness: the fraction of presentations classified correctly.
    Correctness,
    /// EL2N (Paul et al. 2021): `‖softmax − onehot(label)‖₂` at one epoch (`--record el2n`).
    El2n,
}

impl Score {
    /// Every score, in the order `--help` lists them.
    pub const ALL: [Score; 8] = [
        Score::Forgetting,
        Score::FirstLearned,
        Score::LearnedAt,
        Score::Aum,
        Score::Confidence,
        Score::Variability,
        Score::Correctness,
        Score::El2n,
    ];

    /// The score's name on the command line and in score files.
    pub fn name(self) -> &'static str {
        match self {
            Score::Forgetting => "forgetting",
            Score::FirstLearned => "first_learned",
            Score::LearnedAt => "learned_at",
            Score::Aum => "aum",
            Score::Confidence => "confidence",
            Score::Variability => "variability",
            Score::Correctness => "correctness",
            Score::El2n => "el2n",
        }
    }

    /// Whether the score has a never-learned case (which [`NeverLearned`] fills in).
    pub fn has_never_learned(self) -> bool {
        matches!(self, Score::Forgetting | Score::FirstLearned | Score::LearnedAt)
    }

    /// The score of `example` in one run (`None`: the run did not present it).
    fn of(self, d: &RunDynamics, example: usize, never_learned: NeverLearned) -> Option<f64> {
        let c = &d.columns;
        let n = c.presentations[example];
        if n == 0 {
            return None;
        }
        let never = never_learned.value(n);
        let mean = |sum: f64| sum / f64::from(n);
        Some(match self {
            Score::Forgetting => match c.correct_presentations[example] {
                0 => never,
                _ => f64::from(c.forgetting_events[example]),
            },
            Score::FirstLearned => match c.first_correct_epoch[example] {
                0 => never,
                epoch => f64::from(epoch),
            },
            Score::LearnedAt => match c.last_correct[example] {
                false => never,
                true => f64::from(c.last_incorrect_epoch[example] + 1),
            },
            Score::Aum => mean(c.margin_sum[example]),
            Score::Confidence => mean(c.p_label_sum[example]),
            Score::Variability => {
                let confidence = mean(c.p_label_sum[example]);
                // Rounding can take the variance a hair below 0 for a constant p(label).
                (mean(c.p_label_sq_sum[example]) - confidence * confidence).max(0.0).sqrt()
            }
            Score::Correctness => mean(f64::from(c.correct_presentations[example])),
            Score::El2n => unreachable!("EL2N is read from the presentations of one epoch"),
        })
    }
}

crate::names::named_enum!(Score, "score");

/// The value an example that was never learned in a run gets there. Published tools
/// disagree: the reference counts the run's presentations, dataset cartography uses 1000,
/// data_diet infinity, DeepCore and the coverage-centric coreset code 0 (`schemas/dynamics.md`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum NeverLearned {
    /// The run's number of presentations of the example (the reference's rule).
    #[default]
    Presentations,
    /// A fixed value: `epochs:N` and `N` give N, `zero` 0, `infinity` +∞.
    Value(f64),
}

impl NeverLearned {
    fn value(self, presentations: u32) -> f64 {
        match self {
            NeverLearned::Presentations => f64::from(presentations),
            NeverLearned::Value(value) => value,
        }
    }
}

impl std::str::FromStr for NeverLearned {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let number = |t: &str| {
            // A negative value would rank never-learned examples as the easiest.
            t.parse::<f64>().ok().filter(|v| *v >= 0.0).map(NeverLearned::Value).ok_or_else(|| {
                format!(
                    "{text:?}: expected presentations, epochs:N, zero, infinity or a number, each at least 0"
                )
            })
        };
        match text {
            "presentations" => Ok(NeverLearned::Presentations),
            "zero" => Ok(NeverLearned::Value(0.0)),
            "infinity" => Ok(NeverLearned::Value(f64::INFINITY)),
            _ => number(text.strip_prefix("epochs:").unwrap_or(text)),
        }
    }
}

/// What to score and over which runs.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreOptions {
    /// The runs (dataset, `--where`, incomplete runs, `--epochs N` prefix) and the tie-break,
    /// as `fstream order` selects them.
    pub selection: OrderOptions,
    /// The score.
    pub score: Score,
    /// The never-learned value.
    pub never_learned: NeverLearned,
    /// Rank the highest scores first.
    pub descending: bool,
    /// The epoch EL2N is read at (`--score el2n` only).
    pub epoch: Option<u32>,
}

/// Everything `fstream scores` reports.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreReport {
    /// The score file: examples by rank with their scores (NaN: no counted run presented it).
    pub sorting: SortingFile,
    /// Matching runs that were not counted, and why.
    pub skipped: Vec<(SelectedRun, SkipReason)>,
}

/// Per-example sums over runs of a score, and how many runs presented each example.
struct Totals {
    sums: Vec<f64>,
    runs: Vec<u32>,
}

impl Totals {
    fn new(num_examples: usize) -> Self {
        Totals { sums: vec![0.0; num_examples], runs: vec![0; num_examples] }
    }

    fn add(&mut self, example: usize, value: f64) {
        self.sums[example] += value;
        self.runs[example] += 1;
    }

    fn merge(&mut self, other: Totals) {
        for i in 0..self.sums.len() {
            self.sums[i] += other.sums[i];
            self.runs[i] += other.runs[i];
        }
    }
}

/// A dynamics score of every example, summed over `runs`.
fn dynamics_totals(
    catalog: &Catalog,
    runs: &[SelectedRun],
    plan: &EpochPlan,
    score: Score,
    never_learned: NeverLearned,
) -> Result<Totals> {
    let n = plan.num_examples;
    fold_runs(
        catalog,
        runs,
        plan,
        Needed::All,
        || Totals::new(n),
        |totals, dynamics| {
            for i in 0..n {
                if let Some(value) = score.of(dynamics, i, never_learned) {
                    totals.add(i, value);
                }
            }
        },
        Totals::merge,
    )
}

/// Each example's EL2N at `epoch`, summed over `runs`, read from their presentation files.
///
/// # Errors
/// [`Error::Config`] when a run did not record EL2N or has not reached `epoch`;
/// [`Error::Format`] naming a missing or damaged presentation file.
fn el2n_totals(
    catalog: &Catalog,
    runs: &[SelectedRun],
    plan: &EpochPlan,
    epoch: u32,
) -> Result<Totals> {
    let mut totals = Totals::new(plan.num_examples);
    for (run, &epochs) in runs.iter().zip(&plan.epochs) {
        if !run.info.record_el2n {
            return Err(Error::Config(format!(
                "run {} was trained without --record el2n: it has no EL2N to score",
                run.run_id
            )));
        }
        if epoch == 0 || epoch > epochs {
            return Err(Error::Config(format!(
                "--epoch {epoch}: run {} has epochs 1..={epochs} counted",
                run.run_id
            )));
        }
        let path = catalog.layout().presentations_file(run.info.dataset.name(), &run.run_id, epoch);
        for batch in read_presentation_columns(&path, &[col::EXAMPLE_ID, col::EL2N])? {
            let ids = column::<UInt32Array>(&batch, col::EXAMPLE_ID, &path)?;
            let el2n = column::<Float32Array>(&batch, col::EL2N, &path)?;
            for row in 0..batch.num_rows() {
                let example = checked_example(&path, ids.value(row), plan.num_examples)?;
                totals.add(example, f64::from(el2n.value(row)));
            }
        }
    }
    Ok(totals)
}

/// Selects runs, computes the score per run and example, combines the runs (forgetting
/// summed, the rest averaged) and ranks the examples.
///
/// # Errors
/// As [`select_runs`] and [`plan_epochs`]; [`Error::Config`] when `--fidelity faithful` is
/// asked for (scores take `--never-learned epochs:N` instead).
pub fn compute_scores(catalog: &Catalog, options: &ScoreOptions) -> Result<ScoreReport> {
    if options.selection.fidelity != crate::fidelity::Fidelity::Corrected {
        return Err(Error::Config(
            "scores have no faithful mode: the reference's never-learned penalty is --never-learned epochs:200".into(),
        ));
    }
    let RunSelection { counted: runs, skipped } = select_runs(catalog, &options.selection)?;
    let plan = plan_epochs(&runs, &options.selection)?;
    let n = plan.num_examples;
    let (score, never_learned) = (options.score, options.never_learned);
    let totals = match (score, options.epoch) {
        (Score::El2n, Some(epoch)) => el2n_totals(catalog, &runs, &plan, epoch)?,
        (Score::El2n, None) => {
            return Err(Error::Config(
                "--score el2n needs --epoch E: EL2N is read at one epoch (Paul et al. score early, e.g. epoch 20 of 200)".into(),
            ));
        }
        (_, Some(_)) => {
            return Err(Error::Config(format!(
                "--epoch is for --score el2n; {} uses all counted epochs (--epochs N for the first N)",
                score.name()
            )));
        }
        (_, None) => dynamics_totals(catalog, &runs, &plan, score, never_learned)?,
    };
    let value = |i: usize| match (score, totals.runs[i]) {
        (_, 0) => f64::NAN,
        (Score::Forgetting, _) => totals.sums[i],
        (_, runs) => totals.sums[i] / f64::from(runs),
    };
    let presented: Vec<bool> = totals.runs.iter().map(|&r| r > 0).collect();
    let ids = rank_examples(value, &presented, options.descending, options.selection.tie_break);
    Ok(ScoreReport {
        sorting: SortingFile {
            dataset: options.selection.dataset.clone(),
            dataset_examples: n,
            permutation_seed: runs[0].info.permutation_seed,
            data_sha256: super::forgetting::data_fingerprint(&runs),
            runs: runs.into_iter().map(|r| r.run_id).collect(),
            presented: ids.iter().map(|&i| presented[i as usize]).collect(),
            ranked: Ranked::Score {
                name: score.name().into(),
                descending: options.descending,
                values: ids.iter().map(|&i| value(i as usize)).collect(),
            },
            example_ids: ids,
        },
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamics::Observation;

    /// One example's dynamics over presentations of (correct, loss, margin).
    fn dynamics(presentations: &[(bool, f32, f32)]) -> RunDynamics {
        let mut d = RunDynamics::new(1);
        for (epoch, &(correct, loss, margin)) in presentations.iter().enumerate() {
            d.begin_epoch(epoch as u32 + 1);
            d.observe(0, Observation { correct, loss, margin });
        }
        d
    }

    #[test]
    fn each_score_follows_its_formula() {
        let d = dynamics(&[
            (false, 2.0, -1.0),
            (true, 0.5, 1.0),
            (false, 1.0, -0.5),
            (true, 0.25, 2.0),
        ]);
        let of = |score: Score| score.of(&d, 0, NeverLearned::Presentations).unwrap();
        assert_eq!(of(Score::Forgetting), 1.0);
        assert_eq!(of(Score::FirstLearned), 2.0);
        assert_eq!(of(Score::LearnedAt), 4.0);
        assert_eq!(of(Score::Aum), 1.5 / 4.0);
        assert_eq!(of(Score::Correctness), 0.5);
        let p: Vec<f64> = [2.0f64, 0.5, 1.0, 0.25].iter().map(|l| (-l).exp()).collect();
        let confidence = p.iter().sum::<f64>() / 4.0;
        assert!((of(Score::Confidence) - confidence).abs() < 1e-15);
        let variance = p.iter().map(|x| (x - confidence).powi(2)).sum::<f64>() / 4.0;
        assert!((of(Score::Variability) - variance.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn never_learned_examples_take_the_chosen_value() {
        let d = dynamics(&[(false, 2.0, -1.0), (false, 2.0, -1.0), (false, 2.0, -1.0)]);
        for (convention, expected) in [
            ("presentations", 3.0),
            ("epochs:200", 200.0),
            ("zero", 0.0),
            ("infinity", f64::INFINITY),
            ("1000", 1000.0),
        ] {
            let never: NeverLearned = convention.parse().unwrap();
            for score in [Score::Forgetting, Score::FirstLearned, Score::LearnedAt] {
                assert_eq!(score.of(&d, 0, never), Some(expected), "{convention} {score:?}");
            }
        }
        // Learned, then forgotten at the last presentation: never learned for good.
        let forgotten = dynamics(&[(true, 0.1, 1.0), (false, 2.0, -1.0)]);
        assert_eq!(Score::LearnedAt.of(&forgotten, 0, NeverLearned::Value(0.0)), Some(0.0));
        assert_eq!(Score::Forgetting.of(&forgotten, 0, NeverLearned::Value(0.0)), Some(1.0));
        assert!("epochs:x".parse::<NeverLearned>().unwrap_err().contains("expected presentations"));
    }

    #[test]
    fn a_constant_probability_has_zero_variability() {
        let d = dynamics(&[(true, 0.3, 1.0); 7]);
        assert_eq!(Score::Variability.of(&d, 0, NeverLearned::Presentations), Some(0.0));
        assert_eq!(Score::Aum.of(&RunDynamics::new(1), 0, NeverLearned::Presentations), None);
    }
}

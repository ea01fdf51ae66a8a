//! Training dynamics per run and example (`schemas/dynamics.md`): what the presentations of an
//! example in one run add up to — presentations, times correct, forgetting events, when it was
//! first learned and last misclassified, and the running sums that per-example scores are
//! computed from (area under the margin, dataset cartography). The writer keeps one
//! [`RunDynamics`] per run and commits it with each epoch; `order` and the scores read it
//! instead of every presentation.
//!
//! Presentations must be added in epoch order; within an epoch each example is presented at
//! most once. Sums are f64 added in that order, so the table rebuilt from the presentations,
//! or restored from a file and continued on resume, is bit-identical to the one kept live.

/// Per-example dynamics of one run over its first [`RunDynamics::epochs`] epochs, indexed by
/// example id over the whole dataset (examples never presented have zero presentations).
#[derive(Debug, Clone, PartialEq)]
pub struct RunDynamics {
    epochs: u32,
    /// The columns, one entry per dataset example.
    pub columns: DynamicsColumns,
}

/// The per-example columns of [`RunDynamics`] (one entry per dataset example).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DynamicsColumns {
    /// Presentations (one per epoch for a training example).
    pub presentations: Vec<u32>,
    /// Presentations classified correctly.
    pub correct_presentations: Vec<u32>,
    /// Correct → incorrect transitions between consecutive presentations.
    pub forgetting_events: Vec<u32>,
    /// Epoch of the first correct presentation (0: never correct).
    pub first_correct_epoch: Vec<u32>,
    /// Epoch of the last incorrect presentation (0: never incorrect).
    pub last_incorrect_epoch: Vec<u32>,
    /// Whether the latest presentation was correct.
    pub last_correct: Vec<bool>,
    /// Sum of the losses.
    pub loss_sum: Vec<f64>,
    /// Sum of the margins (target logit minus the largest other logit).
    pub margin_sum: Vec<f64>,
    /// Sum of p(label) = exp(−loss).
    pub p_label_sum: Vec<f64>,
    /// Sum of p(label)².
    pub p_label_sq_sum: Vec<f64>,
}

impl DynamicsColumns {
    /// Columns for `num_examples` examples, none presented.
    pub fn zeroed(num_examples: usize) -> Self {
        DynamicsColumns {
            presentations: vec![0; num_examples],
            correct_presentations: vec![0; num_examples],
            forgetting_events: vec![0; num_examples],
            first_correct_epoch: vec![0; num_examples],
            last_incorrect_epoch: vec![0; num_examples],
            last_correct: vec![false; num_examples],
            loss_sum: vec![0.0; num_examples],
            margin_sum: vec![0.0; num_examples],
            p_label_sum: vec![0.0; num_examples],
            p_label_sq_sum: vec![0.0; num_examples],
        }
    }

    /// Examples the columns cover.
    pub fn len(&self) -> usize {
        self.presentations.len()
    }

    /// Whether the columns cover no example.
    pub fn is_empty(&self) -> bool {
        self.presentations.is_empty()
    }
}

/// One presentation's statistics, as [`RunDynamics::observe`] takes them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// Whether the example was classified correctly.
    pub correct: bool,
    /// Its cross-entropy loss.
    pub loss: f32,
    /// Its misclassification margin.
    pub margin: f32,
}

impl RunDynamics {
    /// Dynamics of a run over a dataset of `num_examples` examples, before its first epoch.
    pub fn new(num_examples: usize) -> Self {
        RunDynamics { epochs: 0, columns: DynamicsColumns::zeroed(num_examples) }
    }

    /// Dynamics restored from columns that cover the first `epochs` epochs.
    pub fn from_columns(epochs: u32, columns: DynamicsColumns) -> Self {
        RunDynamics { epochs, columns }
    }

    /// Epochs added so far.
    pub fn epochs(&self) -> u32 {
        self.epochs
    }

    /// Examples the dynamics cover (the dataset's size).
    pub fn num_examples(&self) -> usize {
        self.columns.len()
    }

    /// Starts epoch `epoch`, which must follow the last one added.
    ///
    /// # Panics
    /// When epochs are skipped or repeated (a bug in the caller, not in the data).
    pub fn begin_epoch(&mut self, epoch: u32) {
        assert_eq!(epoch, self.epochs + 1, "epochs must be added in order");
        self.epochs = epoch;
    }

    /// Adds the presentation of `example` in the current epoch, correctness only (the sums
    /// stay as they are): what counting forgetting needs.
    pub fn observe_correct(&mut self, example: usize, correct: bool) {
        let c = &mut self.columns;
        if c.presentations[example] > 0 && c.last_correct[example] && !correct {
            c.forgetting_events[example] += 1;
        }
        c.presentations[example] += 1;
        if correct {
            c.correct_presentations[example] += 1;
            if c.first_correct_epoch[example] == 0 {
                c.first_correct_epoch[example] = self.epochs;
            }
        } else {
            c.last_incorrect_epoch[example] = self.epochs;
        }
        c.last_correct[example] = correct;
    }

    /// Adds the presentation of `example` in the current epoch.
    pub fn observe(&mut self, example: usize, observation: Observation) {
        self.observe_correct(example, observation.correct);
        let c = &mut self.columns;
        let loss = f64::from(observation.loss);
        let p_label = (-loss).exp();
        c.loss_sum[example] += loss;
        c.margin_sum[example] += f64::from(observation.margin);
        c.p_label_sum[example] += p_label;
        c.p_label_sq_sum[example] += p_label * p_label;
    }

    /// Adds presentations of the current epoch given as columns: example ids, correctness and,
    /// when `sums` holds them, losses and margins (without, only correctness is counted, as
    /// [`RunDynamics::observe_correct`] does). Rows are added in order, so the writer and a
    /// rebuild from the presentation files get the same sums bit for bit.
    ///
    /// # Errors
    /// The first example id outside the dataset; rows before it are added.
    pub fn observe_columns(
        &mut self,
        examples: &[u32],
        correct: impl IntoIterator<Item = bool>,
        sums: Option<(&[f32], &[f32])>,
    ) -> Result<(), u32> {
        let n = self.num_examples();
        for (row, (&id, correct)) in examples.iter().zip(correct).enumerate() {
            let example = id as usize;
            if example >= n {
                return Err(id);
            }
            match sums {
                None => self.observe_correct(example, correct),
                Some((loss, margin)) => {
                    let (loss, margin) = (loss[row], margin[row]);
                    self.observe(example, Observation { correct, loss, margin });
                }
            }
        }
        Ok(())
    }

    /// The run's forgetting count of `example` (`None`: never presented): its forgetting
    /// events, or, when it was never correct, `penalty` if given, else its presentations (the
    /// reference's rule, docs/semantics.md).
    pub fn forgetting_count(&self, example: usize, penalty: Option<u32>) -> Option<u32> {
        let c = &self.columns;
        match c.presentations[example] {
            0 => None,
            n if c.correct_presentations[example] == 0 => Some(penalty.unwrap_or(n)),
            _ => Some(c.forgetting_events[example]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dynamics of one example presented once per epoch with these correctness values.
    fn dynamics(sequence: &[bool]) -> RunDynamics {
        let mut d = RunDynamics::new(1);
        for (i, &correct) in sequence.iter().enumerate() {
            d.begin_epoch(i as u32 + 1);
            d.observe(0, Observation { correct, loss: 0.5 * i as f32, margin: i as f32 - 1.0 });
        }
        d
    }

    #[test]
    fn forgetting_events_are_correct_to_incorrect_transitions() {
        for (sequence, events) in [
            (&[false, true, false, true, true, false][..], 2),
            (&[true, false, false, false], 1),
            (&[false, false, true], 0),
            (&[true, true, true], 0),
        ] {
            assert_eq!(dynamics(sequence).columns.forgetting_events[0], events, "{sequence:?}");
        }
    }

    #[test]
    fn never_learned_counts_its_presentations_or_the_penalty() {
        let d = dynamics(&[false, false, false]);
        assert_eq!(d.forgetting_count(0, None), Some(3));
        assert_eq!(d.forgetting_count(0, Some(200)), Some(200));
        assert_eq!(dynamics(&[true]).forgetting_count(0, None), Some(0));
        assert_eq!(dynamics(&[false]).forgetting_count(0, None), Some(1));
        assert_eq!(RunDynamics::new(1).forgetting_count(0, None), None);
    }

    #[test]
    fn first_learned_and_last_misclassified_epochs() {
        let d = dynamics(&[false, true, false, true, true]);
        let c = &d.columns;
        assert_eq!((c.first_correct_epoch[0], c.last_incorrect_epoch[0]), (2, 3));
        assert_eq!((c.correct_presentations[0], c.presentations[0]), (3, 5));
        assert!(c.last_correct[0]);
        let never = dynamics(&[false, false]);
        assert_eq!(never.columns.first_correct_epoch[0], 0);
        let always = dynamics(&[true, true]);
        assert_eq!(always.columns.last_incorrect_epoch[0], 0);
    }

    #[test]
    fn sums_add_loss_margin_and_label_probability() {
        let d = dynamics(&[true, false, true]);
        let c = &d.columns;
        // Losses 0, 0.5, 1; margins -1, 0, 1.
        assert_eq!(c.loss_sum[0], 1.5);
        assert_eq!(c.margin_sum[0], 0.0);
        let p: Vec<f64> = [0.0f64, 0.5, 1.0].iter().map(|l| (-l).exp()).collect();
        assert!((c.p_label_sum[0] - p.iter().sum::<f64>()).abs() < 1e-15);
        assert!((c.p_label_sq_sum[0] - p.iter().map(|x| x * x).sum::<f64>()).abs() < 1e-15);
    }

    #[test]
    #[should_panic(expected = "in order")]
    fn epochs_must_come_in_order() {
        let mut d = RunDynamics::new(1);
        d.begin_epoch(2);
    }

    #[test]
    fn columns_add_what_single_observations_add_and_stop_at_an_unknown_id() {
        let mut by_row = RunDynamics::new(3);
        let mut by_columns = RunDynamics::new(3);
        let (ids, correct, loss, margin) =
            ([2, 0, 1], [true, false, true], [0.25f32, 2.0, 0.5], [1.5f32, -0.5, 0.75]);
        by_row.begin_epoch(1);
        for row in 0..3 {
            let observation =
                Observation { correct: correct[row], loss: loss[row], margin: margin[row] };
            by_row.observe(ids[row] as usize, observation);
        }
        by_columns.begin_epoch(1);
        by_columns.observe_columns(&ids, correct, Some((&loss, &margin))).unwrap();
        assert_eq!(by_columns.columns, by_row.columns);

        let mut counts_only = RunDynamics::new(3);
        counts_only.begin_epoch(1);
        assert_eq!(counts_only.observe_columns(&[1, 7, 0], [false, true, true], None), Err(7));
        assert_eq!(counts_only.columns.presentations, [0, 1, 0], "rows before the bad id stay");
        assert_eq!(counts_only.columns.loss_sum, [0.0; 3]);
    }
}

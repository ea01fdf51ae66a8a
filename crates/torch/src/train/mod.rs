//! One training run: the reference's training loop (docs/semantics.md) with per-example statistics
//! recorded from the same forward pass that drives the update. The trainer only holds a
//! [`RecordSender`]; storage is someone else's job.

pub mod optim;
pub mod stats;

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::ChaCha8Rng;
use rand::seq::SliceRandom;
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Reduction, Tensor};

use fstream::config::TrainConfig;
use fstream::data::Splits;
use fstream::record::{BatchStats, EpochSummary, ROWS_PER_MESSAGE, Record, RecordSender, RunId};

use crate::batch::{BatchMaker, InputConfig, images_tensor, int64_tensor};
use crate::error::{Error, Result};
use crate::model::{self, DropoutRng};
use optim::Optimizer;
use stats::batch_stats;

/// Batch size for test-set evaluation; it does not change the results, only the speed.
const EVAL_BATCH_SIZE: i64 = 1000;

/// Batches prepared ahead of the one being trained.
const PREFETCH_BATCHES: usize = 2;

/// Random streams of an epoch, told apart by [`epoch_seed`].
const DATA_ORDER_STREAM: u64 = 1;
const DROPOUT_STREAM: u64 = 2;
const AUGMENTATION_STREAM: u64 = 3;

/// The seed of one epoch's random stream: an epoch's data order, augmentation and dropout
/// masks depend only on the run's seed and the epoch, never on what ran before or beside it.
fn epoch_seed(seed: u64, epoch: u32, stream: u64) -> u64 {
    seed ^ u64::from(epoch).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03)
}

/// The examples a run trains on.
#[derive(Debug, Clone, Copy)]
pub struct TrainSet<'a> {
    /// Example ids presented each epoch.
    pub ids: &'a [u32],
    /// Label trained on, indexed by example id.
    pub labels: &'a [u16],
}

/// Where a run's checkpoints go, and where it resumes from.
pub struct Checkpoints<'a> {
    /// The temporary path to write the checkpoint after an epoch to; the writer thread
    /// commits it together with the epoch.
    pub temp_path: &'a (dyn Fn(u32) -> PathBuf + Sync),
    /// Continue after this many committed epochs, from this checkpoint.
    pub resume: Option<(u32, PathBuf)>,
}

/// Progress reported by a trainer while it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress<'a> {
    /// A batch was trained.
    Batch {
        /// The run.
        run_id: &'a str,
        /// 1-based epoch.
        epoch: u32,
        /// Examples trained so far in this epoch.
        done: usize,
        /// Examples per epoch.
        total: usize,
    },
    /// An epoch finished.
    Epoch(&'a EpochSummary),
}

/// Trains one run on `data`, presenting the examples of `train_set`, and sends its records through `sender`. After every epoch the
/// model and optimizer state go to a checkpoint; with `checkpoints.resume` the run continues
/// from one. On CPU with the same thread count, a resumed run computes exactly what an
/// uninterrupted one does: an epoch's randomness depends only on seed and epoch.
/// `on_progress` is called after every batch and epoch; when it breaks, the run stops with
/// [`fstream::Error::Interrupted`] (its committed epochs stay, and it can be resumed).
///
/// # Errors
/// [`Error::Torch`] on libtorch failures; [`fstream::Error::Thread`] when the writer stopped
/// (its own error is the one to report).
pub fn train_run(
    run_id: &RunId,
    config: &TrainConfig,
    data: &Splits,
    train_set: TrainSet<'_>,
    checkpoints: &Checkpoints<'_>,
    sender: &mut RecordSender,
    on_progress: &(dyn Fn(Progress<'_>) -> ControlFlow<()> + Sync),
) -> Result<()> {
    tch::set_num_threads(config.intra_op_threads as i32);
    let device = crate::device::tch_device(config.device)?;
    let vs = nn::VarStore::new(device);
    let dropout_rng = DropoutRng::new(config.seed);
    let classes = data.num_classes as i64;
    let net = model::seeded(config.seed as i64, || {
        model::build(&vs.root(), config.model, classes, config.dropout, dropout_rng.clone())
    });
    let mut optimizer = Optimizer::new(&vs, config.optimizer);
    let first_epoch = match &checkpoints.resume {
        Some((after, path)) => {
            optimizer.restore(Tensor::load_multi(path)?)?;
            after + 1
        }
        None => 1,
    };
    let TrainSet { ids: train_ids, labels } = train_set;
    let input = InputConfig {
        normalization: data.kind.normalization(),
        augment: config.augment,
        cutout: config.cutout,
    };
    let batches = BatchMaker::new(&data.train, labels, input, device)?;
    let test_images = images_tensor(&data.test, device)?;
    let test_labels = int64_tensor(&data.test.labels, device)?;

    let batches_per_epoch = train_ids.len().div_ceil(config.batch_size) as u32;
    let mut step = (first_epoch - 1) * batches_per_epoch;
    for epoch in first_epoch..=config.epochs {
        let order = epoch_order(train_ids, config.seed, epoch);
        dropout_rng.reseed(epoch_seed(config.seed, epoch, DROPOUT_STREAM));
        let lr = config.lr_schedule.lr_at(config.optimizer.lr, epoch);
        optimizer.set_lr(lr);
        let started = Instant::now();
        let waited_before = sender.waited();
        let mut sink = BatchSink {
            labels,
            sender: &mut *sender,
            record: config.record,
            el2n: config.record_el2n,
            totals: EpochTotals::new(device),
            pending: BatchStats { run_id: run_id.clone(), epoch, ..Default::default() },
        };
        let augmentation_seed = epoch_seed(config.seed, epoch, AUGMENTATION_STREAM);
        std::thread::scope(|scope| -> Result<()> {
            // Augmented batches are prepared a few ahead on a helper thread; plain ones cost
            // less than the thread switch (MNIST CNN, 2 runs x 1 thread: 0.82x -> 0.95x of a
            // minimal tch loop), so they are made inline.
            let prepared: Box<dyn Iterator<Item = PreparedBatch<'_>>> = if config.augment
                || config.cutout.is_some()
            {
                let rx =
                    prefetch(scope, batches.shallow_clone(), &order, config, augmentation_seed)?;
                Box::new(rx.into_iter())
            } else {
                let mut rng = ChaCha8Rng::seed_from_u64(augmentation_seed);
                let maker = batches.shallow_clone();
                Box::new(order.chunks(config.batch_size).map(move |b| (b, maker.make(b, &mut rng))))
            };
            for (batch_index, (batch, made)) in prepared.enumerate() {
                let (images, targets) = made?;
                let logits = net.forward_t(&images, true);
                let loss = cross_entropy(&logits, &targets)?;
                sink.add(step, batch, &logits, &targets, &loss)?;
                optimizer.backward_step(&loss.f_mean(Kind::Float)?)?;
                step += 1;
                let done = (batch_index * config.batch_size + batch.len()).min(order.len());
                let progress = Progress::Batch { run_id, epoch, done, total: order.len() };
                if on_progress(progress).is_break() {
                    return Err(fstream::Error::Interrupted.into());
                }
            }
            Ok(())
        })?;
        let totals = sink.finish()?;
        let train_seconds = started.elapsed().as_secs_f64();
        let (train_loss, train_acc) = totals.means(order.len())?;
        let (test_loss, test_acc) = evaluate(net.as_ref(), &batches, &test_images, &test_labels)?;
        let summary = EpochSummary {
            run_id: run_id.clone(),
            epoch,
            train_acc,
            train_loss,
            test_acc,
            test_loss,
            lr,
            train_seconds,
            channel_wait_seconds: (sender.waited() - waited_before).as_secs_f64(),
            examples: order.len() as u64,
        };
        let flow = on_progress(Progress::Epoch(&summary));
        let checkpoint = (checkpoints.temp_path)(epoch);
        save_checkpoint(&optimizer, &checkpoint)?;
        send(sender, Record::EpochEnded { summary, checkpoint: Some(checkpoint) })?;
        if flow.is_break() {
            return Err(fstream::Error::Interrupted.into());
        }
    }
    Ok(())
}

/// The order in which `train_ids` are presented in `epoch`: a shuffle that depends only on
/// the run's seed and the epoch.
fn epoch_order(train_ids: &[u32], seed: u64, epoch: u32) -> Vec<u32> {
    let mut order = train_ids.to_vec();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(epoch_seed(seed, epoch, DATA_ORDER_STREAM)));
    order
}

/// Per-example cross-entropy of `[N, classes]` logits against `[N]` int64 targets: `[N]`.
fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    Ok(logits.f_cross_entropy_loss::<Tensor>(targets, None, Reduction::None, -100, 0.0)?)
}

/// Where one epoch's batch statistics go: with recording on, to the record channel (one host
/// copy per batch, one message per [`ROWS_PER_MESSAGE`] presentations) and the host totals;
/// with recording off, only to totals on the device.
struct BatchSink<'a> {
    /// Label trained on, by example id.
    labels: &'a [u16],
    sender: &'a mut RecordSender,
    record: bool,
    el2n: bool,
    totals: EpochTotals,
    /// Presentations gathered for the next message; its run and epoch are the sink's.
    pending: BatchStats,
}

impl BatchSink<'_> {
    /// Takes the statistics of the batch of examples `batch` (global batch index `step`).
    fn add(
        &mut self,
        step: u32,
        batch: &[u32],
        logits: &Tensor,
        targets: &Tensor,
        loss: &Tensor,
    ) -> Result<()> {
        if !self.record {
            return self.totals.add_device(logits, targets, loss, Some(step));
        }
        let stats = batch_stats(logits, targets, loss, self.el2n)?;
        if stats.loss.iter().any(|l| !l.is_finite()) {
            return Err(self.diverged(step));
        }
        self.totals.add_host(&stats.loss, &stats.correct);
        let pending = &mut self.pending;
        pending.steps.extend(std::iter::repeat_n(step, batch.len()));
        pending.example_ids.extend_from_slice(batch);
        pending.labels.extend(batch.iter().map(|&id| self.labels[id as usize]));
        pending.loss.extend(stats.loss);
        pending.correct.extend(stats.correct);
        pending.margin.extend(stats.margin);
        pending.el2n.extend(stats.el2n);
        if pending.example_ids.len() >= ROWS_PER_MESSAGE {
            self.flush()?;
        }
        Ok(())
    }

    /// Sends the gathered presentations, if any.
    fn flush(&mut self) -> Result<()> {
        if self.pending.example_ids.is_empty() {
            return Ok(());
        }
        let (run_id, epoch) = (self.pending.run_id.clone(), self.pending.epoch);
        let empty = BatchStats { run_id, epoch, ..Default::default() };
        send(self.sender, Record::Batch(std::mem::replace(&mut self.pending, empty)))
    }

    fn diverged(&self, step: u32) -> Error {
        let (run_id, epoch) = (self.pending.run_id.to_string(), self.pending.epoch);
        fstream::Error::Diverged { run_id, epoch, step }.into()
    }

    /// Sends what is left of the epoch's presentations and returns its totals; with recording
    /// off, a non-finite loss in any batch (tracked on the device) fails the run here, naming
    /// the first such step.
    fn finish(mut self) -> Result<EpochTotals> {
        self.flush()?;
        match self.totals.first_nonfinite_step()? {
            Some(step) => Err(self.diverged(step)),
            None => Ok(self.totals),
        }
    }
}

/// A prepared batch: its example ids and its input and targets (or the error making them).
type PreparedBatch<'a> = (&'a [u32], Result<(Tensor, Tensor)>);

/// Prepares the batches of `order` on a helper thread, [`PREFETCH_BATCHES`] ahead of the
/// trainer, with augmentation drawn from `seed`. The thread stops early when the returned
/// receiver is dropped.
///
/// # Errors
/// [`fstream::Error::Thread`] when the OS refuses the thread.
fn prefetch<'scope, 'env>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    maker: BatchMaker,
    order: &'env [u32],
    config: &TrainConfig,
    seed: u64,
) -> Result<crossbeam_channel::Receiver<PreparedBatch<'env>>> {
    let (tx, rx) = crossbeam_channel::bounded(PREFETCH_BATCHES);
    let batch_size = config.batch_size;
    let spawned =
        std::thread::Builder::new().name("prefetch".into()).spawn_scoped(scope, move || {
            // One intra-op thread: the trainer holds the run's whole thread budget, and a
            // second pool of that size oversubscribes the cores (MNIST CNN on 2 cores: 13.3k
            // examples/s with two threads here, 19.9k with one). Batches stay ahead anyway:
            // one thread prepares CIFAR images hundreds of times faster than ResNet18 trains.
            tch::set_num_threads(1);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            for batch in order.chunks(batch_size) {
                if tx.send((batch, maker.make(batch, &mut rng))).is_err() {
                    return;
                }
            }
        });
    spawned
        .map_err(|e| fstream::Error::Thread { thread: "prefetch".into(), reason: e.to_string() })?;
    Ok(rx)
}

/// Writes the model and optimizer state to `path` and flushes it to disk. The state is
/// serialized in memory first: libtorch's file writer aborts the process when a write fails
/// (disk full, file-size limit), while a failed `std::fs` write is an ordinary error.
fn save_checkpoint(optimizer: &Optimizer, path: &std::path::Path) -> Result<()> {
    use fstream::error::IoContext;
    use std::io::Write;
    let mut bytes = Vec::new();
    Tensor::save_multi_to_stream(&optimizer.state(), &mut bytes)?;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).at(dir)?;
    let (first, second) = bytes.split_at(bytes.len() / 2);
    let written = std::fs::File::create(path).and_then(|mut file| {
        file.write_all(first)?;
        fstream::crash::point("checkpoint-partial", Some(path));
        file.write_all(second)?;
        file.sync_all()
    });
    if written.is_err() {
        // Nothing half-written stays behind (a full disk must not fill up further).
        let _ = std::fs::remove_file(path);
    }
    Ok(written.at(path)?)
}

fn send(sender: &mut RecordSender, record: Record) -> Result<()> {
    let stopped = |_| fstream::Error::Thread {
        thread: "writer".into(),
        reason: "stopped before the run finished".into(),
    };
    Ok(sender.send(record).map_err(stopped)?)
}

/// Running sums of an epoch's loss and correct count, on the host (recording on) or on the
/// device (recording off, so that no per-batch host copy happens).
struct EpochTotals {
    host_loss: f64,
    host_correct: u64,
    device_loss: Tensor,
    device_correct: Tensor,
    /// The first step with a non-finite loss (`i64::MAX`: none), tracked on the device so that
    /// checking costs no host copy per batch.
    device_first_nonfinite_step: Tensor,
}

impl EpochTotals {
    fn new(device: Device) -> Self {
        EpochTotals {
            host_loss: 0.0,
            host_correct: 0,
            device_loss: Tensor::zeros([], (Kind::Double, device)),
            device_correct: Tensor::zeros([], (Kind::Int64, device)),
            device_first_nonfinite_step: Tensor::full([], i64::MAX, (Kind::Int64, device)),
        }
    }

    /// Notes `step` if the batch's loss sum `batch_loss` (a scalar) is NaN or infinite, which
    /// it is exactly when one of its losses is.
    fn track_nonfinite(&mut self, batch_loss: &Tensor, step: u32) -> Result<()> {
        let finite = batch_loss.f_isfinite()?.f_to_kind(Kind::Int64)?;
        // finite ? MAX : step, without a branch on the host.
        let candidate = (&finite * i64::MAX).f_add(&((1 - &finite) * i64::from(step)))?;
        self.device_first_nonfinite_step =
            self.device_first_nonfinite_step.f_minimum(&candidate)?;
        Ok(())
    }

    fn first_nonfinite_step(&self) -> Result<Option<u32>> {
        let step = i64::try_from(&self.device_first_nonfinite_step)?;
        Ok(u32::try_from(step).ok())
    }

    fn add_host(&mut self, loss: &[f32], correct: &[bool]) {
        self.host_loss += loss.iter().map(|&l| f64::from(l)).sum::<f64>();
        self.host_correct += correct.iter().filter(|&&c| c).count() as u64;
    }

    /// Adds a batch's loss sum and correct count on the device; with `step`, also notes a
    /// non-finite loss there ([`EpochTotals::track_nonfinite`]).
    fn add_device(
        &mut self,
        logits: &Tensor,
        targets: &Tensor,
        loss: &Tensor,
        step: Option<u32>,
    ) -> Result<()> {
        let _no_grad = tch::no_grad_guard();
        let batch_loss = loss.f_sum(Kind::Double)?;
        if let Some(step) = step {
            self.track_nonfinite(&batch_loss, step)?;
        }
        self.device_loss += batch_loss;
        self.device_correct +=
            logits.f_argmax(1, false)?.f_eq_tensor(targets)?.f_sum(Kind::Int64)?;
        Ok(())
    }

    /// (mean loss, accuracy) over `examples` presentations.
    fn means(&self, examples: usize) -> Result<(f64, f64)> {
        let loss = self.host_loss + f64::try_from(&self.device_loss)?;
        let correct = self.host_correct as f64 + f64::try_from(&self.device_correct)?;
        let n = examples.max(1) as f64;
        Ok((loss / n, correct / n))
    }
}

/// (mean loss, accuracy) of `net` on a test set (uint8 images, normalized as training input
/// but never augmented), in eval mode without gradients.
fn evaluate(
    net: &dyn ModuleT,
    batches: &BatchMaker,
    images: &Tensor,
    labels: &Tensor,
) -> Result<(f64, f64)> {
    let _no_grad = tch::no_grad_guard();
    let n = images.size()[0];
    let mut totals = EpochTotals::new(images.device());
    for start in (0..n).step_by(EVAL_BATCH_SIZE as usize) {
        let len = EVAL_BATCH_SIZE.min(n - start);
        let logits = net.forward_t(&batches.normalize(&images.f_narrow(0, start, len)?)?, false);
        let targets = labels.f_narrow(0, start, len)?;
        let loss = cross_entropy(&logits, &targets)?;
        totals.add_device(&logits, &targets, &loss, None)?;
    }
    totals.means(n as usize)
}

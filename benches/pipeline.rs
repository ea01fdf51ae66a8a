//! End-to-end figures of the pipeline, printed (targets are goals, not assertions):
//! 1. MNIST CNN training examples/s with recording on and off (target overhead <= 3%), and
//!    ResNet18-CIFAR images/s on 32x32 batches of 128 with and without recording;
//! 2. writer throughput (rows/s) and bytes per presentation on disk (target <= 8);
//! 3. `fstream order` wall time and peak memory on 5 runs x 200 epochs x 60,000 examples
//!    (target <= 1.5 s and <= 1.5 GB), and DuckDB on the same files when FSTREAM_PYTHON is set.
//!
//! Run: `cargo bench --bench pipeline` (scripts/bench.sh sets up libtorch first). Sections can
//! be chosen: `cargo bench --bench pipeline -- train resnet18 writer order`.
//! `FSTREAM_BENCH_KEEP=1` keeps the generated 60M-row root (and skips timing it).

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use fstream::config::{LrSchedule, ModelKind, OptimizerConfig, TrainConfig};
use fstream::data::{DatasetKind, ImageSet, Splits, mnist};
use fstream::experiment::PlannedRun;
use fstream::experiment::plan::{DataCache, ExperimentSpec, RemovalFlags, plan_new_runs};
use fstream::query::scores::Score;
use fstream::record::{
    self, BatchStats, EpochSummary, ExampleTable, Record, RunId, RunInfo, RunStart,
};
use fstream::store::writer::{WriterReport, spawn_writer};
use fstream_torch::experiment::run_experiment;
use fstream_torch::train::Progress;
use rand::rngs::ChaCha8Rng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

const EXAMPLES: usize = 60_000;

fn main() {
    let sections: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let wants = |name: &str| sections.is_empty() || sections.iter().any(|s| s == name);
    if wants("train") {
        bench_mnist_training();
    }
    if wants("resnet18") {
        bench_resnet18_training();
    }
    if wants("writer") {
        bench_writer();
    }
    if wants("order") {
        bench_order();
    }
}

/// Random images of `shape` with labels below `classes`: `train` and `test` examples.
fn synthetic(
    kind: DatasetKind,
    shape: [usize; 3],
    classes: u16,
    train: usize,
    test: usize,
) -> Splits {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut set = |n: usize| ImageSet {
        pixels: (0..n * shape.iter().product::<usize>()).map(|_| rng.random::<u8>()).collect(),
        labels: (0..n).map(|_| rng.random_range(0..classes)).collect(),
        coarse_labels: None,
        image_shape: shape,
    };
    Splits { kind, train: set(train), test: set(test), num_classes: usize::from(classes) }
}

/// MNIST from data/mnist when present, else random images of the same shape.
fn mnist_or_synthetic() -> (Splits, &'static str) {
    match mnist::load(Path::new("data"), DatasetKind::Mnist, 0) {
        Ok(splits) => (splits, "real MNIST (data/mnist)"),
        Err(_) => (
            synthetic(DatasetKind::Mnist, [1, 28, 28], 10, EXAMPLES, 10_000),
            "random 28x28 images (data/mnist not found)",
        ),
    }
}

/// Rounds of the MNIST comparison: each trains one epoch of every contender back to back, so
/// that the machine's drift (±15% between minutes on a shared 2-core machine) cancels in each
/// round's ratios; the medians of those ratios are printed.
const MNIST_ROUNDS: u64 = 7;

fn bench_mnist_training() {
    let (data, source) = mnist_or_synthetic();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_epoch = 20_000;
    println!(
        "== training: MNIST CNN, batch 64, {per_epoch} examples/epoch, {threads} threads, {source}, {MNIST_ROUNDS} interleaved rounds (the first warms up)"
    );
    let base = TrainConfig { intra_op_threads: threads, ..Default::default() };
    let data = Arc::new(data);
    let dir = tempfile::tempdir().unwrap();
    let mut rounds = Vec::new();
    for round in 0..MNIST_ROUNDS {
        let on = fstream_rates(dir.path(), &data, &base, per_epoch, round, true)[0];
        let off = fstream_rates(dir.path(), &data, &base, per_epoch, round, false)[0];
        let minimal = minimal_loop_rates(&data, &base, per_epoch)[0];
        if round > 0 {
            rounds.push([on, off, minimal]);
        }
    }
    let column = |i: usize| median(&mut rounds.iter().map(|r| r[i]).collect::<Vec<_>>());
    let ratio =
        |a: usize, b: usize| median(&mut rounds.iter().map(|r| r[a] / r[b]).collect::<Vec<_>>());
    println!("recording on : {:>8.1} examples/s (median)", column(0));
    println!("recording off: {:>8.1} examples/s (median)", column(1));
    println!(
        "minimal tch loop (nn::Sgd, same model and batches, no statistics): {:>8.1} examples/s (median)",
        column(2)
    );
    println!(
        "recording overhead: {:.1}% (median over rounds; target <= 3%)",
        100.0 * (1.0 - ratio(0, 1))
    );
    println!(
        "fstream with recording / minimal loop: {:.2}x (median over rounds; target >= 1.00x)",
        ratio(0, 2)
    );
    println!("fstream without recording / minimal loop: {:.2}x", ratio(1, 2));
    if threads >= 2 {
        let one_thread = TrainConfig { intra_op_threads: 1, ..base };
        let mut ratios = Vec::new();
        for round in 0..MNIST_ROUNDS {
            let fstream: f64 =
                fstream_rates(dir.path(), &data, &one_thread, per_epoch, round, true).iter().sum();
            let minimal: f64 = minimal_loop_rates(&data, &one_thread, per_epoch).iter().sum();
            if round > 0 {
                ratios.push(fstream / minimal);
            }
        }
        println!(
            "2 runs x 1 thread, recording on, examples/s of both together against two minimal loops at once: {:.2}x (median over rounds; target >= 1.00x)",
            median(&mut ratios)
        );
    }
}

/// Examples/s in the second epoch of each run of one fstream experiment: one run of
/// `config`, or two at once when it has one intra-op thread (2 runs x 1 thread).
fn fstream_rates(
    root: &Path,
    data: &Arc<Splits>,
    config: &TrainConfig,
    per_epoch: usize,
    round: u64,
    record: bool,
) -> Vec<f64> {
    let runs: Vec<PlannedRun> = (0..runs_at_once(config))
        .map(|i| {
            let seed = round * 2 + i as u64;
            planned_run(data, TrainConfig { epochs: 2, seed, record, ..config.clone() }, per_epoch)
        })
        .collect();
    let rates: Mutex<Vec<f64>> = Mutex::new(Vec::new());
    let on_progress = |p: Progress<'_>| {
        if let Progress::Epoch(s) = p
            && s.epoch == 2
        {
            rates.lock().unwrap().push(s.examples as f64 / s.train_seconds);
        }
        std::ops::ControlFlow::Continue(())
    };
    run_experiment(root, &runs, &on_progress).unwrap();
    rates.into_inner().unwrap()
}

/// Runs trained at once for `config`: two with one intra-op thread each, else one.
fn runs_at_once(config: &TrainConfig) -> usize {
    if config.intra_op_threads == 1 { 2 } else { 1 }
}

/// Examples/s in the second epoch of the plainest training loop tch allows for `config`'s
/// model and batch size (inputs normalized once up front, batches by `index_select`, tch's
/// `nn::Sgd`, no statistics, no records), on fresh threads as fstream trains its runs, as
/// many at once as [`fstream_rates`] trains.
fn minimal_loop_rates(data: &Splits, config: &TrainConfig, per_epoch: usize) -> Vec<f64> {
    std::thread::scope(|scope| {
        let loops: Vec<_> = (0..runs_at_once(config))
            .map(|_| scope.spawn(|| minimal_loop(data, config, per_epoch)))
            .collect();
        loops.into_iter().map(|l| l.join().unwrap()).collect()
    })
}

fn minimal_loop(data: &Splits, config: &TrainConfig, per_epoch: usize) -> f64 {
    use tch::nn::OptimizerConfig as _;
    use tch::{Kind, Tensor};
    tch::set_num_threads(config.intra_op_threads as i32);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let dropout = fstream_torch::model::DropoutRng::new(config.seed);
    let net = fstream_torch::model::seeded(0, || {
        fstream_torch::model::build(&vs.root(), config.model, 10, config.dropout, dropout.clone())
    });
    let sgd = tch::nn::Sgd { momentum: config.optimizer.momentum, ..Default::default() };
    let mut optimizer = sgd.build(&vs, config.optimizer.lr).unwrap();
    let [c, h, w] = data.train.image_shape;
    let n = per_epoch as i64;
    let pixels = &data.train.pixels[..per_epoch * c * h * w];
    let images =
        (Tensor::from_slice(pixels).view([n, c as i64, h as i64, w as i64]).to_kind(Kind::Float)
            / 255.0
            - 0.1307)
            / 0.3081;
    let labels: Vec<i64> = data.train.labels[..per_epoch].iter().map(|&l| i64::from(l)).collect();
    let labels = Tensor::from_slice(&labels);
    let mut rate = 0.0;
    for _epoch in 1..=2 {
        let order = Tensor::randperm(n, (Kind::Int64, tch::Device::Cpu));
        let started = Instant::now();
        for start in (0..n).step_by(config.batch_size) {
            let len = (config.batch_size as i64).min(n - start);
            let batch = order.narrow(0, start, len);
            let logits = net.forward_t(&images.index_select(0, &batch), true);
            let loss = logits.cross_entropy_for_logits(&labels.index_select(0, &batch));
            optimizer.backward_step(&loss);
        }
        rate = per_epoch as f64 / started.elapsed().as_secs_f64();
    }
    rate
}

fn bench_resnet18_training() {
    let data = synthetic(DatasetKind::Cifar10, [3, 32, 32], 10, 640, 128);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "== training: ResNet18-CIFAR, batches of 128 random 32x32 images (crop, flip, cutout), 5 batches/epoch, {threads} threads"
    );
    let base = TrainConfig {
        model: ModelKind::ResNet18,
        batch_size: 128,
        optimizer: OptimizerConfig::CIFAR,
        lr_schedule: LrSchedule::cifar(0),
        augment: true,
        cutout: Some(fstream::config::Cutout { holes: 1, length: 16 }),
        intra_op_threads: threads,
        ..Default::default()
    };
    bench_batch_preparation(&data, &base);
    bench_recording(&Arc::new(data), base, 640, 3, "images");
}

/// Images/s of batch preparation alone (gather, crop, flip, normalize, cutout) on one thread:
/// what the prefetch thread must sustain for the trainer never to wait.
fn bench_batch_preparation(data: &Splits, config: &TrainConfig) {
    use fstream_torch::batch::{BatchMaker, InputConfig};
    tch::set_num_threads(1);
    let input = InputConfig {
        normalization: data.kind.normalization(),
        augment: config.augment,
        cutout: config.cutout,
    };
    let maker = BatchMaker::new(&data.train, &data.train.labels, input, tch::Device::Cpu).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let ids: Vec<u32> = (0..data.train.len() as u32).collect();
    let started = Instant::now();
    let mut images = 0;
    while started.elapsed().as_secs_f64() < 2.0 {
        for batch in ids.chunks(128) {
            let (input, _) = maker.make(batch, &mut rng).unwrap();
            assert_eq!(input.size()[0], batch.len() as i64);
            images += batch.len();
        }
    }
    let rate = images as f64 / started.elapsed().as_secs_f64();
    println!(
        "batch preparation (1 thread, crop + flip + normalize + cutout): {rate:>8.0} images/s"
    );
}

/// Trains one epoch of `per_epoch` examples `repetitions` times with recording on and off
/// (the first repetition warms up), prints the median rates and returns the one with
/// recording on.
fn bench_recording(
    data: &Arc<Splits>,
    base: TrainConfig,
    per_epoch: usize,
    repetitions: u64,
    unit: &str,
) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let mut rates = [Vec::new(), Vec::new()];
    for repetition in 0..repetitions {
        for (slot, record) in [(0, true), (1, false)] {
            let config = TrainConfig { epochs: 1, record, seed: repetition, ..base.clone() };
            let run = planned_run(data, config, per_epoch);
            let summaries: Mutex<Vec<EpochSummary>> = Mutex::new(Vec::new());
            let on_progress = |p: Progress<'_>| {
                if let Progress::Epoch(s) = p {
                    summaries.lock().unwrap().push(s.clone());
                }
                std::ops::ControlFlow::Continue(())
            };
            run_experiment(dir.path(), &[run], &on_progress).unwrap();
            let s = &summaries.lock().unwrap()[0];
            if repetition > 0 {
                rates[slot].push(s.examples as f64 / s.train_seconds);
            }
        }
    }
    let on = median(&mut rates[0]);
    let off = median(&mut rates[1]);
    let n = repetitions - 1;
    println!("recording on : {on:>8.1} {unit}/s (median of {n})");
    println!("recording off: {off:>8.1} {unit}/s (median of {n})");
    println!("recording overhead: {:.1}% (target <= 3%)", 100.0 * (off - on) / off);
    on
}

/// A run of `config` on the first `examples` examples of `data` (random removal of the
/// rest), planned as `fstream train` plans one.
fn planned_run(data: &Splits, config: TrainConfig, examples: usize) -> PlannedRun {
    let mut spec = ExperimentSpec::new(data.kind, vec![config.seed], config);
    spec.removal_flags = RemovalFlags {
        remove_n: data.train.len() - examples,
        keep_lowest_n: -1,
        remove_subsample: 0,
    };
    let mut cache = DataCache::preloaded("generated".into(), data.clone());
    plan_new_runs(&spec, &mut cache).expect("a valid bench run").remove(0)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Writes `runs` x `epochs` x 60,000 synthetic presentations through the real channel and
/// writer. Each example is learned at a random epoch, then mostly stays learned, so the
/// correctness pattern and the float distributions resemble a real run.
fn write_synthetic(root: &Path, runs: usize, epochs: u32) -> (WriterReport, f64) {
    let (mut sender, receiver) = record::channel();
    let writer = spawn_writer(root.to_path_buf(), receiver).expect("the writer starts");
    let started = Instant::now();
    for run in 0..runs {
        let mut rng = ChaCha8Rng::seed_from_u64(run as u64);
        let run_id: RunId = format!("synthetic-s{run}").into();
        let info = RunInfo {
            run_id: run_id.clone(),
            dataset: DatasetKind::Mnist,
            seed: run as u64,
            epochs,
            dataset_examples: EXAMPLES as u32,
            train_examples: EXAMPLES as u32,
            record_presentations: true,
            ..Default::default()
        };
        let labels: Vec<u16> = (0..EXAMPLES).map(|i| (i % 10) as u16).collect();
        let examples = ExampleTable {
            original_labels: labels.clone(),
            labels: labels.clone(),
            in_training_set: vec![true; EXAMPLES],
            pixel_noisy: vec![false; EXAMPLES],
            coarse_labels: None,
        };
        sender
            .send(Record::RunStarted(Box::new(RunStart { run: info, examples, resume_after: 0 })))
            .unwrap();
        let learned_at: Vec<u32> = (0..EXAMPLES).map(|_| rng.random_range(1..12u32)).collect();
        let mut order: Vec<u32> = (0..EXAMPLES as u32).collect();
        let mut step = 0;
        for epoch in 1..=epochs {
            order.shuffle(&mut rng);
            for batch in order.chunks(64) {
                let mut stats = BatchStats { run_id: run_id.clone(), epoch, ..Default::default() };
                for &id in batch {
                    let learned = epoch >= learned_at[id as usize];
                    let correct = rng.random_bool(if learned { 0.98 } else { 0.3 });
                    let margin: f32 = if correct {
                        rng.random_range(0.0..12.0)
                    } else {
                        rng.random_range(-6.0..0.0)
                    };
                    stats.steps.push(step);
                    stats.example_ids.push(id);
                    stats.labels.push(labels[id as usize]);
                    stats.loss.push((-margin).exp().ln_1p() * rng.random_range(0.8..1.2f32));
                    stats.correct.push(correct);
                    stats.margin.push(margin);
                }
                sender.send(Record::Batch(stats)).unwrap();
                step += 1;
            }
            let summary = EpochSummary {
                run_id: run_id.clone(),
                epoch,
                train_acc: 0.0,
                train_loss: 0.0,
                test_acc: 0.0,
                test_loss: 0.0,
                lr: 0.01,
                train_seconds: 0.0,
                channel_wait_seconds: 0.0,
                examples: EXAMPLES as u64,
            };
            sender.send(Record::EpochEnded { summary, checkpoint: None }).unwrap();
        }
        sender.send(Record::RunEnded { run_id, error: None }).unwrap();
    }
    let waited = sender.waited().as_secs_f64();
    drop(sender);
    let report = writer.join().unwrap().unwrap();
    let seconds = started.elapsed().as_secs_f64();
    println!("(generated in {seconds:.1} s; producer blocked on the channel {waited:.1} s)");
    (report, seconds)
}

fn bench_writer() {
    println!("== writer: 1 run x 30 epochs x 60,000 synthetic presentations");
    let dir = tempfile::tempdir().unwrap();
    let (report, _) = write_synthetic(dir.path(), 1, 30);
    let rows = report.presentation_rows as f64;
    println!(
        "writer busy {:.2} s: {:.2} M rows/s sustained by the writer thread",
        report.busy_seconds,
        rows / report.busy_seconds / 1e6
    );
    println!(
        "keeping the dynamics table: {:.2} s, {:.1}% of the writer's busy time (target <= 5%)",
        report.dynamics_seconds,
        100.0 * report.dynamics_seconds / report.busy_seconds
    );
    println!(
        "bytes per presentation on disk: {:.2} (target <= 8)",
        report.presentation_bytes as f64 / rows
    );
}

/// Shipped queries timed against the synthetic root: (file, time target s, memory target MB).
const TIMED_QUERIES: [(&str, f64, f64); 2] = [
    ("queries/forgetting_counts.sql", 0.5, 400.0),
    ("queries/forgetting_counts_from_presentations.sql", f64::NAN, 2000.0),
];

fn bench_order() {
    println!("== order and queries: 5 runs x 200 epochs x 60,000 examples (60M presentations)");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let (report, _) = write_synthetic(&root, 5, 200);
    println!(
        "dataset: {} rows, {:.0} MB",
        report.presentation_rows,
        report.presentation_bytes as f64 / 1e6
    );
    if std::env::var_os("FSTREAM_BENCH_KEEP").is_some() {
        println!("kept for inspection (FSTREAM_BENCH_KEEP): {}", root.display());
        std::mem::forget(dir);
        return;
    }
    let out = dir.path().display().to_string();
    let root_arg = root.display().to_string();
    let order = [
        "-q",
        "order",
        "--dataset",
        "mnist",
        "--input-dir",
        &root_arg,
        "--output-dir",
        &out,
        "--output-name",
        "o",
    ];
    measured_fstream(&order); // warm the page cache
    let (seconds, mb) = median_of_3(&order);
    println!(
        "fstream order: {seconds:.2} s, peak RSS {mb:.0} MB (median of 3, warm cache; target <= 0.2 s)"
    );
    let prefix = [&order[..], &["--epochs", "199"]].concat();
    let (seconds, mb) = median_of_3(&prefix);
    println!(
        "fstream order --epochs 199 (a prefix: streams the presentations): {seconds:.2} s, peak RSS {mb:.0} MB"
    );
    let dynamics_scores = Score::ALL.into_iter().filter(|&s| s != Score::El2n).map(Score::name);
    for score in dynamics_scores {
        let output = dir.path().join(format!("{score}.parquet")).display().to_string();
        let args = [
            "-q",
            "scores",
            "--root",
            &root_arg,
            "--dataset",
            "mnist",
            "--score",
            score,
            "--output",
            &output,
        ];
        let (seconds, mb) = median_of_3(&args);
        println!(
            "fstream scores --score {score}: {seconds:.2} s, peak RSS {mb:.0} MB (median of 3; target <= 1 s)"
        );
    }
    for (file, time_target, memory_target) in TIMED_QUERIES {
        let args = ["-q", "query", file, "--root", &root_arg, "--format", "csv"];
        let (seconds, mb) = median_of_3(&args);
        let time_target = if time_target.is_nan() {
            "no slower than DuckDB".to_string()
        } else {
            format!("<= {time_target} s")
        };
        println!(
            "fstream query {file}: {seconds:.2} s, peak RSS {mb:.0} MB (median of 3; targets {time_target}, <= {memory_target} MB)"
        );
    }
    if let Some(python) = std::env::var_os("FSTREAM_PYTHON") {
        let script = format!(
            "import duckdb, time\ncon = duckdb.connect()\ncon.execute(\"SET enable_progress_bar = false\")\nfor table in ['runs', 'dynamics']:\n    con.execute(f\"CREATE VIEW {{table}} AS SELECT * FROM read_parquet('{root_arg}/{{table}}/*.parquet')\")\ncon.execute(\"CREATE VIEW presentations AS SELECT * FROM read_parquet('{root_arg}/presentations/**/*.parquet', hive_partitioning=true)\")\ncon.execute('CREATE VIEW forgetting_per_run AS ' + open('queries/views/forgetting_per_run.sql').read())\nfor name in ['forgetting_counts', 'forgetting_counts_from_presentations']:\n    sql = open(f'queries/{{name}}.sql').read()\n    ts = []\n    for _ in range(3):\n        t = time.time(); con.execute(sql).fetchall(); ts.append(time.time() - t)\n    print(f'duckdb {{name}}.sql: {{sorted(ts)[1]:.2f}} s (median of 3)')\n"
        );
        let output = Command::new(python).arg("-c").arg(script).output().unwrap();
        print!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Median wall time and the median of the peak memories of three runs of `fstream ARGS`.
fn median_of_3(args: &[&str]) -> (f64, f64) {
    let runs: Vec<(f64, f64)> = (0..3).map(|_| measured_fstream(args)).collect();
    let mut seconds: Vec<f64> = runs.iter().map(|r| r.0).collect();
    let mut mb: Vec<f64> = runs.iter().map(|r| r.1).collect();
    (median(&mut seconds), median(&mut mb))
}

/// Runs `fstream ARGS` (stdout discarded) and returns its wall time and its own peak
/// resident memory in MB (NaN without GNU time).
///
/// The peak comes from GNU time (`/usr/bin/time -f %M`, Debian package `time`), which forks a
/// small process that execs fstream. This bench's own `wait4` cannot tell it: a child's peak
/// starts at its parent's resident size when it execs, and this process holds libtorch
/// (~150 MB), more than fstream itself uses.
fn measured_fstream(args: &[&str]) -> (f64, f64) {
    const GNU_TIME: &str = "/usr/bin/time";
    let fstream = env!("CARGO_BIN_EXE_fstream");
    let gnu_time = Path::new(GNU_TIME).is_file();
    let mut command = if gnu_time {
        let mut command = Command::new(GNU_TIME);
        command.args(["-f", "%M", fstream]);
        command
    } else {
        Command::new(fstream)
    };
    let started = Instant::now();
    let output = command.args(args).stdout(std::process::Stdio::null()).output().unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "fstream {args:?} failed: {stderr}");
    let peak_kb = stderr.lines().last().and_then(|l| l.trim().parse::<f64>().ok());
    (seconds, if gnu_time { peak_kb.expect("GNU time prints the peak") / 1024.0 } else { f64::NAN })
}

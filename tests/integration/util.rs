//! Test helpers: a temporary workspace with tiny IDX datasets, a runner for the built binary,
//! and an independent reader of the presentations table.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use arrow::array::{Array, BooleanArray, Float32Array, UInt32Array};
use fstream::data::idx::encode_idx;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// A fresh temporary directory for one test.
pub struct Workspace {
    dir: tempfile::TempDir,
}

/// The result of running the binary.
pub struct Run {
    pub output: Output,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Asserts the exit code, printing both streams when it differs.
    pub fn assert_exit_code(&self, expected: i32) -> &Self {
        let code = self.output.status.code().unwrap_or(-1);
        assert_eq!(
            code,
            expected,
            "\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }

    pub fn assert_ok(&self) -> &Self {
        self.assert_exit_code(0)
    }

    /// Asserts a one-line error on stderr that contains `needle`, and no panic.
    pub fn assert_error_contains(&self, needle: &str) -> &Self {
        let stderr = self.stderr();
        let errors: Vec<&str> =
            stderr.lines().filter(|l| l.starts_with("fstream: error:")).collect();
        assert_eq!(errors.len(), 1, "expected one error line, stderr:\n{stderr}");
        assert!(errors[0].contains(needle), "expected {needle:?} in {:?}", errors[0]);
        assert!(!stderr.contains("panicked"), "panic in stderr:\n{stderr}");
        self
    }
}

impl Workspace {
    pub fn new() -> Self {
        Workspace { dir: tempfile::tempdir().unwrap() }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.path().join("data")
    }

    pub fn root(&self) -> PathBuf {
        self.path().join("results")
    }

    /// Writes a tiny MNIST-format dataset: `n_train` and `n_test` 28x28 images of 10 classes,
    /// each class a bright bar at its own place plus seeded noise; a few train labels are wrong
    /// so that some examples are forgotten or never learned.
    pub fn write_tiny_mnist(&self, n_train: usize, n_test: usize) {
        let dir = self.data_dir().join("mnist");
        std::fs::create_dir_all(&dir).unwrap();
        let mut state = 12345u64;
        let mut noise = move || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as u8
        };
        let mut split = |n: usize, flip_every: usize| {
            let mut pixels = Vec::with_capacity(n * 784);
            let mut labels = Vec::with_capacity(n);
            for i in 0..n {
                let class = i % 10;
                for row in 0..28 {
                    for colm in 0..28 {
                        let bar = row / 3 == class && colm > 3 && colm < 24;
                        pixels.push(if bar {
                            200u8.saturating_add(noise() % 55)
                        } else {
                            noise() % 90
                        });
                    }
                }
                let flipped = flip_every > 0 && i % flip_every == flip_every - 1;
                labels.push(if flipped { ((class + 3) % 10) as u8 } else { class as u8 });
            }
            (pixels, labels)
        };
        let (train_pixels, train_labels) = split(n_train, 7);
        let (test_pixels, test_labels) = split(n_test, 0);
        let write = |name: &str, bytes: Vec<u8>| std::fs::write(dir.join(name), bytes).unwrap();
        write("train-images-idx3-ubyte", encode_idx(&[n_train, 28, 28], &train_pixels));
        write("train-labels-idx1-ubyte", encode_idx(&[n_train], &train_labels));
        write("t10k-images-idx3-ubyte", encode_idx(&[n_test, 28, 28], &test_pixels));
        write("t10k-labels-idx1-ubyte", encode_idx(&[n_test], &test_labels));
    }

    /// Writes a tiny CIFAR-format dataset under the data directory, in exactly the binary
    /// format of `cifar-10-binary.tar.gz` (`classes` 10: five training batch files, the
    /// examples split evenly) or `cifar-100-binary.tar.gz` (`classes` 100: coarse label
    /// `fine % 20`). Class `c` is a bright band in channel `c % 3` at rows `3 * (c % 10)..`.
    pub fn write_tiny_cifar(&self, classes: u8, n_train: usize, n_test: usize) {
        let record = |i: usize| {
            let class = (i % usize::from(classes)) as u8;
            let mut bytes = if classes == 100 { vec![class % 20, class] } else { vec![class] };
            for channel in 0..3 {
                for row in 0..32 {
                    for col in 0..32 {
                        let band =
                            channel == usize::from(class % 3) && row / 3 == usize::from(class % 10);
                        bytes.push(if band { 220 } else { ((i * 7 + row * 3 + col) % 60) as u8 });
                    }
                }
            }
            bytes
        };
        let (dir, train_files, test_file): (&str, &[&str], &str) = if classes == 100 {
            ("cifar-100-binary", &["train.bin"], "test.bin")
        } else {
            (
                "cifar-10-batches-bin",
                &[
                    "data_batch_1.bin",
                    "data_batch_2.bin",
                    "data_batch_3.bin",
                    "data_batch_4.bin",
                    "data_batch_5.bin",
                ],
                "test_batch.bin",
            )
        };
        let dir = self.data_dir().join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        let per_file = n_train / train_files.len();
        for (f, name) in train_files.iter().enumerate() {
            let bytes: Vec<u8> = (f * per_file..(f + 1) * per_file).flat_map(record).collect();
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        let test: Vec<u8> = (0..n_test).flat_map(record).collect();
        std::fs::write(dir.join(test_file), test).unwrap();
    }

    /// Runs `fstream ARGS` in the workspace.
    pub fn fstream(&self, args: &[&str]) -> Run {
        let output = Command::new(env!("CARGO_BIN_EXE_fstream"))
            .args(args)
            .current_dir(self.path())
            .env_remove("LIBTORCH")
            .output()
            .unwrap();
        Run { output }
    }

    /// `fstream train` on the tiny MNIST dataset with test-friendly defaults (batch 16, lr
    /// 0.05, see [`Workspace::train_any`]); `extra` adds or overrides flags.
    pub fn train(&self, extra: &[&str]) -> Run {
        let mut args = vec!["--dataset", "mnist", "--batch-size", "16", "--lr", "0.05"];
        args.extend_from_slice(extra);
        self.train_any(&args)
    }

    /// `fstream train` on the workspace's data into its root, on CPU with one thread per run
    /// and no download; `extra` adds or overrides flags (and names the dataset).
    pub fn train_any(&self, extra: &[&str]) -> Run {
        let data = self.data_dir().display().to_string();
        let root = self.root().display().to_string();
        let mut args = vec![
            "train",
            "--data-dir",
            &data,
            "--output-dir",
            &root,
            "--device",
            "cpu",
            "--no-download",
        ];
        args.extend_from_slice(extra);
        if !extra.contains(&"--threads") {
            args.extend_from_slice(&["--threads", "1"]);
        }
        self.fstream(&args)
    }

    /// `fstream order` of the root into `<name>.parquet/csv` in the workspace.
    pub fn order(&self, name: &str, extra: &[&str]) -> Run {
        let root = self.root().display().to_string();
        let out = self.path().display().to_string();
        let mut args = vec![
            "order",
            "--input-dir",
            &root,
            "--dataset",
            "mnist",
            "--output-dir",
            &out,
            "--output-name",
            name,
        ];
        args.extend_from_slice(extra);
        self.fstream(&args)
    }

    /// `fstream query FILE --root ROOT --format csv`, asserting success; returns stdout.
    pub fn query_csv(&self, sql_file: &Path) -> String {
        self.query_csv_at(sql_file, &self.root())
    }

    /// `fstream query SQL_FILE --format csv` over `root`; asserts success, returns stdout.
    pub fn query_csv_at(&self, sql_file: &Path, root: &Path) -> String {
        let root = root.display().to_string();
        let run = self.fstream(&[
            "query",
            sql_file.to_str().unwrap(),
            "--root",
            &root,
            "--format",
            "csv",
        ]);
        run.assert_ok();
        run.stdout()
    }
}

/// Every committed `.parquet` file under `dir`, sorted.
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort();
    files
}

/// The id of the root's first run (by id).
pub fn first_run_id(root: &Path) -> String {
    parquet_files(&root.join("runs"))[0].file_stem().unwrap().to_string_lossy().into_owned()
}

/// The path of a file shipped in the repository.
pub fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// One presentation, as read back independently of fstream's query code.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Presentation {
    pub epoch: u32,
    pub example_id: u32,
    pub correct: bool,
    pub loss: f32,
    pub margin: f32,
}

/// Column `name` of `batch` as `T` (panics when it is missing or of another type).
pub fn typed_column<'a, T: Array + 'static>(
    batch: &'a arrow::array::RecordBatch,
    name: &str,
) -> &'a T {
    batch
        .column_by_name(name)
        .unwrap_or_else(|| panic!("no column {name}"))
        .as_any()
        .downcast_ref::<T>()
        .unwrap_or_else(|| panic!("column {name} of another type"))
}

/// Every row of a Parquet file, as one batch, read with the parquet crate.
pub fn read_parquet(path: &Path) -> arrow::array::RecordBatch {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let schema = builder.schema().clone();
    let batches: Vec<_> = builder.build().unwrap().map(|b| b.unwrap()).collect();
    arrow::compute::concat_batches(&schema, &batches).unwrap()
}

/// Reads every presentation of every run with the parquet crate, keyed by run id (taken from
/// the `run_id=` path segment, epoch from `epoch=`).
pub fn read_presentations(root: &Path) -> BTreeMap<String, Vec<Presentation>> {
    let mut runs: BTreeMap<String, Vec<Presentation>> = BTreeMap::new();
    for file in parquet_files(&root.join("presentations")) {
        let segment = |key: &str| {
            file.components()
                .find_map(|c| c.as_os_str().to_str()?.strip_prefix(key).map(String::from))
                .unwrap()
        };
        let run_id = segment("run_id=");
        let epoch: u32 = segment("epoch=").parse().unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&file).unwrap())
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let ids = typed_column::<UInt32Array>(&batch, "example_id");
            let correct = typed_column::<BooleanArray>(&batch, "correct");
            let loss = typed_column::<Float32Array>(&batch, "loss");
            let margin = typed_column::<Float32Array>(&batch, "margin");
            for i in 0..ids.len() {
                runs.entry(run_id.clone()).or_default().push(Presentation {
                    epoch,
                    example_id: ids.value(i),
                    correct: correct.value(i),
                    loss: loss.value(i),
                    margin: margin.value(i),
                });
            }
        }
    }
    runs
}

/// Forgetting counts computed the slow, obvious way: per run and example, sort presentations
/// by epoch, count true→false transitions, or (never correct) `penalty` or else the number of
/// presentations; sum over runs.
pub fn expected_counts(
    runs: &BTreeMap<String, Vec<Presentation>>,
    penalty: Option<u32>,
) -> BTreeMap<u32, u32> {
    let mut totals: BTreeMap<u32, u32> = BTreeMap::new();
    for presentations in runs.values() {
        let mut by_example: BTreeMap<u32, Vec<(u32, bool)>> = BTreeMap::new();
        for p in presentations {
            by_example.entry(p.example_id).or_default().push((p.epoch, p.correct));
        }
        for (id, mut seq) in by_example {
            seq.sort();
            let count = if seq.iter().any(|&(_, c)| c) {
                seq.windows(2).filter(|w| w[0].1 && !w[1].1).count()
            } else {
                penalty.map_or(seq.len(), |p| p as usize)
            };
            *totals.entry(id).or_default() += count as u32;
        }
    }
    totals
}

/// Parses the CSV written by `fstream order` into (example_id, forgetting_count, rank) rows of
/// the presented examples.
pub fn read_order_csv(path: &Path) -> Vec<(u32, u32, u32)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("example_id,forgetting_count,rank,presented"));
    lines
        .filter(|line| line.ends_with(",true"))
        .map(|line| {
            let fields: Vec<u32> = line.split(',').take(3).map(|f| f.parse().unwrap()).collect();
            (fields[0], fields[1], fields[2])
        })
        .collect()
}

/// Every committed presentation and dynamics row of the root as CSV (run ids left out, so
/// that roots trained apart compare equal): what "bit-identical" compares.
pub fn committed_data_csv(ws: &Workspace, root: &std::path::Path) -> String {
    let query = |name: &str, sql: &str| {
        let path = ws.path().join(name);
        std::fs::write(&path, sql).unwrap();
        ws.query_csv_at(&path, root)
    };
    let presentations = query(
        "all.sql",
        "SELECT epoch, step, example_id, label, loss, correct, margin FROM presentations \
         ORDER BY epoch, example_id",
    );
    let dynamics = query(
        "dynamics.sql",
        "SELECT r.seed, d.example_id, d.label, d.epochs, d.presentations, \
         d.correct_presentations, d.forgetting_events, d.first_correct_epoch, \
         d.last_incorrect_epoch, d.last_correct, d.loss_sum, d.margin_sum, d.p_label_sum, \
         d.p_label_sq_sum FROM dynamics d JOIN runs r ON d.run_id = r.run_id \
         ORDER BY r.seed, d.example_id",
    );
    presentations + &dynamics
}

/// `fstream train` into `root`, its stderr going to `log`.
pub fn train_command(ws: &Workspace, root: &std::path::Path, log: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fstream"));
    command
        .args(["train", "--device", "cpu", "--threads", "1", "--no-download"])
        .arg("--data-dir")
        .arg(ws.data_dir())
        .arg("--output-dir")
        .arg(root)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    command
}

/// Sends `signal` to the child process.
pub fn signal(child: &Child, signal: libc::c_int) {
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
}

/// Copies a directory tree.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Waits (polling, no fixed sleep) until `dir` holds at least `count` committed `.parquet`
/// files, e.g. the first epochs of a training process; fails after two minutes.
pub fn wait_for_parquet_files(dir: &Path, count: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while parquet_files(dir).len() < count {
        assert!(std::time::Instant::now() < deadline, "{count} files never appeared in {dir:?}");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Runs `fstream train ARGS` into `root` with crash point `spec` armed
/// (`FSTREAM_CRASH_POINT`) and asserts that the process died there, by SIGKILL.
pub fn train_crashing_at(ws: &Workspace, root: &Path, args: &[&str], spec: &str) {
    use std::os::unix::process::ExitStatusExt;
    let log = ws.path().join("crash.log");
    let status =
        train_command(ws, root, &log).args(args).env("FSTREAM_CRASH_POINT", spec).status().unwrap();
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{spec}: {status:?}\n{stderr}");
}

/// A removal sweep spec over the tiny MNIST of [`Workspace::write_tiny_mnist`]: base runs of
/// seeds 1 and 2 (2 epochs, batch 16, lr 0.05, on the CPU), their order, then each of
/// `remove_n` removed by the order (`keep_lowest_n` 0) and at random (-1), for
/// `removal_seeds`.
pub fn tiny_removal_sweep(name: &str, removal_seeds: &[u64], remove_n: &[u32]) -> String {
    let list = |values: Vec<String>| values.join(", ");
    let seeds = list(removal_seeds.iter().map(u64::to_string).collect());
    let remove_n = list(remove_n.iter().map(u32::to_string).collect());
    format!(
        r#"name = "{name}"
[train]
dataset = "mnist"
epochs = 2
batch_size = 16
lr = 0.05
device = "cpu"
no_download = true

[[stage]]
name = "base"
seeds = [1, 2]

[[stage]]
name = "order"
order = "base"

[[stage]]
name = "removal"
sorting = "order"
seeds = [{seeds}]
[stage.grid]
remove_n = [{remove_n}]
keep_lowest_n = [0, -1]
"#
    )
}

//! `fstream plot`: the paper's figures from a root, as PNG or SVG, each with the CSV of the
//! data it draws beside it.

use std::path::{Path, PathBuf};

use clap::Args;
use fstream::data::ImageSet;
use fstream::experiment::plan::DEFAULT_DATA_DIR;
use fstream::fidelity::Fidelity;
use fstream::plot::{
    Cell, Curve, DataMap, ExampleGrid, ForgettingHistogram, HistogramSeries, MapPoint,
    TrainingCurves, XyChart, XySeries, render,
};
use fstream::query::Catalog;
use fstream::query::compare::compare;
use fstream::query::figures::{
    data_map, extreme_examples, forgetting_histogram, label_noise, removal, seed_stability,
    training_curves,
};
use fstream::query::forgetting::OrderOptions;
use fstream::store::StagedFiles;
use fstream::store::output::{Input, check_output};
use polars::prelude::{CsvWriter, DataFrame, SerWriter};

use super::select::SelectArgs;

#[derive(Debug, Args)]
pub struct PlotArgs {
    /// The figure.
    #[arg(value_enum, value_name = "FIGURE")]
    figure: FigureArg,
    #[command(flatten)]
    select: SelectArgs,
    /// forgetting-histogram: one distribution per value of this runs column (e.g. no_dropout).
    #[arg(long, value_name = "COLUMN")]
    group_by: Option<String>,
    /// examples: where the dataset's files are (the images are read from there).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// examples: how many unforgettable and how many most-forgotten examples (1 to 1000).
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
    count: u16,
    /// Picture size in pixels.
    #[arg(long, value_name = "WxH", default_value = "1200x800", value_parser = parse_size)]
    size: (u32, u32),
    /// The picture (`.png` or `.svg`); its data go to the same name with `.csv`.
    #[arg(long, value_name = "FILE")]
    output: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FigureArg {
    /// Fraction of examples per forgetting count (the paper's Figure 1).
    ForgettingHistogram,
    /// The unforgettable and the most forgotten training images (Figure 2).
    Examples,
    /// Train and test accuracy per epoch, one line per run.
    TrainingCurves,
    /// Confidence against variability per example, coloured by correctness (cartography).
    DataMap,
    /// Per-run forgetting counts of noisy and clean examples (Figure 3).
    LabelNoise,
    /// One forgetting distribution per pixel-noise std (Supplementary Figure 11).
    PixelNoise,
    /// Each run's counts against the sum of the others', with Pearson and Spearman.
    SeedStability,
    /// Final test accuracy against examples removed, selected and random (Figures 5, 6).
    Removal,
    /// Final test accuracy against the removed window's first rank (Figure 5 right).
    RemovalWindow,
}

fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let parsed = text.split_once('x').and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)));
    match parsed {
        Some((w, h)) if (200..=8000).contains(&w) && (200..=8000).contains(&h) => Ok((w, h)),
        _ => Err(format!("{text:?}: expected WIDTHxHEIGHT in pixels, each 200..8000")),
    }
}

pub fn run(args: PlotArgs) -> anyhow::Result<()> {
    for path in [args.output.clone(), args.output.with_extension("csv")] {
        check_output("--output", &path, &[Input::Root(&args.select.input_dir)])?;
    }
    let catalog = Catalog::open(&args.select.input_dir)?;
    let options = args.select.options(&catalog, Fidelity::Corrected)?;
    let request = Request {
        figure: args.figure,
        options,
        group_by: args.group_by,
        data_dir: args.data_dir,
        count: usize::from(args.count),
        size: args.size,
    };
    let csv = draw(&catalog, &request, &args.output)?;
    log::info!("wrote {} and {}", args.output.display(), csv.display());
    println!("{}", args.output.display());
    Ok(())
}

/// One figure to draw.
#[derive(Debug, Clone)]
pub struct Request {
    /// Which figure.
    pub figure: FigureArg,
    /// The runs it draws.
    pub options: OrderOptions,
    /// forgetting-histogram: a runs column to group the runs by.
    pub group_by: Option<String>,
    /// examples: where the images are.
    pub data_dir: PathBuf,
    /// examples: how many of each kind.
    pub count: usize,
    /// Picture size in pixels.
    pub size: (u32, u32),
}

/// Draws `request` into `output` and writes its data beside it, as a pair (both files are
/// staged before either replaces an older one); returns the CSV's path.
///
/// # Errors
/// The figure's query errors; drawing and writing errors naming the file.
pub fn draw(catalog: &Catalog, request: &Request, output: &Path) -> anyhow::Result<PathBuf> {
    let options = &request.options;
    let dataset = options.dataset.clone();
    let size = request.size;
    let (mut frame, picture) = match request.figure {
        FigureArg::ForgettingHistogram | FigureArg::PixelNoise => {
            let group_by = match request.figure {
                FigureArg::PixelNoise => Some("noise_std_pixels"),
                _ => request.group_by.as_deref(),
            };
            let frame = forgetting_histogram(catalog, options, group_by)?;
            let title = format!("Forgetting events per example, {dataset}");
            let figure = histogram(&frame, title, "forgetting events (summed over runs)")?;
            let picture = render(&figure, output, size)?;
            (frame, picture)
        }
        FigureArg::LabelNoise => {
            let frame = label_noise(catalog, options)?;
            let title = format!("Forgetting of noisy and clean labels, {dataset}");
            let picture =
                render(&histogram(&frame, title, "forgetting events (per run)")?, output, size)?;
            (frame, picture)
        }
        FigureArg::SeedStability => {
            let frame = seed_stability(catalog, options)?;
            let picture = render(&stability(&frame, &dataset)?, output, size)?;
            (frame, picture)
        }
        FigureArg::Removal | FigureArg::RemovalWindow => {
            let window = request.figure == FigureArg::RemovalWindow;
            let frame = removal(catalog, options, window)?;
            let picture = render(&removal_chart(&frame, &dataset, window)?, output, size)?;
            (frame, picture)
        }
        FigureArg::TrainingCurves => {
            let frame = training_curves(catalog, options)?;
            let picture =
                render(&curves(&frame, format!("Accuracy per epoch, {dataset}"))?, output, size)?;
            (frame, picture)
        }
        FigureArg::DataMap => {
            let frame = data_map(catalog, options)?;
            let title = format!("Data map, {dataset} (Swayamdipta et al. 2020)");
            let picture = render(&map(&frame, title)?, output, size)?;
            (frame, picture)
        }
        FigureArg::Examples => {
            let (frame, images) =
                extreme_examples(catalog, options, request.count, &request.data_dir)?;
            let title = format!("Unforgettable and most forgotten examples, {dataset}");
            let picture = render(&grid(&frame, &images, title)?, output, size)?;
            (frame, picture)
        }
    };
    let csv = output.with_extension("csv");
    let mut table = Vec::new();
    CsvWriter::new(&mut table).include_header(true).finish(&mut frame)?;
    let mut files = StagedFiles::default();
    files.stage_bytes(output, &picture)?;
    files.stage_bytes(&csv, &table)?;
    files.commit()?;
    Ok(csv)
}

/// Consecutive rows with the same `key` (the frames are sorted by it), each group with its
/// `item`s: (key, items) in row order.
fn grouped<T>(
    frame: &DataFrame,
    key: &str,
    mut item: impl FnMut(usize) -> T,
) -> anyhow::Result<Vec<(String, Vec<T>)>> {
    let keys = frame.column(key)?.str()?;
    let mut groups: Vec<(String, Vec<T>)> = Vec::new();
    for i in 0..frame.height() {
        let name = keys.get(i).unwrap_or_default();
        if groups.last().is_none_or(|(last, _)| last != name) {
            groups.push((name.to_string(), Vec::new()));
        }
        groups.last_mut().expect("just pushed").1.push(item(i));
    }
    Ok(groups)
}

fn histogram(
    frame: &DataFrame,
    title: String,
    x_label: &str,
) -> anyhow::Result<ForgettingHistogram> {
    let examples = frame.column("examples")?.u64()?;
    let series = grouped(frame, "group", |i| examples.get(i).unwrap_or(0))?
        .into_iter()
        .map(|(name, examples)| HistogramSeries { name, examples })
        .collect();
    Ok(ForgettingHistogram { title, x_label: x_label.into(), series })
}

fn curves(frame: &DataFrame, title: String) -> anyhow::Result<TrainingCurves> {
    let epochs = frame.column("epoch")?.u32()?;
    let train = frame.column("train_acc")?.f64()?;
    let test = frame.column("test_acc")?.f64()?;
    let point = |i| {
        (
            epochs.get(i).unwrap_or(0),
            train.get(i).unwrap_or(f64::NAN),
            test.get(i).unwrap_or(f64::NAN),
        )
    };
    let curves = grouped(frame, "run_id", point)?
        .into_iter()
        .map(|(name, points)| Curve { name, points })
        .collect();
    Ok(TrainingCurves { title, curves })
}

fn map(frame: &DataFrame, title: String) -> anyhow::Result<DataMap> {
    let [confidence, variability, correctness] = ["confidence", "variability", "correctness"]
        .map(|name| frame.column(name).and_then(|c| c.f64().cloned()));
    let (confidence, variability, correctness) = (confidence?, variability?, correctness?);
    let points = (0..frame.height())
        .map(|i| MapPoint {
            variability: variability.get(i).unwrap_or(f64::NAN),
            confidence: confidence.get(i).unwrap_or(f64::NAN),
            correctness: correctness.get(i).unwrap_or(f64::NAN),
        })
        .collect();
    Ok(DataMap { title, points })
}

fn grid(frame: &DataFrame, images: &ImageSet, title: String) -> anyhow::Result<ExampleGrid> {
    let ids = frame.column("example_id")?.u32()?;
    let labels = frame.column("label")?.u32()?;
    let counts = frame.column("forgetting_count")?.u32()?;
    let cell = |i| {
        let id = ids.get(i).unwrap_or(0);
        let caption = vec![
            format!("#{id}, label {}", labels.get(i).unwrap_or(0)),
            super::counted(counts.get(i).unwrap_or(0) as usize, "event"),
        ];
        Cell {
            rgb: rgb_image(images, id as usize),
            size: (images.image_shape[2] as u32, images.image_shape[1] as u32),
            caption,
        }
    };
    Ok(ExampleGrid { title, rows: grouped(frame, "row", cell)? })
}

/// Image `index` of `images` as interleaved RGB (grey images in all three channels).
fn rgb_image(images: &ImageSet, index: usize) -> Vec<u8> {
    let [channels, height, width] = images.image_shape;
    let plane = height * width;
    let pixels = &images.pixels[index * images.image_len()..(index + 1) * images.image_len()];
    (0..plane).flat_map(|p| (0..3).map(move |c| pixels[(c % channels) * plane + p])).collect()
}

fn stability(frame: &DataFrame, dataset: &str) -> anyhow::Result<XyChart> {
    let own = frame.column("own")?.f64()?;
    let others = frame.column("others")?.f64()?;
    let point = |i| (own.get(i).unwrap_or(f64::NAN), others.get(i).unwrap_or(f64::NAN), 0.0);
    let series = grouped(frame, "run_id", point)?
        .into_iter()
        .map(|(run, points)| {
            let (a, b): (Vec<f64>, Vec<f64>) = points.iter().map(|p| (p.0, p.1)).unzip();
            let c = compare(&a, &b, 0);
            let name = format!("{run}: Pearson {:.3}, Spearman {:.3}", c.pearson, c.spearman);
            XySeries { name, points }
        })
        .collect();
    Ok(XyChart {
        title: format!("One run's forgetting counts against the other runs', {dataset}"),
        axes: ("forgetting events in the run".into(), "summed over the other runs".into()),
        lines: false,
        series,
    })
}

fn removal_chart(frame: &DataFrame, dataset: &str, window: bool) -> anyhow::Result<XyChart> {
    let x = frame.column("x")?.f64()?;
    let mean = frame.column("mean_test_acc")?.f64()?;
    let std = frame.column("std_test_acc")?.f64()?;
    let point = |i| {
        (x.get(i).unwrap_or(f64::NAN), mean.get(i).unwrap_or(f64::NAN), std.get(i).unwrap_or(0.0))
    };
    let series = grouped(frame, "removal", point)?
        .into_iter()
        .map(|(kind, points)| XySeries { name: format!("{kind} removal"), points })
        .collect();
    let x_axis = if window {
        "first rank of the removed window (keep_lowest_n)"
    } else {
        "examples removed"
    };
    Ok(XyChart {
        title: format!("Final test accuracy, mean ± 1 sd over seeds, {dataset}"),
        axes: (x_axis.into(), "test accuracy (fraction)".into()),
        lines: true,
        series,
    })
}

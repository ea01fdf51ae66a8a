//! `fstream report`: a static HTML page of a root: every figure that applies to it (drawn by
//! `fstream plot`'s code), the runs table, the unforgettable counts per dataset, and each
//! figure's CSV. No network, no server: `index.html` opens from disk in any browser.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;
use fstream::Error;
use fstream::experiment::plan::DEFAULT_DATA_DIR;
use fstream::query::forgetting::{OrderOptions, compute_order};
use fstream::query::{Catalog, sql_string};
use fstream::store::output::{Input, check_output};
use fstream::store::write_bytes_atomically;
use polars::prelude::{AnyValue, DataFrame};

use super::plot::{FigureArg, Request, draw};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Dataset root written by `fstream train`.
    #[arg(long, visible_alias = "input-dir", value_name = "DIR", default_value = "results")]
    root: PathBuf,
    /// Directory for index.html, the pictures and their CSVs.
    #[arg(long, value_name = "DIR")]
    output: PathBuf,
    /// Where the datasets' files are (for the pictures of examples; left out without them).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
}

/// Runs without removal or noise: what the forgetting figures of a dataset count.
const BASE_RUNS: &str = "remove_n = 0 AND noise_percent_labels = 0 AND noise_percent_pixels = 0";

/// Runs without noise, with or without removal.
const NOISELESS: &str = "noise_percent_labels = 0 AND noise_percent_pixels = 0";

/// A figure of the report: the runs it draws, and what some complete run must be for the
/// figure to apply (e.g. trained with removal).
struct Section {
    figure: FigureArg,
    runs: Option<&'static str>,
    applies_when: &'static str,
    heading: &'static str,
}

/// The figures a report tries per dataset.
const SECTIONS: [Section; 9] = [
    Section {
        figure: FigureArg::ForgettingHistogram,
        runs: Some(BASE_RUNS),
        applies_when: BASE_RUNS,
        heading: "Forgetting events per example (Figure 1)",
    },
    Section {
        figure: FigureArg::Examples,
        runs: Some(BASE_RUNS),
        applies_when: BASE_RUNS,
        heading: "Unforgettable and most forgotten examples (Figure 2)",
    },
    Section {
        figure: FigureArg::TrainingCurves,
        runs: None,
        applies_when: "TRUE",
        heading: "Accuracy per epoch",
    },
    Section {
        figure: FigureArg::DataMap,
        runs: Some(BASE_RUNS),
        applies_when: BASE_RUNS,
        heading: "Data map (dataset cartography)",
    },
    Section {
        figure: FigureArg::SeedStability,
        runs: Some(BASE_RUNS),
        applies_when: BASE_RUNS,
        heading: "Stability across seeds",
    },
    Section {
        figure: FigureArg::LabelNoise,
        runs: Some("noise_percent_labels > 0"),
        applies_when: "noise_percent_labels > 0",
        heading: "Label noise (Figure 3)",
    },
    Section {
        figure: FigureArg::PixelNoise,
        runs: Some("noise_percent_pixels > 0"),
        applies_when: "noise_percent_pixels > 0",
        heading: "Pixel noise (Supplementary Figure 11)",
    },
    Section {
        figure: FigureArg::Removal,
        runs: Some(NOISELESS),
        applies_when: "remove_n > 0",
        heading: "Removal (Figures 5 left and 6)",
    },
    Section {
        figure: FigureArg::RemovalWindow,
        runs: Some(NOISELESS),
        applies_when: "keep_lowest_n > 0",
        heading: "Removal window (Figure 5 right)",
    },
];

/// Whether some complete run of `dataset` satisfies `predicate`.
fn applies(catalog: &Catalog, dataset: &str, predicate: &str) -> anyhow::Result<bool> {
    let sql = format!(
        "SELECT COUNT(*) AS n FROM runs WHERE status = 'complete' AND dataset = {} AND ({predicate})",
        sql_string(dataset)
    );
    let frame = catalog.execute(&sql)?;
    Ok(frame.column("n")?.u32().map(|c| c.get(0).unwrap_or(0)).unwrap_or(0) > 0)
}

/// Whether `error` is an I/O failure (reading or writing a file), not a figure that does not
/// apply to the root.
fn is_io_failure(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| matches!(cause.downcast_ref::<Error>(), Some(Error::Io { .. })))
}

pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    let index = args.output.join("index.html");
    if args.output.exists() && !args.output.is_dir() {
        return Err(Error::Config(format!(
            "--output {}: exists and is not a directory; the report is a directory (index.html, the figures and their CSVs)",
            args.output.display()
        ))
        .into());
    }
    check_output("--output", &index, &[Input::Root(&args.root)])?;
    let catalog = Catalog::open(&args.root)?;
    std::fs::create_dir_all(&args.output).map_err(|e| Error::io(&args.output, e))?;
    let runs = catalog.execute(
        "SELECT r.run_id, r.dataset, r.seed, r.status, r.epochs_completed, r.epochs, r.remove_n, \
         r.keep_lowest_n, r.noise_percent_labels, r.noise_std_pixels, e.test_acc AS last_test_acc \
         FROM runs r LEFT JOIN epochs e ON e.run_id = r.run_id AND e.epoch = r.epochs_completed \
         ORDER BY r.dataset, r.run_id",
    )?;
    let mut datasets: Vec<String> =
        runs.column("dataset")?.str()?.iter().flatten().map(String::from).collect();
    datasets.dedup();
    // Every file the report may write is checked before the first is written.
    for dataset in &datasets {
        for section in &SECTIONS {
            let stem = format!("{dataset}-{}", figure_name(section.figure));
            for extension in ["png", "csv"] {
                let path = args.output.join(format!("{stem}.{extension}"));
                check_output("--output", &path, &[Input::Root(&args.root)])?;
            }
        }
    }
    let mut body = String::new();
    let mut left_out = Vec::new();
    let mut pictures = 0;
    for dataset in &datasets {
        let _ = writeln!(body, "<h2>{}</h2>", escape(dataset));
        let base = OrderOptions {
            dataset: dataset.clone(),
            where_sql: Some(BASE_RUNS.into()),
            ..OrderOptions::default()
        };
        match compute_order(&catalog, &base) {
            Ok(order) => {
                let presented = order.sorting.presented.iter().filter(|&&p| p).count();
                let _ = writeln!(
                    body,
                    "<p class=\"count\">Unforgettable examples: <b>{}</b> of {presented} ({:.1}%) across {} without removal or noise.</p>",
                    order.unforgettable,
                    100.0 * order.unforgettable as f64 / presented.max(1) as f64,
                    super::counted(order.sorting.runs.len(), "run")
                );
            }
            Err(e) => left_out.push(format!("{dataset}: unforgettable counts ({e})")),
        }
        for section in &SECTIONS {
            let heading = section.heading;
            if !applies(&catalog, dataset, section.applies_when)? {
                continue;
            }
            let stem = format!("{dataset}-{}", figure_name(section.figure));
            let request = Request {
                figure: section.figure,
                options: OrderOptions {
                    dataset: dataset.clone(),
                    where_sql: section.runs.map(String::from),
                    ..OrderOptions::default()
                },
                group_by: None,
                data_dir: args.data_dir.clone(),
                count: 10,
                size: (1200, 800),
            };
            match draw(&catalog, &request, &args.output.join(format!("{stem}.png"))) {
                Ok(_) => {
                    pictures += 1;
                    let _ = writeln!(
                        body,
                        "<figure><figcaption>{}</figcaption><img src=\"{stem}.png\" alt=\"{}\"><p><a href=\"{stem}.csv\">data ({stem}.csv)</a></p></figure>",
                        escape(heading),
                        escape(heading)
                    );
                }
                // A figure that cannot be written (a full disk) fails the report: the page
                // would replace a good one with one that leaves it out.
                Err(e) if is_io_failure(&e) => return Err(e),
                Err(e) => left_out.push(format!("{dataset}: {heading} ({})", first_line(&e))),
            }
        }
    }
    let page = page(&args.root.display().to_string(), &body, &runs_table(&runs), &left_out);
    write_bytes_atomically(&index, page.as_bytes())?;
    log::info!("{} figures, {} left out", pictures, left_out.len());
    println!("{}", index.display());
    Ok(())
}

/// The figure's command-line name (`forgetting-histogram`, …).
fn figure_name(figure: FigureArg) -> String {
    clap::ValueEnum::to_possible_value(&figure).map_or_else(String::new, |v| v.get_name().into())
}

fn first_line(error: &anyhow::Error) -> String {
    error.to_string().lines().next().unwrap_or_default().to_string()
}

/// The runs as an HTML table, every column of `runs`.
fn runs_table(runs: &DataFrame) -> String {
    let mut html = String::from("<table><tr>");
    for name in runs.get_column_names() {
        let _ = write!(html, "<th>{}</th>", escape(name));
    }
    html.push_str("</tr>\n");
    for i in 0..runs.height() {
        html.push_str("<tr>");
        for column in runs.columns() {
            let cell = match column.get(i) {
                Ok(AnyValue::Null) | Err(_) => String::new(),
                Ok(AnyValue::Float64(v)) => format!("{v:.4}"),
                Ok(v) => v.get_str().map_or_else(|| v.to_string(), String::from),
            };
            let _ = write!(html, "<td>{}</td>", escape(&cell));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>");
    html
}

/// The whole page. A script at load marks `body` with how many pictures loaded
/// (`data-images-loaded="k/n"`), for headless checks.
fn page(root: &str, figures: &str, runs: &str, left_out: &[String]) -> String {
    let left_out = if left_out.is_empty() {
        String::new()
    } else {
        let items: String = left_out.iter().map(|l| format!("<li>{}</li>", escape(l))).collect();
        format!("<h2>Not drawn</h2><ul class=\"left-out\">{items}</ul>")
    };
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>fstream report: {root}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
figure {{ margin: 2em 0; }} figcaption {{ font-weight: bold; margin-bottom: .5em; }}
img {{ max-width: 100%; border: 1px solid #ccc; }}
table {{ border-collapse: collapse; font-size: 90%; }} td, th {{ border: 1px solid #ccc; padding: 2px 6px; }}
</style></head>
<body>
<h1>fstream report</h1>
<p>Root: <code>{root}</code></p>
{figures}
<h2>Runs</h2>
{runs}
{left_out}
<script>
window.addEventListener("load", function () {{
  var images = document.images, loaded = 0;
  for (var i = 0; i < images.length; i++) {{ if (images[i].complete && images[i].naturalWidth > 0) loaded++; }}
  document.body.setAttribute("data-images-loaded", loaded + "/" + images.length);
}});
</script>
</body></html>
"#,
        root = escape(root)
    )
}

/// `text` with HTML's special characters escaped.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

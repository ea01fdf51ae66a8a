//! The chart figures: forgetting-count distributions (the paper's Figure 1), training
//! curves, and dataset cartography's data map.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::{Figure, colour};

/// Text sizes in pixels, for figures of about 1200 x 800.
const CAPTION: u32 = 30;
const LABELS: u32 = 22;
const AXIS_TITLE: u32 = 24;

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The charts here: both axes continuous.
type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Draws the legend of the chart's labelled series at `position`, text `size` pixels high.
fn draw_legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    position: SeriesLabelPosition,
    size: u32,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .label_font(("sans-serif", size))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(position)
        .draw()
        .map_err(text)
}

/// One distribution of forgetting counts.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSeries {
    /// The legend's name (a dataset, or a group of runs).
    pub name: String,
    /// Examples by forgetting count: `examples[c]` have count `c`.
    pub examples: Vec<u64>,
}

impl HistogramSeries {
    /// All examples of the series.
    pub fn total(&self) -> u64 {
        self.examples.iter().sum()
    }

    /// The fraction of examples with count `c`.
    pub fn fraction(&self, c: usize) -> f64 {
        self.examples.get(c).map_or(0.0, |&n| n as f64 / self.total().max(1) as f64)
    }
}

/// A tick label of an axis of whole numbers (counts, epochs): the number at whole positions,
/// nothing between them (a tick at 0.5 would read "0" or "1", and -0.4 "-0").
fn whole_number(x: &f64) -> String {
    let whole = x.round();
    if (x - whole).abs() < 1e-6 { format!("{}", whole as i64) } else { String::new() }
}

/// The fraction of examples per forgetting count, one bar per series and count.
#[derive(Debug, Clone, PartialEq)]
pub struct ForgettingHistogram {
    /// Title line.
    pub title: String,
    /// What the counts are (the x axis title).
    pub x_label: String,
    /// The distributions.
    pub series: Vec<HistogramSeries>,
}

impl Figure for ForgettingHistogram {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let max_count = self.series.iter().map(|s| s.examples.len()).max().unwrap_or(1).max(1);
        let max_fraction = (0..max_count)
            .flat_map(|c| self.series.iter().map(move |s| s.fraction(c)))
            .fold(0.0, f64::max);
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, ("sans-serif", CAPTION))
            .margin(20)
            .x_label_area_size(60)
            .y_label_area_size(90)
            .build_cartesian_2d(-0.5..max_count as f64 - 0.5, 0.0..(max_fraction * 1.1).max(0.01))
            .map_err(text)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc("fraction of examples")
            .axis_desc_style(("sans-serif", AXIS_TITLE))
            .label_style(("sans-serif", LABELS))
            .x_labels((max_count + 1).min(21))
            .x_label_formatter(&whole_number)
            .draw()
            .map_err(text)?;
        let width = 0.8 / self.series.len().max(1) as f64;
        for (i, series) in self.series.iter().enumerate() {
            let fill = colour(i).filled();
            let left = -0.4 + i as f64 * width;
            let bars = (0..series.examples.len()).map(|c| {
                let x = c as f64 + left;
                Rectangle::new([(x, 0.0), (x + width, series.fraction(c))], fill)
            });
            let unforgettable = 100.0 * series.fraction(0);
            chart
                .draw_series(bars)
                .map_err(text)?
                .label(format!("{} (unforgettable {unforgettable:.1}%)", series.name))
                .legend(move |(x, y)| Rectangle::new([(x, y - 8), (x + 16, y + 8)], fill));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight, LABELS)
    }
}

/// Accuracy per epoch of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// The legend's name (the run id).
    pub name: String,
    /// (epoch, train accuracy, test accuracy).
    pub points: Vec<(u32, f64, f64)>,
}

/// Train and test accuracy per epoch, one line per run, train on the left, test on the right.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingCurves {
    /// Title line.
    pub title: String,
    /// The runs.
    pub curves: Vec<Curve>,
}

impl Figure for TrainingCurves {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let (title, panels) = area.split_vertically(50);
        title.titled(&self.title, ("sans-serif", CAPTION)).map_err(text)?;
        let halves = panels.split_evenly((1, 2));
        let last_epoch = self.curves.iter().flat_map(|c| c.points.iter().map(|p| p.0)).max();
        let epochs = 1.0..f64::from(last_epoch.unwrap_or(1).max(2));
        let accuracies: Vec<f64> =
            self.curves.iter().flat_map(|c| c.points.iter().flat_map(|p| [p.1, p.2])).collect();
        let low = accuracies.iter().copied().filter(|a| a.is_finite()).fold(1.0, f64::min);
        let floor = ((low * 10.0).floor() / 10.0).clamp(0.0, 0.9);
        for (panel, (name, pick)) in halves.iter().zip([
            ("train accuracy (running, train mode)", 1usize),
            ("test accuracy (after the epoch)", 2),
        ]) {
            let mut chart = ChartBuilder::on(panel)
                .caption(name, ("sans-serif", AXIS_TITLE))
                .margin(15)
                .x_label_area_size(55)
                .y_label_area_size(80)
                .build_cartesian_2d(epochs.clone(), floor..1.0)
                .map_err(text)?;
            let whole_epochs = last_epoch.unwrap_or(1).clamp(2, 12) as usize;
            chart
                .configure_mesh()
                .x_labels(whole_epochs)
                .x_label_formatter(&whole_number)
                .x_desc("epoch")
                .y_desc("accuracy (fraction)")
                .axis_desc_style(("sans-serif", AXIS_TITLE))
                .label_style(("sans-serif", LABELS))
                .draw()
                .map_err(text)?;
            for (i, curve) in self.curves.iter().enumerate() {
                let style = colour(i).stroke_width(3);
                let points: Vec<(f64, f64)> = curve
                    .points
                    .iter()
                    .map(|p| (f64::from(p.0), if pick == 1 { p.1 } else { p.2 }))
                    .collect();
                chart.draw_series(LineSeries::new(points.clone(), style)).map_err(text)?;
                let marker = marker_series(i, points);
                chart
                    .draw_series(marker)
                    .map_err(text)?
                    .label(curve.name.clone())
                    .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
            }
            draw_legend(&mut chart, SeriesLabelPosition::LowerRight, LABELS - 4)?;
        }
        Ok(())
    }
}

/// Markers for series `i` (circles, triangles or crosses in turn, so lines are told apart
/// without colour).
fn marker_series<DB: DrawingBackend>(
    i: usize,
    points: Vec<(f64, f64)>,
) -> Vec<DynElement<'static, DB, (f64, f64)>> {
    let c = colour(i);
    points
        .into_iter()
        .map(|p| match i % 3 {
            0 => Circle::new(p, 5, c.filled()).into_dyn(),
            1 => TriangleMarker::new(p, 6, c.filled()).into_dyn(),
            _ => Cross::new(p, 5, c.stroke_width(2)).into_dyn(),
        })
        .collect()
}

/// One example on the data map.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MapPoint {
    /// Standard deviation of p(label) over presentations.
    pub variability: f64,
    /// Mean p(label).
    pub confidence: f64,
    /// Fraction of presentations classified correctly.
    pub correctness: f64,
}

/// Dataset cartography's data map (Swayamdipta et al. 2020): confidence against
/// variability, coloured by correctness in five bands.
#[derive(Debug, Clone, PartialEq)]
pub struct DataMap {
    /// Title line.
    pub title: String,
    /// The examples.
    pub points: Vec<MapPoint>,
}

/// The correctness bands of the data map's colours, as (upper bound, legend).
const BANDS: [(f64, &str); 5] = [
    (0.2, "correctness < 0.2"),
    (0.4, "0.2 - 0.4"),
    (0.6, "0.4 - 0.6"),
    (0.8, "0.6 - 0.8"),
    (f64::INFINITY, ">= 0.8"),
];

impl Figure for DataMap {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let max_variability = self.points.iter().map(|p| p.variability).fold(0.0, f64::max);
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, ("sans-serif", CAPTION))
            .margin(20)
            .x_label_area_size(60)
            .y_label_area_size(90)
            .build_cartesian_2d(0.0..(max_variability * 1.05).max(0.05), 0.0..1.0)
            .map_err(text)?;
        chart
            .configure_mesh()
            .x_desc("variability (std of p(label))")
            .y_desc("confidence (mean p(label))")
            .axis_desc_style(("sans-serif", AXIS_TITLE))
            .label_style(("sans-serif", LABELS))
            .draw()
            .map_err(text)?;
        let mut lower = f64::NEG_INFINITY;
        for (band, (upper, name)) in BANDS.iter().enumerate() {
            let in_band: Vec<(f64, f64)> = self
                .points
                .iter()
                .filter(|p| p.correctness >= lower && p.correctness < *upper)
                .map(|p| (p.variability, p.confidence))
                .collect();
            lower = *upper;
            let style = colour(band).mix(0.7).filled();
            chart
                .draw_series(in_band.into_iter().map(|p| Circle::new(p, 3, style)))
                .map_err(text)?
                .label(*name)
                .legend(move |(x, y)| Circle::new((x + 8, y), 6, style));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight, LABELS)
    }
}

/// One series of [`XyChart`]: points, and optionally a ±1 standard deviation band.
#[derive(Debug, Clone, PartialEq)]
pub struct XySeries {
    /// The legend's name.
    pub name: String,
    /// (x, y, standard deviation of y; 0 for none).
    pub points: Vec<(f64, f64, f64)>,
}

/// A chart of series of points: joined by lines (with their ±1 sd band) or scattered.
#[derive(Debug, Clone, PartialEq)]
pub struct XyChart {
    /// Title line.
    pub title: String,
    /// Axis titles (x, y).
    pub axes: (String, String),
    /// Join the points of a series by a line (else draw them as a scatter).
    pub lines: bool,
    /// The series.
    pub series: Vec<XySeries>,
}

impl Figure for XyChart {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let all = || self.series.iter().flat_map(|s| s.points.iter());
        let range = |values: Vec<f64>| {
            let (low, high) = values
                .iter()
                .filter(|v| v.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| (l.min(v), h.max(v)));
            let pad = ((high - low) * 0.05).max(1e-3);
            if low.is_finite() { (low - pad)..(high + pad) } else { 0.0..1.0 }
        };
        let xs = range(all().map(|p| p.0).collect());
        let ys = range(all().flat_map(|p| [p.1 - p.2, p.1 + p.2]).collect());
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, ("sans-serif", CAPTION))
            .margin(20)
            .x_label_area_size(60)
            .y_label_area_size(90)
            .build_cartesian_2d(xs, ys)
            .map_err(text)?;
        chart
            .configure_mesh()
            .x_label_formatter(&|x| {
                if x.fract() == 0.0 { format!("{x:.0}") } else { format!("{x}") }
            })
            .x_desc(self.axes.0.as_str())
            .y_desc(self.axes.1.as_str())
            .axis_desc_style(("sans-serif", AXIS_TITLE))
            .label_style(("sans-serif", LABELS))
            .draw()
            .map_err(text)?;
        for (i, series) in self.series.iter().enumerate() {
            let c = colour(i);
            let points: Vec<(f64, f64)> = series.points.iter().map(|p| (p.0, p.1)).collect();
            if self.lines {
                if series.points.iter().any(|p| p.2 > 0.0) {
                    let upper = series.points.iter().map(|p| (p.0, p.1 + p.2));
                    let lower = series.points.iter().rev().map(|p| (p.0, p.1 - p.2));
                    let band: Vec<(f64, f64)> = upper.chain(lower).collect();
                    chart.draw_series([Polygon::new(band, c.mix(0.2).filled())]).map_err(text)?;
                }
                chart
                    .draw_series(LineSeries::new(points.clone(), c.stroke_width(3)))
                    .map_err(text)?;
            }
            let markers = marker_series(i, points);
            chart
                .draw_series(markers)
                .map_err(text)?
                .label(series.name.clone())
                .legend(move |(x, y)| Circle::new((x + 8, y), 6, c.filled()));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight, LABELS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_number_axes_label_only_whole_positions() {
        let labels: Vec<String> =
            [-0.4, 0.0, 0.5, 1.0, 2.0000001, 3.7].iter().map(whole_number).collect();
        assert_eq!(labels, ["", "0", "", "1", "2", ""]);
    }
}

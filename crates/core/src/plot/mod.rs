//! Drawing the paper's figures with plotters, as PNG or SVG by the output's extension. The
//! figures' data come from `query::figures`; here they are only drawn. Text uses DejaVu Sans,
//! embedded in the binary (`assets/fonts`), so a picture looks the same on every machine; the
//! colours are the Okabe-Ito palette, told apart with colour blindness and, by their
//! lightness and the markers, in greyscale.

mod charts;
mod examples;

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

pub use charts::{
    Curve, DataMap, ForgettingHistogram, HistogramSeries, MapPoint, TrainingCurves, XyChart,
    XySeries,
};
pub use examples::{Cell, ExampleGrid};

use crate::error::{Error, Result};

/// The embedded font, registered as plotters' "sans-serif".
static FONT: &[u8] = include_bytes!("../../../../assets/fonts/DejaVuSans.ttf");

/// Okabe & Ito's colour-blind-safe palette, darkest first after black.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(230, 159, 0),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
];

/// The colour of series `i`.
pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// A figure that can draw itself on any plotters backend.
pub trait Figure {
    /// Draws the whole figure on `area`.
    ///
    /// # Errors
    /// The backend's drawing errors, as text.
    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String>;
}

/// Registers the embedded font with plotters, once per process.
fn register_font() {
    static REGISTERED: OnceLock<()> = OnceLock::new();
    REGISTERED.get_or_init(|| {
        let registered = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
        assert!(registered.is_ok(), "the embedded DejaVu Sans parses");
    });
}

/// Draws `figure` into `path` (`.png` or `.svg`) at `size` pixels, atomically: written under
/// a temporary name, then renamed into place.
///
/// # Errors
/// [`Error::Config`] for another extension; [`Error::Format`] naming the file when drawing
/// fails; [`Error::Io`] when it cannot be written.
pub fn render(figure: &impl Figure, path: &Path, size: (u32, u32)) -> Result<()> {
    register_font();
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let temporary = dir.join(format!(".{name}.{}.tmp.{extension}", std::process::id()));
    let drawn = match extension {
        "png" => {
            let root = BitMapBackend::new(&temporary, size).into_drawing_area();
            draw_and_present(figure, &root)
        }
        "svg" => {
            let root = SVGBackend::new(&temporary, size).into_drawing_area();
            draw_and_present(figure, &root)
        }
        other => {
            return Err(Error::Config(format!(
                "--output {}: expected a .png or .svg file, not .{other}",
                path.display()
            )));
        }
    };
    let committed = drawn
        .map_err(|reason| Error::format(path, format!("drawing failed: {reason}")))
        .and_then(|()| crate::store::rename_durably(&temporary, path));
    if committed.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    committed
}

fn draw_and_present<DB: DrawingBackend>(
    figure: &impl Figure,
    root: &DrawingArea<DB, Shift>,
) -> std::result::Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    figure.draw(root)?;
    root.present().map_err(|e| e.to_string())
}

//! Drawing the paper's figures with plotters, as PNG or SVG by the output's extension. The
//! figures' data come from `query::figures`; here they are only drawn. Text uses DejaVu Sans,
//! embedded in the binary (`assets/fonts`), so a picture looks the same on every machine; the
//! colours are the Okabe-Ito palette, told apart with colour blindness and, by their
//! lightness and the markers, in greyscale.

mod charts;
mod examples;

use std::path::Path;
use std::sync::OnceLock;

use image::ImageEncoder as _;
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

/// Draws `figure` at `size` pixels as the contents of `path`: PNG or SVG by its extension.
/// Nothing is written: the caller commits the bytes (with the figure's CSV, as a pair).
///
/// # Errors
/// [`Error::Config`] for another extension; [`Error::Format`] naming the file when drawing
/// or encoding fails.
pub fn render(figure: &impl Figure, path: &Path, size: (u32, u32)) -> Result<Vec<u8>> {
    register_font();
    let failed = |reason: String| Error::format(path, format!("drawing failed: {reason}"));
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "png" => {
            let (width, height) = size;
            let mut pixels = vec![0u8; width as usize * height as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut pixels, size).into_drawing_area();
                draw_and_present(figure, &root).map_err(failed)?;
            }
            let mut png = Vec::new();
            image::codecs::png::PngEncoder::new(&mut png)
                .write_image(&pixels, width, height, image::ColorType::Rgb8)
                .map_err(|e| failed(e.to_string()))?;
            Ok(png)
        }
        "svg" => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
                draw_and_present(figure, &root).map_err(failed)?;
            }
            Ok(svg.into_bytes())
        }
        _ => Err(Error::Config(format!(
            "--output {}: expected a file name ending in .png or .svg",
            path.display()
        ))),
    }
}

fn draw_and_present<DB: DrawingBackend>(
    figure: &impl Figure,
    root: &DrawingArea<DB, Shift>,
) -> std::result::Result<(), String> {
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    figure.draw(root)?;
    root.present().map_err(|e| e.to_string())
}

//! A grid of the training images themselves (the paper's Figure 2): rows of examples, each
//! captioned, e.g. the unforgettable ones above the most forgotten.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::Figure;

/// One image with its caption.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// RGB pixels, row by row (grey images repeat their value in all three channels).
    pub rgb: Vec<u8>,
    /// Image width and height in pixels.
    pub size: (u32, u32),
    /// The caption under the image, one string per line.
    pub caption: Vec<String>,
}

/// Rows of captioned images under row titles.
#[derive(Debug, Clone, PartialEq)]
pub struct ExampleGrid {
    /// Title line.
    pub title: String,
    /// (row title, images).
    pub rows: Vec<(String, Vec<Cell>)>,
}

/// Caption and row-title heights in pixels.
const CAPTION_HEIGHT: u32 = 36;
const ROW_TITLE_HEIGHT: u32 = 40;

impl Figure for ExampleGrid {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let (title, body) = area.split_vertically(60);
        title.titled(&self.title, ("sans-serif", 30)).map_err(|e| e.to_string())?;
        let rows = body.split_evenly((self.rows.len().max(1), 1));
        for ((name, cells), row) in self.rows.iter().zip(&rows) {
            let (heading, images) = row.split_vertically(ROW_TITLE_HEIGHT);
            heading.titled(name, ("sans-serif", 24)).map_err(|e| e.to_string())?;
            let (width, height) = images.dim_in_pixel();
            let columns = cells.len().max(1) as u32;
            let cell_width = width / columns;
            let room =
                (cell_width.saturating_sub(8)).min(height.saturating_sub(CAPTION_HEIGHT + 8));
            for (i, cell) in cells.iter().enumerate() {
                let scale = (room / cell.size.0.max(cell.size.1).max(1)).max(1);
                let (w, h) = (cell.size.0 * scale, cell.size.1 * scale);
                let x = (i as u32 * cell_width + (cell_width - w) / 2) as i32;
                let image = BitMapElement::with_owned_buffer((x, 4), (w, h), upscaled(cell, scale))
                    .ok_or("an image buffer of the wrong size")?;
                images.draw(&image).map_err(|e| e.to_string())?;
                for (line, text) in cell.caption.iter().enumerate() {
                    let y = h + 8 + line as u32 * (CAPTION_HEIGHT / 2 + 4);
                    let position = (x, y as i32);
                    let caption = Text::new(text.clone(), position, ("sans-serif", 15));
                    images.draw(&caption).map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(())
    }
}

/// The cell's pixels, each repeated `scale` times in both directions (nearest neighbour: the
/// pixels stay visible, as the paper shows them).
fn upscaled(cell: &Cell, scale: u32) -> Vec<u8> {
    let (w, h) = (cell.size.0 as usize, cell.size.1 as usize);
    let scale = scale as usize;
    let mut out = Vec::with_capacity(w * h * 3 * scale * scale);
    for y in 0..h * scale {
        for x in 0..w * scale {
            let pixel = ((y / scale) * w + x / scale) * 3;
            out.extend_from_slice(&cell.rgb[pixel..pixel + 3]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upscaling_repeats_pixels() {
        let cell = Cell { rgb: vec![1, 1, 1, 2, 2, 2], size: (2, 1), caption: Vec::new() };
        assert_eq!(upscaled(&cell, 2), [[1u8; 6], [2; 6], [1; 6], [2; 6]].concat());
    }
}

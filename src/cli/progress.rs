//! Progress display: one `indicatif` bar per run (or per download) on stderr, shown only when
//! stderr is a terminal and `--progress never`/`-q` is not given.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{
    HumanCount, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle,
};

/// The bars currently drawn, so the logger can print above them.
static BARS: Mutex<Option<MultiProgress>> = Mutex::new(None);

/// When to draw progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressMode {
    /// When stderr is a terminal.
    Auto,
    /// Never.
    Never,
}

/// A set of bars that is removed from the screen when dropped.
pub struct Bars {
    multi: Option<MultiProgress>,
}

impl Bars {
    /// Starts a set of bars (hidden unless `mode` allows and stderr is a terminal).
    pub fn new(mode: ProgressMode, quiet: bool) -> Bars {
        let visible = mode == ProgressMode::Auto && !quiet && std::io::stderr().is_terminal();
        let multi = visible.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        *BARS.lock().unwrap_or_else(|p| p.into_inner()) = multi.clone();
        Bars { multi }
    }

    /// Adds a bar of `len` steps with `prefix` in front; `unit` names what is counted.
    pub fn add(&self, prefix: String, len: u64, unit: &str) -> ProgressBar {
        let Some(multi) = &self.multi else { return ProgressBar::hidden() };
        let template =
            format!("{{prefix}} [{{bar:30}}] {{human_pos}}/{{human_len}} {unit} {{rate}} {{msg}}");
        let style = ProgressStyle::with_template(&template)
            .expect("the template is a constant")
            .with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}/s", HumanCount(state.per_sec() as u64));
            })
            .progress_chars("=> ");
        multi.add(ProgressBar::new(len).with_style(style).with_prefix(prefix))
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        if let Some(multi) = self.multi.take() {
            let _ = multi.clear();
        }
        *BARS.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// Prints a line on stderr, above the bars when they are shown.
pub fn println_above_bars(line: &str) {
    match BARS.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
        Some(multi) => multi.suspend(|| eprintln!("{line}")),
        None => eprintln!("{line}"),
    }
}

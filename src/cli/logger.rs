//! A small logger for the `log` facade: messages go to stderr as `fstream: …`, and are drawn
//! above the progress bars when bars are shown, so the two never garble each other.

use log::{Level, LevelFilter, Log, Metadata, Record};

use super::progress;

struct Logger;

static LOGGER: Logger = Logger;

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("fstream")
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = match record.level() {
            Level::Error => format!("fstream: error: {}", record.args()),
            Level::Warn => format!("fstream: warning: {}", record.args()),
            _ => format!("fstream: {}", record.args()),
        };
        progress::println_above_bars(&line);
    }

    fn flush(&self) {}
}

/// Installs the logger: `-q` shows warnings and errors only, `-v` debug, `-vv` trace.
pub fn init(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => LevelFilter::Warn,
        (false, 0) => LevelFilter::Info,
        (false, 1) => LevelFilter::Debug,
        (false, _) => LevelFilter::Trace,
    };
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}

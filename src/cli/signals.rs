//! Stopping cleanly on SIGINT and SIGTERM: `fstream train` stops its runs after the current
//! batch, `fstream sweep run` stops its child processes; a second signal exits at once.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// Set by the first SIGINT or SIGTERM: every run stops after its current batch.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// The signal that stopped the runs (0: none).
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);

/// The signal that interrupted training, if one did (for the exit code, 128 + signal).
pub fn stop_signal() -> Option<i32> {
    Some(STOP_SIGNAL.load(Ordering::SeqCst)).filter(|&s| s != 0)
}

/// First SIGINT (Ctrl-C) or SIGTERM (`timeout`, Slurm, `docker stop`): stop the runs cleanly
/// (marked failed, resumable). Second: exit at once, which is safe too, since every file is
/// committed atomically. (A plain `libc` handler: the `ctrlc` crate would change shared
/// dependency features and force a full polars rebuild.)
pub fn install_stop_handlers() {
    extern "C" fn on_signal(signal: libc::c_int) {
        if INTERRUPTED.swap(true, Ordering::SeqCst) {
            // SAFETY: _exit is async-signal-safe.
            unsafe { libc::_exit(128 + signal) };
        }
        STOP_SIGNAL.store(signal, Ordering::SeqCst);
    }
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only touches atomics and calls _exit, all async-signal-safe.
        unsafe { libc::signal(signal, on_signal as *const () as libc::sighandler_t) };
    }
}

/// Whether a stop signal arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

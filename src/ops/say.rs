//! Step-by-step progress lines for the operator, on stderr (stdout is the runbook's own output).

use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// One line of progress: `==> moving 1366 slots 127.0.0.1:6397 → 127.0.0.1:6391`.
pub fn say(msg: &str) {
    if !quiet() {
        let line = format!("==> {msg}");
        if !super::progress::above_bar(&line) {
            eprintln!("{line}");
        }
    }
}

/// A `say` at most once per period, so that a long wait tells what it waits for without
/// flooding the terminal.
pub struct Every {
    period: std::time::Duration,
    last: std::time::Instant,
}

impl Every {
    pub fn new(period: std::time::Duration) -> Self {
        Self { period, last: std::time::Instant::now() }
    }

    pub fn say(&mut self, msg: impl FnOnce() -> String) {
        if self.last.elapsed() >= self.period {
            say(&msg());
            self.last = std::time::Instant::now();
        }
    }
}

//! Step-by-step progress lines for the operator, on stderr (stdout is the runbook's own output),
//! printed above the progress bar when one is drawn (`progress` draws it, this prints around it).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::ProgressBar;

static QUIET: AtomicBool = AtomicBool::new(false);

/// The bar being drawn, if any, so lines are printed above it, never through it.
static BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// The bar now drawn (`None`: none any more).
pub fn show_bar(bar: Option<ProgressBar>) {
    *BAR.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = bar;
}

/// Prints a line without tearing the bar; false when no bar is drawn.
fn above_bar(line: &str) -> bool {
    let bar = BAR.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    match bar.as_ref() {
        Some(b) => {
            b.suspend(|| eprintln!("{line}"));
            true
        }
        None => false,
    }
}

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
        if !above_bar(&line) {
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

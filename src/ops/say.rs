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

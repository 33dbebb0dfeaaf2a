//! What the operator sees of a command besides a runbook's own output: progress lines on stderr,
//! printed above the progress bar when one is drawn, and `--json` events on stdout. One per
//! command, made by `run` and handed down (procedures reach it through `Cluster::out`), so
//! nothing about it is process-wide.

use std::io::Write;
use std::sync::Mutex;

use indicatif::ProgressBar;
use serde_json::{Value, json};

#[derive(Debug, Default)]
pub struct Output {
    /// `--quiet`: no progress lines (errors and the runbook's own output still show).
    quiet: bool,
    /// `--json`: one JSON object per line on stdout for automation; each carries `event`, `ts`.
    json: bool,
    /// The bar being drawn, if any, so lines are printed above it, never through it.
    bar: Mutex<Option<ProgressBar>>,
}

impl Output {
    pub fn new(quiet: bool, json: bool) -> Self {
        Self { quiet, json, bar: Mutex::new(None) }
    }

    pub fn quiet(&self) -> bool {
        self.quiet
    }

    pub fn json(&self) -> bool {
        self.json
    }

    /// Colour in what a runbook prints: with `--json` prints go to stderr, among the log lines,
    /// and are plain, as the dry run's reports there are.
    pub fn colour_prints(&self) -> bool {
        !self.json && colour_stdout()
    }

    /// The bar now drawn (`None`: none any more).
    pub fn show_bar(&self, bar: Option<ProgressBar>) {
        *self.bar.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = bar;
    }

    /// One line of progress: `==> moving 1366 slots 127.0.0.1:6397 → 127.0.0.1:6391`.
    pub fn say(&self, msg: &str) {
        if self.quiet {
            return;
        }
        let line = format!("==> {msg}");
        let bar = self.bar.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match bar.as_ref() {
            Some(b) => b.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }

    /// Writes one event line to stdout, when `--json` is on: steps, gate results, slot batches
    /// moved, nodes forgotten and removed, errors.
    pub fn emit(&self, event: &str, mut fields: Value) {
        if !self.json {
            return;
        }
        if !fields.is_object() {
            fields = json!({});
        }
        fields["event"] = json!(event);
        fields["ts"] = json!(crate::holder::now());
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{fields}");
        let _ = out.flush();
    }
}

/// Colour on stdout: a terminal, and no `NO_COLOR` (https://no-color.org: set and not empty).
pub fn colour_stdout() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
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

    pub fn say(&mut self, out: &Output, msg: impl FnOnce() -> String) {
        if self.last.elapsed() >= self.period {
            out.say(&msg());
            self.last = std::time::Instant::now();
        }
    }
}

//! `--json`: one JSON object per line on stdout for automation — steps, gate results, slot
//! batches moved, nodes forgotten and removed, errors — while everything for humans goes to
//! stderr. Off by default; each event carries `event` and `ts`.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

static JSON: AtomicBool = AtomicBool::new(false);

pub fn set_json(on: bool) {
    JSON.store(on, Ordering::Relaxed);
}

pub fn json() -> bool {
    JSON.load(Ordering::Relaxed)
}

/// Writes one event line to stdout, when `--json` is on.
pub fn emit(event: &str, mut fields: Value) {
    if !json() {
        return;
    }
    if !fields.is_object() {
        fields = json!({});
    }
    fields["event"] = json!(event);
    fields["ts"] = json!(crate::journal::now());
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{fields}");
    let _ = out.flush();
}

//! Crash points for tests: `RUNBOOK_FAILPOINT=name` (or `name:N` for the N-th time) makes the
//! process abort right there, as a SIGKILL or power loss would, so tests can prove that running
//! the same command again finishes the job. Unset, a point costs one comparison.

use std::sync::atomic::{AtomicU64, Ordering};

/// The armed point and how often it was reached, counted by the connection that owns this (one
/// per run), never process-wide.
#[derive(Debug, Default)]
pub struct Failpoints {
    armed: Option<(String, u64)>,
    hits: AtomicU64,
}

impl Failpoints {
    pub fn from_env() -> Self {
        let armed = std::env::var("RUNBOOK_FAILPOINT").ok().map(|spec| match spec.split_once(':') {
            Some((p, n)) => (p.to_string(), n.parse().unwrap_or(1)),
            None => (spec, 1),
        });
        Self { armed, hits: AtomicU64::new(0) }
    }

    pub fn hit(&self, name: &str) {
        let Some((point, nth)) = &self.armed else { return };
        if point == name && self.hits.fetch_add(1, Ordering::SeqCst) + 1 == *nth {
            eprintln!("failpoint {name}: aborting");
            std::process::abort();
        }
    }
}

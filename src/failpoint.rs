//! Crash points for tests: `RUNBOOK_FAILPOINT=name` (or `name:N` for the N-th time) makes the
//! process abort right there, as a SIGKILL or power loss would, so tests can prove that running
//! the same command again finishes the job. Unset, it costs one environment lookup per point.

use std::sync::atomic::{AtomicU64, Ordering};

static HITS: AtomicU64 = AtomicU64::new(0);

pub fn hit(name: &str) {
    let Ok(spec) = std::env::var("RUNBOOK_FAILPOINT") else { return };
    let (point, nth) = spec.split_once(':').map_or((spec.as_str(), 1), |(p, n)| (p, n.parse().unwrap_or(1)));
    if point == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == nth {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}

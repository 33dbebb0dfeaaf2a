//! Progress of a slot move: a bar on a terminal (slots, keys, bytes, rate, ETA), one line per
//! batch otherwise. `say` lines are printed above the bar, never through it.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::cluster::MoveStats;
use crate::output::Output;

pub struct Progress<'a> {
    out: &'a Output,
    bar: Option<ProgressBar>,
    total_keys: Option<u64>,
    done: MoveStats,
    started: Instant,
}

impl<'a> Progress<'a> {
    pub fn new(out: &'a Output, total_slots: usize, total_keys: Option<u64>) -> Self {
        let bar = (std::io::stderr().is_terminal() && !out.quiet() && total_slots > 0).then(|| {
            let b = ProgressBar::with_draw_target(Some(total_slots as u64), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template("{spinner} moving [{bar:28}] {pos}/{len} slots  {msg}  ETA {eta}")
                    .expect("a valid template")
                    .progress_chars("=> "),
            );
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        out.show_bar(bar.clone());
        Self { out, bar, total_keys, done: MoveStats::default(), started: Instant::now() }
    }

    /// A batch is about to move.
    pub fn starting(&self, what: &str) {
        if self.bar.is_none() {
            self.out.say(what);
        }
    }

    /// A batch moved.
    pub fn moved(&mut self, stats: MoveStats) {
        self.done += stats;
        if let Some(b) = &self.bar {
            b.inc(stats.slots as u64);
            let secs = self.started.elapsed().as_secs_f64().max(0.001);
            let keys = match self.total_keys {
                Some(t) => format!("{}/{t} keys", self.done.keys),
                None => format!("{} keys", self.done.keys),
            };
            let bytes = if self.done.bytes > 0 {
                format!(", ~{}", super::bytes::human_bytes(self.done.bytes))
            } else {
                String::new()
            };
            b.set_message(format!("{keys}{bytes}, {:.0} keys/s", self.done.keys as f64 / secs));
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        self.out.show_bar(None);
    }
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        self.finish();
    }
}

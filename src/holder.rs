//! Who runs: the identity of a `runbook` process (host, pid, runbook, start, run id) as the
//! lease and the journal lock name it, and how a time is shown to operators.

/// Who holds a lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    pub runbook: String,
    pub started: u64,
    pub run: String,
}

impl Holder {
    pub fn me(runbook: &str, run: &str) -> Self {
        let host =
            std::fs::read_to_string("/proc/sys/kernel/hostname").map(|s| s.trim().to_string()).unwrap_or_default();
        let started = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        Holder { host, pid: std::process::id(), runbook: runbook.to_string(), started, run: run.to_string() }
    }
    pub fn describe(&self) -> String {
        format!("runbook `{}` (pid {} on {}, started {})", self.runbook, self.pid, self.host, unix_time(self.started))
    }
}

/// Seconds since the epoch, as journals and `--json` events stamp them.
pub fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

pub fn unix_time(secs: u64) -> String {
    let (d, s) = (secs / 86400, secs % 86400);
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = d as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC", s / 3600, s % 3600 / 60, s % 60)
}

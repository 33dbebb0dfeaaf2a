//! The functions of the run itself rather than of a cluster: which cluster to work on, asking the
//! operator, stopping on bad input, waiting. None is a primitive, so none is journaled.

use std::sync::Arc;
use std::time::Duration;

use super::err;
use crate::error::Error;
use crate::script::options::{MAX_SLEEP_SECS, wait_secs};
use crate::script::primitive::Registrar;
use crate::script::session::Session;
use crate::script::types::{ClusterHandle, RhaiResult, rhai_err};

pub(super) fn register(r: &mut Registrar<'_>, session: &Arc<Session>) {
    let s = session.clone();
    r.function(
        "cluster",
        [],
        "The cluster named by --cluster or RUNBOOK_CLUSTER.",
        move || -> RhaiResult<ClusterHandle> { s.cluster(None).map_err(rhai_err) },
    );
    let s = session.clone();
    r.function(
        "cluster",
        ["addr"],
        "The cluster that `addr` (host:port of any node) belongs to.",
        move |addr: &str| -> RhaiResult<ClusterHandle> { s.cluster(Some(addr)).map_err(rhai_err) },
    );
    let s = session.clone();
    r.function(
        "confirm",
        ["question"],
        "Asks a yes/no question; --yes answers yes; with no terminal and no --yes the run stops (exit 5).",
        move |q: &str| -> RhaiResult<bool> { s.confirm(q).map_err(rhai_err) },
    );
    r.function(
        "fail_input",
        ["message"],
        "Stops the run because its input is wrong: exit 2 and the message, before anything changed (exit 1, saying so, after).",
        |message: &str| -> RhaiResult<()> { err(fail_input(message)) },
    );
    let s = session.clone();
    r.function(
        "sleep",
        ["secs"],
        "Waits `secs` seconds, 0 to 86400 (Ctrl-C interrupts).",
        move |secs: f64| -> RhaiResult<()> { sleep(&s, secs) },
    );
    let s = session.clone();
    r.function(
        "sleep",
        ["secs"],
        "Waits `secs` seconds, 0 to 86400 (Ctrl-C interrupts).",
        move |secs: i64| -> RhaiResult<()> {
            // Checked as an integer first: a huge one would print rounded as a float.
            if !(0..=MAX_SLEEP_SECS as i64).contains(&secs) {
                return err(Error::usage(
                    format!("sleep({secs}): seconds must be a number from 0 to {MAX_SLEEP_SECS} (one day)"),
                    Some("give the wait in seconds, e.g. sleep(0.5) or sleep(30)"),
                ));
            }
            sleep(&s, secs as f64)
        },
    );
}

/// A runbook's own input check failed: bad input (exit 2) while the run has changed nothing, a
/// failed step (exit 1) once it has; the run's end decides which (`Error::after_changes`).
fn fail_input(message: &str) -> Error {
    Error::usage(message, Some("correct the parameters and run the same command again"))
}

fn sleep(s: &Session, secs: f64) -> RhaiResult<()> {
    let until = std::time::Instant::now() + wait_secs(secs, "sleep").map_err(rhai_err)?;
    while std::time::Instant::now() < until {
        if s.cancelled() {
            return err(Error::Cancelled);
        }
        std::thread::sleep(Duration::from_millis(20).min(until.saturating_duration_since(std::time::Instant::now())));
    }
    Ok(())
}

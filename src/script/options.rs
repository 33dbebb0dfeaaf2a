//! The option maps of primitives (`apply`, `migrate_slot`, `rebalance`, `del_node`, waits) read
//! into typed options: an unknown key or a bad value is refused at the call, naming the key.

use std::time::Duration;

use rhai::{Dynamic, Map};

use crate::error::Error;
use crate::model::{Topology, select};
use crate::ops::{Cluster, DelNodeOpts, MoveOpts, ReplicaPolicy, Retire};
use crate::plan::RebalanceOpts;

pub(super) fn number(v: &Dynamic, what: &str) -> Result<f64, Error> {
    let n = v
        .as_float()
        .or_else(|_| v.as_int().map(|i| i as f64))
        .map_err(|_| Error::usage(format!("`{what}` must be a number, not {}", v.type_name()), None))?;
    // NaN and infinities pass every range check written as a comparison, and panic in Duration.
    if !n.is_finite() {
        return Err(Error::usage(format!("`{what}` must be a finite number, not {n}"), None));
    }
    Ok(n)
}

pub(super) fn boolean(v: &Dynamic, what: &str) -> Result<bool, Error> {
    v.as_bool().map_err(|_| Error::usage(format!("`{what}` must be true or false, not {}", v.type_name()), None))
}

pub(super) fn check_keys(opts: &Map, accepted: &[&str], what: &str) -> Result<(), Error> {
    for k in opts.keys() {
        if !accepted.contains(&k.as_str()) {
            return Err(Error::usage(
                format!("unknown option `{k}` for {what}"),
                Some(&format!("{what} accepts: {}", accepted.join(", "))),
            ));
        }
    }
    Ok(())
}

pub(super) const MOVE_KEYS: &[&str] = &["pipeline", "timeout", "replace", "batch", "rate_limit", "max_pause"];

/// `pipeline` (keys per MIGRATE), `timeout` (ms), `replace`, `batch` (slots open at once).
pub(super) fn move_opts(opts: &Map) -> Result<MoveOpts, Error> {
    let mut m = MoveOpts::default();
    if let Some(n) = number_in(opts, "pipeline", 1.0..=100_000.0, "keys per MIGRATE, 1 to 100000")? {
        m.keys_per_migrate = n as usize;
    }
    if let Some(ms) = number_in(opts, "timeout", 1.0..=f64::MAX, "milliseconds, at least 1")? {
        m.timeout = Duration::from_millis(ms as u64);
    }
    if let Some(v) = opts.get("replace") {
        m.replace = boolean(v, "replace")?;
    }
    if let Some(n) = number_in(opts, "batch", 1.0..=16384.0, "slots open at once, 1 to 16384")? {
        m.slots_per_batch = n as usize;
    }
    if let Some(n) = number_in(opts, "rate_limit", 1.0..=f64::MAX, "keys per second, at least 1")? {
        m.rate_limit = Some(n as u64);
    }
    if let Some(ms) = number_in(opts, "max_pause", 0.0..=10_000.0, "milliseconds, 0 (no budget) to 10000")? {
        m.max_pause = Some(Duration::from_secs_f64(ms / 1000.0));
    }
    Ok(m)
}

/// The number under `key`, if given, refused outside `range` (`what` says what it counts and
/// its bounds, for the message).
fn number_in(opts: &Map, key: &str, range: std::ops::RangeInclusive<f64>, what: &str) -> Result<Option<f64>, Error> {
    let Some(v) = opts.get(key) else { return Ok(None) };
    let n = number(v, key)?;
    if !range.contains(&n) {
        return Err(Error::usage(format!("{key} {n} is out of range: {what}"), None));
    }
    Ok(Some(n))
}

pub(super) fn rebalance_opts(
    c: &dyn Cluster,
    topo: &Topology,
    opts: &Map,
) -> Result<(RebalanceOpts, MoveOpts, bool), Error> {
    const KEYS: &[&str] = &[
        "rate_limit",
        "weights",
        "auto_weights",
        "use_empty_masters",
        "threshold",
        "simulate",
        "pipeline",
        "timeout",
        "replace",
        "batch",
        "max_pause",
    ];
    check_keys(opts, KEYS, "rebalance")?;
    let mut r = RebalanceOpts::default();
    if let Some(v) = opts.get("threshold") {
        r.threshold = number(v, "threshold")?;
    }
    if let Some(v) = opts.get("use_empty_masters") {
        r.use_empty_masters = boolean(v, "use_empty_masters")?;
    }
    if opts.get("auto_weights").map(|v| boolean(v, "auto_weights")).transpose()?.unwrap_or(false) {
        // Weights from each master's maxmemory: a bigger box takes a bigger share.
        let stats = c.stats(topo)?;
        for m in topo.masters().filter(|m| !m.is_failed()) {
            let max = stats.get(&m.id).and_then(|s| s.maxmemory).unwrap_or(0);
            if max == 0 {
                return Err(Error::usage(
                    format!("auto_weights needs maxmemory set on every master, and {} has none", m.addr),
                    Some("set maxmemory on every master, or give weights explicitly"),
                ));
            }
            r.weights.insert(m.id.clone(), max as f64);
        }
    }
    if let Some(w) = opts.get("weights") {
        let w = w
            .clone()
            .try_cast::<Map>()
            .ok_or_else(|| Error::usage("`weights` must be a map: #{ \"6391\": 2, \"6397\": 0 }", None))?;
        for (sel, v) in w {
            let node = select(topo, &sel)?;
            if !node.is_master() {
                return Err(Error::usage(format!("{} is a replica: only masters take weights", node.addr), None));
            }
            r.weights.insert(node.id.clone(), number(&v, &format!("weights.{sel}"))?);
        }
    }
    let simulate = opts.get("simulate").map(|v| boolean(v, "simulate")).transpose()?.unwrap_or(false);
    Ok((r, move_opts(opts)?, simulate))
}

pub(super) fn del_opts(opts: &Map) -> Result<DelNodeOpts, Error> {
    check_keys(opts, &["replicas", "shutdown", "keep_running"], "del_node")?;
    let mut d = DelNodeOpts::default();
    if let Some(v) = opts.get("replicas") {
        d.replicas = match v.clone().into_string().unwrap_or_default().as_str() {
            "rehome" => ReplicaPolicy::Rehome,
            "remove" => ReplicaPolicy::Remove,
            other => {
                return Err(Error::usage(
                    format!("replicas: \"{other}\" is not a policy"),
                    Some("use \"rehome\" or \"remove\""),
                ));
            }
        };
    }
    if opts.get("shutdown").map(|v| boolean(v, "shutdown")).transpose()?.unwrap_or(false) {
        d.retire = Retire::Shutdown;
    }
    if opts.get("keep_running").map(|v| boolean(v, "keep_running")).transpose()?.unwrap_or(false) {
        d.retire = Retire::Keep;
    }
    Ok(d)
}

/// The longest `sleep`: anything longer is a typo (milliseconds for seconds), not a plan.
pub(super) const MAX_SLEEP_SECS: f64 = 86_400.0;

/// Seconds a runbook asked to wait, refused unless finite and between 0 and a day (a negative,
/// infinite or huge value would panic, pass silently or hang).
pub(super) fn wait_secs(secs: f64, what: &str) -> Result<Duration, Error> {
    if !secs.is_finite() || !(0.0..=MAX_SLEEP_SECS).contains(&secs) {
        return Err(Error::usage(
            format!("{what}({secs}): seconds must be a number from 0 to {MAX_SLEEP_SECS} (one day)"),
            Some("give the wait in seconds, e.g. sleep(0.5) or sleep(30)"),
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

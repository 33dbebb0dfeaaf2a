//! The preflight gates a plan must pass before it runs.

use std::sync::Arc;
use std::time::Duration;

use rhai::{Array, Dynamic, Map};

use super::err;
use crate::error::Error;
use crate::ops::{self, Cluster};
use crate::plan::Plan;
use crate::script::journaled::{j, show};
use crate::script::options::{check_keys, number};
use crate::script::primitive::{Primitive, Registrar};
use crate::script::session::Session;
use crate::script::types::{ClusterHandle, GatesValue, PlanValue, RhaiResult, rhai_err};

const PREFLIGHT: Primitive = Primitive::checks("preflight");

pub(super) fn register(r: &mut Registrar<'_>, session: &Arc<Session>) {
    let settle = session.settle;
    r.primitive(
        PREFLIGHT,
        ["c", "plan"],
        "The preflight gates for a plan: state, coverage, agreement, open slots, failures, replica sync, memory headroom, big keys, canary MIGRATE. A state that settles by itself is waited for (--settle, 30 s).",
        move |c: &mut ClusterHandle, p: PlanValue| -> RhaiResult<GatesValue> {
            j(c, PREFLIGHT, &show(&Dynamic::from(p.clone())), |cl| gates(cl, Some(&p.0), &Map::new(), settle))
        },
    );
    r.primitive(
        PREFLIGHT,
        ["c", "plan", "opts"],
        "The preflight gates for a plan; opts: skip (gate names, an array or \"a,b\"), headroom (0.2), settle (seconds to wait for a transient state; --settle, 30).",
        move |c: &mut ClusterHandle, p: PlanValue, opts: Map| -> RhaiResult<GatesValue> {
            j(c, PREFLIGHT, &show(&Dynamic::from(p.clone())), |cl| gates(cl, Some(&p.0), &opts, settle))
        },
    );
}

/// `settle` is `--settle`; the option map's `settle` wins over it.
fn gates(c: &dyn Cluster, plan: Option<&Plan>, opts: &Map, settle: Option<u64>) -> RhaiResult<GatesValue> {
    check_keys(opts, &["skip", "headroom", "settle"], "preflight").map_err(rhai_err)?;
    let mut g = ops::gates::GateOpts::default();
    if let Some(v) = opts.get("skip") {
        let names: Vec<String> = match v.clone().try_cast::<Array>() {
            Some(a) => a.iter().map(ToString::to_string).collect(),
            None => v.to_string().split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        };
        g.skip = names.into_iter().collect();
    }
    if let Some(v) = opts.get("headroom") {
        g.headroom = number(v, "headroom").map_err(rhai_err)?;
    }
    if let Some(secs) = settle {
        g.settle = Duration::from_secs(secs);
    }
    if let Some(v) = opts.get("settle") {
        let secs = number(v, "settle").map_err(rhai_err)?;
        if !(0.0..=86_400.0).contains(&secs) {
            return err(Error::usage(format!("settle {secs} is out of range: seconds, 0 to 86400"), None));
        }
        g.settle = Duration::from_secs_f64(secs);
    }
    let report = ops::gates::preflight(c, plan, &g).map_err(rhai_err)?;
    for line in report.to_string().lines() {
        c.out().say(line);
    }
    for gate in &report.gates {
        c.out().emit("gate", serde_json::json!({"gate": gate.name, "outcome": gate.outcome, "detail": gate.detail}));
    }
    Ok(GatesValue(Arc::new(report)))
}

//! Every primitive runs through here, treated as its declaration says (`Primitive`): the journal
//! records its call and result (or answers it from the run being resumed), a step event marks
//! what changes or checks the cluster, the lease is taken before the first change, and decisions
//! are recorded for or replayed from a plan file.

use rhai::Dynamic;

use super::primitive::{Effect, Primitive};
use super::session::Session;
use super::types::{ClusterHandle, Node, PlanValue, RhaiResult, rhai_err};
use crate::error::Error;
use crate::ops::Cluster;

/// Runs one primitive through the journal: recorded with its result, or, while a resumed run
/// replays, answered with the result recorded the first time.
pub fn j<T: Clone + Send + Sync + 'static>(
    c: &ClusterHandle,
    primitive: Primitive,
    args: &str,
    f: impl FnOnce(&dyn Cluster) -> RhaiResult<T>,
) -> RhaiResult<T> {
    let name = primitive.name;
    if primitive.changes_cluster() {
        // Refuse a second run before anything else (even its own prechecks) looks at the cluster.
        c.0.acquire_lease().map_err(rhai_err)?;
    }
    let step = primitive.effect != Effect::Reads;
    if step {
        c.0.out().emit("step", serde_json::json!({"step": name, "args": args, "phase": "started"}));
    }
    let sent_before = c.1.as_ref().map(|j| j.intents_written());
    let r = j_inner(c, primitive, args, f);
    // Changed: it succeeded (or was replayed from the run this one resumes), or it failed after
    // sending some change. One refused before sending anything changed nothing.
    let sent = c.1.as_ref().map(|j| j.intents_written()) != sent_before;
    if primitive.changes_cluster() && (r.is_ok() || sent) {
        c.2.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    if step {
        let error = r.as_ref().err().map(ToString::to_string);
        c.0.out().emit(
            "step",
            serde_json::json!({"step": name, "args": args, "phase": "finished", "ok": error.is_none(), "error": error}),
        );
    }
    r
}

fn j_inner<T: Clone + Send + Sync + 'static>(
    c: &ClusterHandle,
    primitive: Primitive,
    args: &str,
    f: impl FnOnce(&dyn Cluster) -> RhaiResult<T>,
) -> RhaiResult<T> {
    let Some(journal) = &c.1 else {
        if primitive.changes_cluster() {
            c.0.begin_step(format!("{} {args}", primitive.name).trim_end());
        }
        return f(c.0.as_ref());
    };
    match journal.begin(primitive.name, args, primitive.changes_cluster(), c.0.out()).map_err(rhai_err)? {
        crate::journal::Begin::Replayed(v) => {
            // A value that cannot be rebuilt is fetched again instead.
            match super::codec::decode(&v).and_then(Dynamic::try_cast::<T>) {
                Some(t) => Ok(t),
                None => f(c.0.as_ref()),
            }
        }
        crate::journal::Begin::Live(seq) => {
            let r = f(c.0.as_ref());
            match &r {
                Ok(t) => journal.done(seq, super::codec::encode(&Dynamic::from(t.clone()))).map_err(rhai_err)?,
                Err(e) => journal.fail(seq, &e.to_string()).map_err(rhai_err)?,
            }
            r
        }
    }
}

/// A decision (`plan_drain`, `plan_rebalance`) through the journal, recorded for a plan file or
/// answered from one: a run applying a reviewed plan moves exactly the slots the review saw.
pub(super) fn decide(
    s: &Session,
    c: &ClusterHandle,
    primitive: Primitive,
    args: &str,
    f: impl FnOnce(&dyn Cluster) -> RhaiResult<PlanValue>,
) -> RhaiResult<PlanValue> {
    let name = primitive.name;
    let Some(d) = &s.decisions else { return j(c, primitive, args, f) };
    if let Some(replayed) = d.replayed(name, args) {
        let value = replayed.map_err(rhai_err)?;
        let plan = super::codec::decode(&value).and_then(Dynamic::try_cast::<PlanValue>).ok_or_else(|| {
            rhai_err(Error::usage(format!("the plan's decision for {name} {args} cannot be read"), None))
        })?;
        return j(c, primitive, args, |_| Ok(plan));
    }
    let plan = j(c, primitive, args, f)?;
    d.record(name, args, super::codec::encode(&Dynamic::from(plan.clone())));
    Ok(plan)
}

/// A short description of an argument for the journal and the dry-run report.
pub(super) fn show(d: &Dynamic) -> String {
    if let Some(n) = d.clone().try_cast::<Node>() {
        return n.0.addr.to_string();
    }
    if let Some(p) = d.clone().try_cast::<PlanValue>() {
        return format!("{} plan: {} slots", p.0.kind, p.0.moves.len());
    }
    d.to_string()
}

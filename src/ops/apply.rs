//! Applying a plan: batch by batch, re-reading the cluster before each batch.

use std::time::Instant;

use super::cluster::{Cluster, MoveOpts, MoveStats};
use super::say::say;
use crate::error::{Error, Result};
use crate::plan::Plan;

/// What `apply` did.
#[derive(Clone, Copy, Debug, Default)]
pub struct ApplyReport {
    pub stats: MoveStats,
    pub seconds: f64,
}

/// Moves every slot of `plan`. Refuses a plan made against a different slot map (someone else
/// changed the cluster since), unless some of its moves already happened: that is a re-run
/// finishing its own work, and the backends skip finished slots.
pub fn apply(c: &dyn Cluster, plan: &Plan, opts: &MoveOpts) -> Result<ApplyReport> {
    let started = Instant::now();
    let topo = c.topology()?;
    if topo.fingerprint() != plan.fingerprint {
        let stranger = plan.moves.iter().find(|m| {
            let owner = topo.owner(m.slot).map(|n| n.id.as_str());
            owner != Some(m.from.as_str()) && owner != Some(m.to.as_str())
        });
        if let Some(m) = stranger {
            return Err(Error::refused(
                format!(
                    "the plan is stale: slot {} was planned to move from {} but is now owned by {}",
                    m.slot,
                    plan.name(&m.from),
                    topo.owner(m.slot).map_or("no one".into(), |n| n.addr.to_string())
                ),
                Some("the cluster changed since the plan was made; make a new plan"),
            ));
        }
    }
    // A slot left open by someone else (another tool, an operator) is not ours to build on.
    for o in topo.open_slots() {
        let ours = plan.moves.iter().any(|m| {
            m.slot == o.slot
                && ((o.state == "migrating" && m.from == o.node && m.to == o.peer)
                    || (o.state == "importing" && m.to == o.node && m.from == o.peer))
        });
        if !ours {
            let name = |id: &str| topo.node(id).map_or_else(|| id.to_string(), |n| n.addr.to_string());
            return Err(Error::refused(
                format!(
                    "slot {} is open ({} on {}, peer {}) and this plan does not finish it",
                    o.slot,
                    o.state,
                    name(&o.node),
                    name(&o.peer)
                ),
                Some("finish or close that migration first (`runbook check` shows every open slot)"),
            ));
        }
    }
    let batches = plan.batches(opts.slots_per_batch);
    let mut report = ApplyReport::default();
    let total = plan.moves.len();
    for (i, batch) in batches.iter().enumerate() {
        let topo = if i == 0 { topo.clone() } else { c.topology()? };
        say(&format!(
            "moving {} slot(s) {} → {} [{}/{total}]",
            batch.slots.len(),
            plan.name(&batch.from),
            plan.name(&batch.to),
            report.stats.slots + batch.slots.len()
        ));
        report.stats += c.move_slots(&topo, batch, opts)?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    if total > 0 {
        say(&format!("moved {} slots and {} keys in {:.1}s", report.stats.slots, report.stats.keys, report.seconds));
    }
    Ok(report)
}

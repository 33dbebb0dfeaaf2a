//! Applying a plan: batch by batch, re-reading the cluster before each batch.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use super::cluster::{Cluster, MoveOpts, MoveStats};
use super::progress::Progress;
use crate::error::{Error, Result};
use crate::model::SlotSet;
use crate::plan::{Batch, Plan, Reconciliation};

/// What `apply` did.
#[derive(Clone, Copy, Debug, Default)]
pub struct ApplyReport {
    pub stats: MoveStats,
    pub seconds: f64,
    /// The most slots open (MIGRATING/IMPORTING) at once: what a failing node could have caught.
    pub most_open: usize,
}

/// Moves every slot of `plan`. Refuses a plan made against a different slot map (someone else
/// changed the cluster since), unless some of its moves already happened: that is a re-run
/// finishing its own work, and the backends skip finished slots.
pub fn apply(c: &dyn Cluster, plan: &Plan, opts: &MoveOpts) -> Result<ApplyReport> {
    let started = Instant::now();
    let topo = c.topology()?;
    // A master that failed over since the plan was made is replaced by its promoted replica: the
    // intent (drain that shard, fill that one) carries through the failover.
    let (followed, replaced) = crate::plan::reconcile::follow_failovers(&topo, plan);
    let plan = &followed;
    for (failed, successor) in &replaced {
        c.out().say(&format!(
            "{} failed over to {} since the plan was made: {} takes its place in the plan",
            plan.name(failed),
            plan.name(successor),
            plan.name(successor)
        ));
    }
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
            let name = |id: &str| topo.name(id);
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
    wait_ready(c, plan)?;
    let mut queue: VecDeque<Batch> = plan.batches(opts.slots_per_batch).into();
    let mut report = ApplyReport::default();
    let total = plan.moves.len();
    let mut progress = Progress::new(c.out(), total, plan.keys.as_ref().map(|k| k.iter().sum()));
    let mut first = Some(topo);
    let mut retried: Vec<Vec<u16>> = Vec::new();
    while !queue.is_empty() {
        let topo = match first.take() {
            Some(t) => t,
            None => c.topology()?,
        };
        let wave = next_wave(&mut queue);
        for b in &wave {
            progress.starting(&format!(
                "moving {} slot(s) {} → {} [{}/{total}]",
                b.slots.len(),
                plan.name(&b.from),
                plan.name(&b.to),
                report.stats.slots + b.slots.len()
            ));
        }
        // Batches of one wave share no node, so they run side by side; each runs to its end.
        let results: Vec<Result<MoveStats>> = std::thread::scope(|s| {
            let handles: Vec<_> = wave.iter().map(|b| s.spawn(|| c.move_slots(&topo, b, opts, &|_| {}))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(Error::refused("a move thread panicked", None))))
                .collect()
        });
        report.most_open = report.most_open.max(wave.iter().map(|b| b.slots.len()).sum());
        for (b, r) in wave.iter().zip(results) {
            let stats = match r {
                Ok(stats) => stats,
                // Settled: the plan goes on, any end that failed over replaced by the replica
                // promoted in its place (what a re-run would do, decided the same way), this
                // batch first again (slots it had finished are only closed), once.
                Err(e) => {
                    let settled = settle_failed_batch(c, plan, b, opts, e, retried.contains(&b.slots))?;
                    retried.push(b.slots.clone());
                    queue.push_front(b.clone());
                    for (failed, successor) in &settled.replaced {
                        for q in &mut queue {
                            for end in [&mut q.from, &mut q.to] {
                                if end == failed {
                                    end.clone_from(successor);
                                }
                            }
                        }
                    }
                    continue;
                }
            };
            report.stats += stats;
            progress.moved(stats);
            c.out().emit(
                "moved",
                serde_json::json!({"from": plan.name(&b.from), "to": plan.name(&b.to), "slots": stats.slots, "keys": stats.keys}),
            );
        }
    }
    progress.finish();
    report.seconds = started.elapsed().as_secs_f64();
    if total > 0 {
        // A dry run times nothing, and under a millisecond is not worth a clause.
        let held = match (report.stats.longest_hold_ms, report.stats.over_budget) {
            (0, _) => String::new(),
            (ms, 0) => format!("; a MIGRATE pipeline held the source at most {ms} ms"),
            (ms, n) => format!("; a MIGRATE pipeline held the source at most {ms} ms, {n} over the pause budget"),
        };
        c.out().say(&format!(
            "moved {} slots and {} keys in {:.1}s (at most {} slots open at once{held})",
            report.stats.slots, report.stats.keys, report.seconds, report.most_open
        ));
    }
    Ok(report)
}

/// A batch failed: a node of it may have died or failed over. Before anything else, settle the
/// batch's slots (waiting, bounded, for a failover to finish), so no slot stays open toward a
/// dead node and no healthy receiver is left importing from one (it would keep believing the
/// dead node owns those slots, and refuse its clients). Returns what was settled, for the plan
/// to go on; when settling fails, an error saying what happened and how to continue.
fn settle_failed_batch(
    c: &dyn Cluster,
    plan: &Plan,
    b: &Batch,
    opts: &MoveOpts,
    e: Error,
    second_time: bool,
) -> Result<Reconciliation> {
    let slots: SlotSet = b.slots.iter().copied().collect();
    let what = format!("moving slots {slots} {} → {}", plan.name(&b.from), plan.name(&b.to));
    let (node, command, reason) = match &e {
        Error::Command { node, command, reason, .. } => (node.clone(), command.clone(), reason.clone()),
        Error::Connect { addr, reason } => (addr.clone(), "connect".into(), reason.clone()),
        other => (String::new(), what.clone(), other.to_string()),
    };
    // A key that exists on both sides is the operator's call, not a failure to repair.
    if matches!(e, Error::Cancelled) || reason.contains("already exists on the target") {
        return Err(e);
    }
    c.out().say(&format!("{what} failed: {reason}; settling those slots"));
    let settled = c
        .topology()
        .map(|t| super::reconcile::failover_wait(c, &t))
        .and_then(|wait| super::reconcile::repair(c, &[plan.intent(b)], opts, wait));
    match settled {
        // A batch that fails again after being settled is settled once more, not tried again.
        Ok(_) if second_time => Err(Error::Command {
            node,
            command,
            reason,
            state: Some(format!(
                "the drain stopped: {what} failed again after its slots had been settled; they were settled once more (each decision is printed above), so no slot is left open by this run; `runbook check` shows the cluster, and running the same command again continues the plan"
            )),
        }),
        Ok(r) => {
            c.out().say(&format!("{what}: settled; going on with the plan"));
            Ok(r)
        }
        Err(repair_error) => Err(Error::Command {
            node,
            command,
            reason,
            state: Some(format!(
                "the drain stopped while {what}, and settling those slots failed ({repair_error}); some of slots {slots} may still be open: running the same command again settles them first (it waits for a failover to finish), or `runbook fix` closes them"
            )),
        }),
    }
}

/// Waits (up to 30 s) until every node the plan moves slots between reports `cluster_state:ok`:
/// a master that just joined stays `fail` for a few seconds, and a MIGRATE to it fails with
/// CLUSTERDOWN meanwhile.
fn wait_ready(c: &dyn Cluster, plan: &Plan) -> Result<()> {
    let involved: BTreeSet<&str> = plan.moves.iter().flat_map(|m| [m.from.as_str(), m.to.as_str()]).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut said = false;
    loop {
        let topo = c.topology()?;
        let stats = c.stats(&topo)?;
        let not_ok: Vec<String> = involved
            .iter()
            .filter(|id| stats.get(**id).and_then(|s| s.cluster_state.as_deref()).is_some_and(|s| s != "ok"))
            .map(|id| plan.name(id))
            .collect();
        if not_ok.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::Timeout {
                what: "waiting for the nodes of the plan to report cluster_state:ok".into(),
                detail: format!("still not ok: {}", not_ok.join(", ")),
            });
        }
        if !said {
            c.out().say(&format!("waiting for {} to report cluster_state:ok", not_ok.join(", ")));
            said = true;
        }
        c.pause(Duration::from_millis(100))?;
    }
}

/// Moves running at once, at most: enough to overlap round trips and config saves on different
/// nodes without crowding a 2-core machine.
const PARALLEL: usize = 4;

/// The next batches that share no node with each other, in plan order: a pair's batches never
/// overtake each other, and no node is source or target of two moves at once.
fn next_wave(queue: &mut VecDeque<Batch>) -> Vec<Batch> {
    let mut busy: BTreeSet<String> = BTreeSet::new();
    let mut wave = Vec::new();
    let mut rest = VecDeque::new();
    while let Some(b) = queue.pop_front() {
        if wave.len() < PARALLEL && !busy.contains(&b.from) && !busy.contains(&b.to) {
            busy.insert(b.from.clone());
            busy.insert(b.to.clone());
            wave.push(b);
        } else {
            // A skipped pair keeps its nodes busy, so its later batches wait for it too.
            busy.insert(b.from.clone());
            busy.insert(b.to.clone());
            rest.push_back(b);
        }
    }
    *queue = rest;
    wave
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(from: &str, to: &str, slot: u16) -> Batch {
        Batch { from: from.into(), to: to.into(), slots: vec![slot] }
    }

    #[test]
    fn waves_share_no_node_and_keep_each_pairs_order() {
        let mut q: VecDeque<Batch> =
            vec![b("a", "d", 1), b("a", "d", 2), b("b", "e", 3), b("c", "d", 4), b("c", "f", 5)].into();
        let w1 = next_wave(&mut q);
        assert_eq!(w1.iter().map(|b| b.slots[0]).collect::<Vec<_>>(), vec![1, 3]);
        let w2 = next_wave(&mut q);
        assert_eq!(w2.iter().map(|b| b.slots[0]).collect::<Vec<_>>(), vec![2]);
        let w3 = next_wave(&mut q);
        assert_eq!(w3.iter().map(|b| b.slots[0]).collect::<Vec<_>>(), vec![4]);
        assert_eq!(next_wave(&mut q).iter().map(|b| b.slots[0]).collect::<Vec<_>>(), vec![5]);
        assert!(q.is_empty());
    }
}

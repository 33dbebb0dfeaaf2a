//! Drain planner: spread the slots of leaving masters over the masters that stay.

use super::PlanError;
use super::moves::{Move, Plan};
use crate::model::{NodeInfo, Topology, describe};

/// Moves every slot of `leaving` to the other masters, so the receivers end as level as possible
/// (from equal starting counts that is an even split: 4096 over 3 is 1366/1365/1365). Each
/// receiver gets one contiguous run of the leaving slots. Never a replica, a failed master, or
/// another leaving node.
pub fn plan_drain(topo: &Topology, leaving: &[&str]) -> Result<Plan, PlanError> {
    for id in leaving {
        let n = topo.node(id).ok_or_else(|| PlanError::BadInput(format!("unknown node id {id}")))?;
        if !n.is_master() {
            return Err(PlanError::BadInput(format!(
                "{} is a replica: it owns no slots to drain; to remove it, run `c.del_node(c.node(\"{}\"))` in `runbook repl` or a runbook",
                describe(n),
                n.addr
            )));
        }
    }
    let mut targets: Vec<&NodeInfo> =
        topo.masters().filter(|m| !leaving.contains(&m.id.as_str()) && !m.is_failed() && m.addr.is_known()).collect();
    if targets.is_empty() {
        return Err(PlanError::Impossible(
            "no master would be left to take the slots: a cluster needs at least one master".into(),
        ));
    }
    targets.sort_by(|a, b| (&a.addr.host, a.addr.port).cmp(&(&b.addr.host, b.addr.port)));
    let mut slots: Vec<(u16, &str)> = Vec::new();
    for id in leaving {
        let n = topo.node(id).expect("checked above");
        slots.extend(n.slots.iter().map(|s| (s, n.id.as_str())));
    }
    slots.sort_unstable();

    // Water-filling: each slot goes to whichever receiver holds fewest so far (ties: address
    // order). Only the counts are taken from this; the slots themselves are handed out in runs.
    let mut counts: Vec<usize> = targets.iter().map(|t| t.slots.len()).collect();
    let mut gets = vec![0usize; targets.len()];
    for _ in 0..slots.len() {
        let i = (0..counts.len()).min_by_key(|&i| (counts[i], i)).expect("targets is not empty");
        counts[i] += 1;
        gets[i] += 1;
    }
    let mut moves = Vec::with_capacity(slots.len());
    let mut next = slots.iter();
    // Runs go to receivers in address order, so each receiver's new slots are one range.
    for (target, n) in targets.iter().zip(gets) {
        for (slot, from) in next.by_ref().take(n) {
            moves.push(Move { slot: *slot, from: (*from).to_string(), to: target.id.clone() });
        }
    }
    Ok(Plan::new("drain", topo, moves))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixtures::{id, topo};

    #[test]
    fn seed_split_is_even_and_contiguous() {
        let t = topo();
        let victim = id(&t, 27904);
        let plan = plan_drain(&t, &[&victim]).unwrap();
        assert_eq!(plan.moves.len(), 4096);
        let mut per: Vec<usize> = plan.summary().iter().map(|r| r.2.len()).collect();
        per.sort_unstable();
        assert_eq!(per, vec![1365, 1365, 1366]);
        for (_, to, slots, _) in plan.summary() {
            assert_eq!(slots.ranges().len(), 1, "one contiguous run per receiver");
            assert_ne!(to, victim);
            assert!(t.node(&to).unwrap().is_master());
        }
        assert_eq!(plan.batches(100_000).len(), 3);
        assert_eq!(plan, plan_drain(&t, &[&victim]).unwrap(), "deterministic");
    }

    #[test]
    fn several_leaving_nodes_never_feed_each_other() {
        let t = topo();
        let (a, b) = (id(&t, 27901), id(&t, 27902));
        let plan = plan_drain(&t, &[&a, &b]).unwrap();
        assert_eq!(plan.moves.len(), 8192);
        assert!(plan.moves.iter().all(|m| m.to != a && m.to != b));
        let per: Vec<usize> = plan.summary().iter().map(|r| r.2.len()).collect();
        assert_eq!(per.iter().sum::<usize>(), 8192);
    }

    #[test]
    fn refuses_replicas_and_the_last_master() {
        let t = topo();
        assert!(plan_drain(&t, &[&id(&t, 27905)]).unwrap_err().to_string().contains("is a replica"));
        let all: Vec<String> = t.masters().map(|m| m.id.clone()).collect();
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        assert!(plan_drain(&t, &all).unwrap_err().to_string().contains("at least one master"));
    }
}

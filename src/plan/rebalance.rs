//! Rebalance planner: redis-cli's balance maths (weights, threshold, empty masters) without its
//! bugs — exact counts, deterministic ties, and `threshold 0` meaning "always".

use std::collections::BTreeMap;

use super::PlanError;
use super::moves::{Move, Plan};
use crate::model::{NodeInfo, Topology};

#[derive(Clone, Debug, PartialEq)]
pub struct RebalanceOpts {
    /// Node id → weight. Missing masters weigh 1; 0 empties a node.
    pub weights: BTreeMap<String, f64>,
    /// Give slots to masters that have none (otherwise they are left out, as in redis-cli,
    /// unless given a positive weight explicitly).
    pub use_empty_masters: bool,
    /// Percent a master may be off its share before anything moves. Default 2.
    pub threshold: f64,
}

impl Default for RebalanceOpts {
    fn default() -> Self {
        Self { weights: BTreeMap::new(), use_empty_masters: false, threshold: 2.0 }
    }
}

/// One master's share: (node, slots now, slots expected).
fn shares<'a>(topo: &'a Topology, opts: &RebalanceOpts) -> Result<Vec<(&'a NodeInfo, usize, usize)>, PlanError> {
    let involved: Vec<(&NodeInfo, f64)> = topo
        .masters()
        .filter(|m| !m.is_failed() && m.addr.is_known())
        .filter_map(|m| {
            let explicit = opts.weights.get(&m.id).copied();
            let include = !m.slots.is_empty() || opts.use_empty_masters || explicit.is_some_and(|w| w > 0.0);
            include.then(|| (m, explicit.unwrap_or(1.0)))
        })
        .collect();
    if let Some((m, w)) = involved.iter().find(|(_, w)| !w.is_finite() || *w < 0.0) {
        return Err(PlanError::BadInput(format!("invalid weight {w} for {}: weights are numbers ≥ 0", m.addr)));
    }
    let total_weight: f64 = involved.iter().map(|(_, w)| w).sum();
    if total_weight <= 0.0 {
        return Err(PlanError::BadInput("every master has weight 0: at least one must keep slots".into()));
    }
    let total_slots: usize = involved.iter().map(|(m, _)| m.slots.len()).sum();
    // Largest remainder, so the expected counts add up exactly (redis-cli's floor-then-patch
    // loop can leave the plan short and, in redis-trib, loop forever).
    let raw: Vec<f64> = involved.iter().map(|(_, w)| total_slots as f64 * w / total_weight).collect();
    let mut expected: Vec<usize> = raw.iter().map(|r| r.floor() as usize).collect();
    let mut left = total_slots - expected.iter().sum::<usize>();
    let mut order: Vec<usize> = (0..involved.len()).collect();
    order.sort_by(|&a, &b| {
        let (fa, fb) = (raw[a] - raw[a].floor(), raw[b] - raw[b].floor());
        fb.total_cmp(&fa).then(involved[b].0.slots.len().cmp(&involved[a].0.slots.len())).then(a.cmp(&b))
    });
    for i in order {
        if left == 0 {
            break;
        }
        if involved[i].1 > 0.0 {
            expected[i] += 1;
            left -= 1;
        }
    }
    Ok(involved.iter().zip(expected).map(|((m, _), e)| (*m, m.slots.len(), e)).collect())
}

/// Plans the moves that bring every involved master to its weighted share, or an empty plan
/// with a note when every master is already within `threshold` percent.
pub fn plan_rebalance(topo: &Topology, opts: &RebalanceOpts) -> Result<Plan, PlanError> {
    if !(0.0..=100.0).contains(&opts.threshold) {
        return Err(PlanError::BadInput(format!(
            "threshold {} is out of range: give a percentage from 0 to 100",
            opts.threshold
        )));
    }
    let shares = shares(topo, opts)?;
    let over = |&(_, have, want): &(&NodeInfo, usize, usize)| {
        if opts.threshold == 0.0 {
            have != want
        } else if have == 0 {
            want > 0
        } else {
            (100.0 - 100.0 * want as f64 / have as f64).abs() > opts.threshold
        }
    };
    if !shares.iter().any(over) {
        let mut plan = Plan::new("rebalance", topo, Vec::new());
        plan.note = Some(format!("all {} masters are within {:.2}% of their share", shares.len(), opts.threshold));
        return Ok(plan);
    }
    // Donors give their lowest slots first, most-over donor to most-under receiver.
    let mut donors: Vec<(&NodeInfo, usize)> =
        shares.iter().filter(|s| s.1 > s.2).map(|&(m, have, want)| (m, have - want)).collect();
    let mut receivers: Vec<(&NodeInfo, usize)> =
        shares.iter().filter(|s| s.1 < s.2).map(|&(m, have, want)| (m, want - have)).collect();
    donors.sort_by(|a, b| b.1.cmp(&a.1).then((&a.0.addr.host, a.0.addr.port).cmp(&(&b.0.addr.host, b.0.addr.port))));
    receivers.sort_by(|a, b| b.1.cmp(&a.1).then((&a.0.addr.host, a.0.addr.port).cmp(&(&b.0.addr.host, b.0.addr.port))));
    let mut moves = Vec::new();
    let mut r = 0;
    for (donor, mut give) in donors {
        let mut slots = donor.slots.iter();
        while give > 0 && r < receivers.len() {
            let n = give.min(receivers[r].1);
            for slot in slots.by_ref().take(n) {
                moves.push(Move { slot, from: donor.id.clone(), to: receivers[r].0.id.clone() });
            }
            give -= n;
            receivers[r].1 -= n;
            if receivers[r].1 == 0 {
                r += 1;
            }
        }
    }
    Ok(Plan::new("rebalance", topo, moves))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SlotSet, parse_nodes};
    use crate::plan::fixtures::{id, topo};

    /// Applies a plan to a topology's slot counts, by port.
    fn after(t: &Topology, plan: &Plan) -> BTreeMap<u16, usize> {
        let mut owned: BTreeMap<String, SlotSet> = t.masters().map(|m| (m.id.clone(), m.slots.clone())).collect();
        for m in &plan.moves {
            assert!(owned[&m.from].contains(m.slot), "moves a slot its source owns");
            assert_ne!(m.from, m.to, "no self-moves");
            owned.get_mut(&m.from).unwrap().remove(m.slot);
            owned.get_mut(&m.to).unwrap().insert(m.slot);
        }
        owned.iter().map(|(id, s)| (t.node(id).unwrap().addr.port, s.len())).collect()
    }

    #[test]
    fn balanced_cluster_needs_nothing() {
        let t = topo();
        let plan = plan_rebalance(&t, &RebalanceOpts::default()).unwrap();
        assert!(plan.is_empty());
        assert!(plan.note.unwrap().contains("within 2.00%"));
    }

    #[test]
    fn weight_zero_empties_a_node_and_conserves_slots() {
        let t = topo();
        let mut opts = RebalanceOpts::default();
        opts.weights.insert(id(&t, 27904), 0.0);
        let plan = plan_rebalance(&t, &opts).unwrap();
        assert_eq!(plan.moves.len(), 4096);
        let counts = after(&t, &plan);
        assert_eq!(counts[&27904], 0);
        assert_eq!(counts.values().sum::<usize>(), 16384);
        let mut rest: Vec<usize> = counts.iter().filter(|(p, _)| **p != 27904).map(|(_, c)| *c).collect();
        rest.sort_unstable();
        assert_eq!(rest, vec![5461, 5461, 5462]);
    }

    #[test]
    fn weights_and_threshold_zero() {
        let t = topo();
        let mut opts = RebalanceOpts { threshold: 0.0, ..RebalanceOpts::default() };
        opts.weights.insert(id(&t, 27901), 2.0);
        let counts = after(&t, &plan_rebalance(&t, &opts).unwrap());
        assert_eq!(counts[&27901], 6553, "16384 × 2/5 = 6553.6; the others have the larger remainders");
        assert_eq!(counts.values().sum::<usize>(), 16384);
        // threshold 0 rebalances even a one-slot difference, unlike redis-cli.
        let mut nodes = parse_nodes(include_str!("../../tests/fixtures/redis7-healthy-4m4r.txt")).unwrap();
        let a = nodes.iter().position(|n| n.addr.port == 27901).unwrap();
        let b = nodes.iter().position(|n| n.addr.port == 27902).unwrap();
        nodes[a].slots.remove(0);
        nodes[b].slots.insert(0);
        let t = Topology::from_single_view(nodes);
        assert!(plan_rebalance(&t, &RebalanceOpts::default()).unwrap().is_empty());
        let p = plan_rebalance(&t, &RebalanceOpts { threshold: 0.0, ..RebalanceOpts::default() }).unwrap();
        assert_eq!(p.moves.len(), 1);
    }

    #[test]
    fn bad_options_are_refused() {
        let t = topo();
        assert!(plan_rebalance(&t, &RebalanceOpts { threshold: 150.0, ..RebalanceOpts::default() }).is_err());
        let mut opts = RebalanceOpts::default();
        opts.weights.insert(id(&t, 27901), -1.0);
        assert!(plan_rebalance(&t, &opts).unwrap_err().to_string().contains("invalid weight"));
        let mut opts = RebalanceOpts::default();
        for m in t.masters() {
            opts.weights.insert(m.id.clone(), 0.0);
        }
        assert!(plan_rebalance(&t, &opts).unwrap_err().to_string().contains("weight 0"));
    }
}

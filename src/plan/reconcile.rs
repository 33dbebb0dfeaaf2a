//! Reconciliation: from what every node says now (roles, owners, MIGRATING/IMPORTING, keys per
//! slot) and, when a run of ours was interrupted, its intent, the actions that bring each open
//! slot to one owner holding all its keys, and every stranded key back to its slot's owner.
//! Pure: the backends gather the evidence and carry the actions out. Resume, `fix` and the
//! repair after a failed batch all decide here, so they cannot disagree.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{NodeInfo, SlotSet, Topology};

/// A move this tool meant to make: slots from one shard to another. The replicas recorded when
/// it was planned let a failed master be followed to the replica that took its place.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    pub from: String,
    pub to: String,
    pub slots: Vec<u16>,
    #[serde(default)]
    pub from_replicas: Vec<String>,
    #[serde(default)]
    pub to_replicas: Vec<String>,
}

/// Keys per (slot, master id), as counted on the reachable masters. A missing entry is "not
/// counted", taken as zero.
pub type KeyCounts = BTreeMap<u16, BTreeMap<String, u64>>;

/// One step the backend carries out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// The whole move protocol for `slot` from its owner `from` to `to` (IMPORTING on `to`,
    /// MIGRATING on `from`, keys, then SETSLOT NODE target → source → others).
    Finish { slot: u16, from: String, to: String, keep: Keep },
    /// `node` holds keys of `slot` that it does not own: open the slot there (IMPORTING from
    /// `owner`) if it is not, MIGRATE its keys to `owner`, then STABLE.
    ReturnKeys { slot: u16, node: String, owner: String, keep: Keep },
    /// `CLUSTER SETSLOT slot STABLE` on `node`: a leftover MIGRATING/IMPORTING with nothing to move.
    Stable { slot: u16, node: String },
    /// `CLUSTER SETSLOT slot NODE owner` on `node`, whose view kept a stale owner (a node ignores
    /// ownership news for a slot it imports). Done before everything else.
    Assign { slot: u16, node: String, owner: String },
}

/// Which copy of a key found on both nodes of a MIGRATE is the one clients have been using.
/// While the move's source lives, a key it still holds is its own (MIGRATE deletes a key only
/// once the target confirms; a key whose confirmation was lost stayed, and took the writes). When
/// the source died, its promoted replica may still hold keys the source had already moved (the
/// DEL had not reached it): the copy elsewhere is the newer one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// The sending node's copy: MIGRATE with REPLACE.
    Mover,
    /// The receiving node's copy: the sender's duplicate is dropped.
    Receiver,
}

/// What was decided for one slot, and why, in an operator's words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub slot: u16,
    pub actions: Vec<Action>,
    pub reason: String,
}

/// Everything to do, and the slots left alone (with why).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reconciliation {
    pub decisions: Vec<Decision>,
    pub unresolved: Vec<(u16, String)>,
    /// Nodes that failed over during the run: (failed node, the master now in its place).
    pub replaced: Vec<(String, String)>,
}

impl Reconciliation {
    pub fn is_empty(&self) -> bool {
        self.decisions.is_empty() && self.unresolved.is_empty()
    }

    /// The decisions as sentences, slots with the same reason collapsed into ranges.
    pub fn sentences(&self) -> Vec<String> {
        let mut by_reason: Vec<(String, SlotSet)> = Vec::new();
        for d in &self.decisions {
            match by_reason.iter_mut().find(|(r, _)| *r == d.reason) {
                Some((_, s)) => s.insert(d.slot),
                None => by_reason.push((d.reason.clone(), std::iter::once(d.slot).collect())),
            }
        }
        let mut out: Vec<String> = by_reason
            .into_iter()
            .map(|(reason, slots)| format!("{} {slots}: {reason}", if slots.len() == 1 { "slot" } else { "slots" }))
            .collect();
        out.extend(self.unresolved.iter().map(|(s, why)| format!("slot {s}: left as it is: {why}")));
        out
    }
}

/// A healthy master: reachable, a master by its own account. Its own line is the truth about
/// its slots; what others say of an unreachable node is hearsay.
fn healthy(topo: &Topology, n: &NodeInfo) -> bool {
    topo.is_reachable(&n.id) && n.is_master()
}

/// The healthy master that now stands for `id`'s shard: itself; for a replica, its master; for a
/// failed master, the one of its recorded replicas promoted in its place, else the master that
/// now claims the slots some view still gives it.
pub fn successor<'a>(topo: &'a Topology, id: &str, replicas: &[String]) -> Option<&'a NodeInfo> {
    let node = topo.node(id);
    if let Some(n) = node {
        if healthy(topo, n) {
            return Some(n);
        }
        if topo.is_reachable(id)
            && !n.is_master()
            && let Some(m) = n.master_id.as_deref().and_then(|m| topo.node(m))
            && healthy(topo, m)
        {
            return Some(m);
        }
    }
    if let Some(r) = replicas.iter().filter_map(|r| topo.node(r)).find(|r| healthy(topo, r)) {
        return Some(r);
    }
    // Slots some view still believes `id` owns, now claimed by one healthy master.
    let mut believed = SlotSet::new();
    for view in topo.views().values() {
        if let Some(n) = view.iter().find(|n| n.id == id) {
            believed.union_with(&n.slots);
        }
    }
    let claimants: BTreeSet<&str> =
        believed.iter().flat_map(|s| owners(topo, s)).map(|n| n.id.as_str()).filter(|o| *o != id).collect();
    match claimants.into_iter().collect::<Vec<_>>().as_slice() {
        [one] => topo.node(one),
        _ => None,
    }
}

/// Healthy masters claiming `slot` by their own account.
fn owners(topo: &Topology, slot: u16) -> Vec<&NodeInfo> {
    topo.masters().filter(|m| healthy(topo, m) && m.slots.contains(slot)).collect()
}

/// Why reconciliation must wait instead of deciding: a failover under way (a slot whose only
/// claimants are unreachable or failed), or two masters claiming one slot (a restarted master
/// that has not yet learnt it was replaced). `None` when the evidence is settled.
pub fn unsettled(topo: &Topology, intents: &[Intent]) -> Option<String> {
    let mut orphaned = SlotSet::new();
    let mut doubled = SlotSet::new();
    for s in 0..crate::model::SLOTS {
        match owners(topo, s).len() {
            0 if topo.owners(s).iter().any(|n| !healthy(topo, n)) => orphaned.insert(s),
            0 | 1 => {}
            _ => doubled.insert(s),
        }
    }
    if !orphaned.is_empty() {
        return Some(format!("slots {orphaned} belong to a failed master whose replica is not yet promoted"));
    }
    if !doubled.is_empty() {
        return Some(format!("slots {doubled} are claimed by two masters (a failover is settling)"));
    }
    for i in intents {
        for (id, reps) in [(&i.from, &i.from_replicas), (&i.to, &i.to_replicas)] {
            // A replica still answering as a replica: its promotion may be under way. (One known
            // only from a stale view is gone, not about to be promoted.)
            let pending = reps.iter().any(|r| topo.is_reachable(r) && topo.node(r).is_some_and(|n| !n.is_master()));
            if successor(topo, id, reps).is_none() && pending {
                return Some(format!("{} failed and none of its replicas is a master yet", topo.name(id)));
            }
        }
    }
    None
}

/// The decisions for every open slot, every slot of `intents` not yet where it was meant to go
/// (only those already opened: a slot never touched is the plan's business, not ours), and
/// every stranded key.
pub fn reconcile(topo: &Topology, keys: &KeyCounts, intents: &[Intent]) -> Reconciliation {
    let mut out = Reconciliation::default();
    let n = |id: &str| topo.name(id);

    // Open states on masters (a replica's, which Valkey replicates, follows its master's).
    let mut open: BTreeMap<u16, Vec<(&NodeInfo, bool, &str)>> = BTreeMap::new();
    for m in topo.masters().filter(|m| healthy(topo, m)) {
        for (&s, peer) in &m.migrating {
            open.entry(s).or_default().push((m, true, peer));
        }
        for (&s, peer) in &m.importing {
            open.entry(s).or_default().push((m, false, peer));
        }
    }
    // Where each intended slot should end up, the failed ends followed to their successors.
    let mut meant: BTreeMap<u16, &str> = BTreeMap::new();
    let mut meant_from: BTreeMap<u16, &str> = BTreeMap::new();
    for i in intents {
        for (id, reps) in [(&i.from, &i.from_replicas), (&i.to, &i.to_replicas)] {
            if let Some(s) = successor(topo, id, reps)
                && s.id != *id
                && !out.replaced.iter().any(|(f, _)| f == id)
            {
                out.replaced.push((id.clone(), s.id.clone()));
            }
        }
        if let Some(t) = successor(topo, &i.to, &i.to_replicas) {
            for &s in &i.slots {
                meant.insert(s, t.id.as_str());
                meant_from.insert(s, i.from.as_str());
            }
        }
    }

    // A master that failed (or cannot be reached) while slots were open: it may have been a
    // receiver, and the node importing in its place may be the replica promoted for it (Valkey
    // re-points the source's MIGRATING there). Without an intent such a move goes back to its
    // living source, never on: Valkey 8's clusterUpdateSlotsConfigWith lets a master importing a
    // slot from a sender that no longer claims it take the slot, bumping its epoch without
    // consensus. The dead receiver, restarted from its nodes.conf, would do exactly that, and
    // with that epoch win back all its old slots from its promoted replica (seen in 4 of 8 runs
    // of `failover::fix_after_the_tool_and_a_receiver_died`), dropping what was written since.
    let fallen = topo.masters().find(|m| !healthy(topo, m));
    let mut touched: BTreeSet<u16> = open.keys().copied().collect();
    // An intended slot counts only when some node other than its owner holds keys of it: the
    // move had begun (the open state itself may be gone with a failed node).
    for &s in meant.keys() {
        let own = owners(topo, s);
        if own.len() == 1 && keys.get(&s).is_some_and(|k| k.iter().any(|(id, c)| *c > 0 && *id != own[0].id)) {
            touched.insert(s);
        }
    }

    for s in touched {
        let own = owners(topo, s);
        let [owner] = own.as_slice() else {
            out.unresolved.push((
                s,
                if own.is_empty() {
                    "no reachable master owns it".into()
                } else {
                    format!("claimed by {}", own.iter().map(|o| o.addr.to_string()).collect::<Vec<_>>().join(" and "))
                },
            ));
            continue;
        };
        let states = open.get(&s).cloned().unwrap_or_default();
        let holders: Vec<&str> = keys
            .get(&s)
            .map(|k| k.iter().filter(|(id, c)| **c > 0 && *id != &owner.id).map(|(id, _)| id.as_str()).collect())
            .unwrap_or_default();
        // Where the slot goes: the intent's target (followed through a failover); else, without
        // an intent, the node the owner migrates to (or that node's successor) when it imports
        // the slot or already holds keys of it, as redis-cli's fix finishes a move both ends
        // agree on; else back to the owner.
        let desc = if states.is_empty() {
            "no open state left".to_string()
        } else {
            states
                .iter()
                .map(|(m, mig, peer)| {
                    let (what, dir) = if *mig { ("MIGRATING", "to") } else { ("IMPORTING", "from") };
                    format!("{what} on {} {dir} {}", n(&m.id), n(peer))
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (dest, why): (&str, String) = if let Some(&t) = meant.get(&s) {
            if t == owner.id {
                (owner.id.as_str(), format!("{desc}: {} already owns it, as intended; closed what was left open", n(t)))
            } else {
                (t, format!("{desc}: finished the interrupted move to {}", n(t)))
            }
        } else {
            let target = states
                .iter()
                .find(|(m, mig, _)| *mig && m.id == owner.id)
                .and_then(|(_, _, peer)| successor(topo, peer, &[]).map(|t| (peer, t)));
            match target {
                Some((peer, t))
                    if t.id != owner.id
                        && fallen.is_none()
                        && (t.importing.get(&s) == Some(&owner.id) || holders.contains(&t.id.as_str())) =>
                {
                    let via =
                        if *peer == t.id { String::new() } else { format!(", which took the place of {}", n(peer)) };
                    (
                        t.id.as_str(),
                        format!(
                            "{desc}: the move was finished to {}{via}, as it imports the slot or holds keys of it",
                            n(&t.id)
                        ),
                    )
                }
                Some((_, t)) if t.id != owner.id && owner.migrating.contains_key(&s) && fallen.is_some() => (
                    owner.id.as_str(),
                    format!(
                        "{desc}: {} failed mid-move, so the slot went back to its living source {}{}, where a dead \
                         receiver restarted from its nodes.conf cannot take it back",
                        n(&fallen.expect("guarded").id),
                        n(&owner.id),
                        if holders.is_empty() {
                            String::new()
                        } else {
                            format!(
                                " (keys on {} returned)",
                                holders.iter().map(|h| n(h)).collect::<Vec<_>>().join(", ")
                            )
                        }
                    ),
                ),
                _ => (
                    owner.id.as_str(),
                    if holders.is_empty() {
                        format!("{desc}, nothing moved: closed; {} keeps it", n(&owner.id))
                    } else {
                        format!(
                            "{desc}: keys on {} went back to the owner {}, then the slot was closed",
                            holders.iter().map(|h| n(h)).collect::<Vec<_>>().join(", "),
                            n(&owner.id)
                        )
                    },
                ),
            }
        };
        let mut actions = Vec::new();
        // Is the owner the move's living source, or a replica standing in for a dead one (no
        // MIGRATING of its own, a receiver importing from someone else, an intent naming
        // another source)?
        let source_alive = owner.migrating.contains_key(&s)
            && !states.iter().any(|(m, mig, peer)| !*mig && *peer != owner.id && m.id != owner.id)
            && meant_from.get(&s).is_none_or(|f| *f == owner.id);
        let (owner_wins, other_wins) =
            if source_alive { (Keep::Mover, Keep::Receiver) } else { (Keep::Receiver, Keep::Mover) };
        if dest != owner.id {
            actions.push(Action::Finish { slot: s, from: owner.id.clone(), to: dest.to_string(), keep: owner_wins });
        }
        // Keys elsewhere than the owner and the destination go to the destination.
        for h in holders.iter().filter(|h| **h != dest) {
            let keep = if dest == owner.id { other_wins } else { Keep::Receiver };
            actions.push(Action::ReturnKeys { slot: s, node: (*h).to_string(), owner: dest.to_string(), keep });
        }
        // Open states the Finish does not clear: those on nodes other than its two ends, or all
        // of them when nothing is finished.
        for (m, _, _) in &states {
            let cleared = dest != owner.id && (m.id == owner.id || m.id == dest);
            let returned = holders.contains(&m.id.as_str()) && m.id != dest;
            if !cleared && !returned {
                actions.push(Action::Stable { slot: s, node: m.id.clone() });
            }
        }
        // Views that kept a stale owner because they were importing: a node ignores ownership
        // news for a slot it imports, and one that believes a dead node owns a slot reports
        // cluster_state:fail and refuses its clients (and a MIGRATE to it). Corrected first.
        for m in topo.masters().filter(|m| healthy(topo, m) && m.id != owner.id) {
            let view = topo.views().get(&m.id);
            let believes = view.and_then(|v| v.iter().find(|x| x.is_master() && x.slots.contains(s)));
            if believes.is_none_or(|b| b.id != owner.id) {
                actions.insert(0, Action::Assign { slot: s, node: m.id.clone(), owner: owner.id.clone() });
            }
        }
        out.decisions.push(Decision { slot: s, actions, reason: why });
    }

    // Stranded keys: a healthy master holding keys of a slot it does not own, with nothing open.
    let decided: BTreeSet<u16> =
        out.decisions.iter().map(|d| d.slot).chain(out.unresolved.iter().map(|u| u.0)).collect();
    for (&s, counts) in keys {
        if decided.contains(&s) {
            continue;
        }
        let own = owners(topo, s);
        let [owner] = own.as_slice() else { continue };
        for (id, &c) in counts {
            if c > 0 && *id != owner.id && topo.node(id).is_some_and(|m| healthy(topo, m)) {
                out.decisions.push(Decision {
                    slot: s,
                    // The owner's copy is the one clients have been reading.
                    actions: vec![Action::ReturnKeys {
                        slot: s,
                        node: id.clone(),
                        owner: owner.id.clone(),
                        keep: Keep::Receiver,
                    }],
                    reason: format!("{} held keys of it without owning it (stranded, unreachable by clients): moved to the owner {}", n(id), n(&owner.id)),
                });
            }
        }
    }
    // Open states a replica kept that its master does not have. Valkey leaves a primary's open
    // slots in place when it rejoins its shard as a replica (`clusterSetPrimary` without
    // `closeSlots`: a dead receiver restarted from its nodes.conf), and would act on them were
    // that replica promoted. A replica refuses SETSLOT; its master's SETSLOT STABLE is
    // replicated to it (Valkey 8 replicates every SETSLOT before carrying it out).
    let decided: BTreeSet<u16> =
        out.decisions.iter().map(|d| d.slot).chain(out.unresolved.iter().map(|u| u.0)).collect();
    for r in topo.nodes().iter().filter(|r| topo.is_reachable(&r.id) && !r.is_master()) {
        let Some(m) = r.master_id.as_deref().and_then(|m| topo.node(m)).filter(|m| healthy(topo, m)) else {
            continue;
        };
        let kept = r
            .migrating
            .iter()
            .map(|(s, p)| (*s, "MIGRATING to", p))
            .chain(r.importing.iter().map(|(s, p)| (*s, "IMPORTING from", p)));
        for (s, what, peer) in kept {
            if decided.contains(&s) || m.migrating.contains_key(&s) || m.importing.contains_key(&s) {
                continue;
            }
            out.decisions.push(Decision {
                slot: s,
                actions: vec![Action::Stable { slot: s, node: m.id.clone() }],
                reason: format!(
                    "the replica {} kept {what} {} that its master {} does not have (a restarted master rejoining as a replica keeps its open slots on Valkey): SETSLOT STABLE on {}, which replicates it",
                    n(&r.id),
                    n(peer),
                    n(&m.id),
                    n(&m.id)
                ),
            });
        }
    }
    out.decisions.sort_by_key(|d| d.slot);
    out
}

/// `plan` with each end that failed over replaced by the master now in its place, and the
/// replacements made (failed node, successor), so a re-run carries the operator's intent through
/// a failover: a victim replaced by its replica has that replica drained; a receiver replaced by
/// its replica sends the slots there.
pub fn follow_failovers(topo: &Topology, plan: &crate::plan::Plan) -> (crate::plan::Plan, Vec<(String, String)>) {
    let mut out = plan.clone();
    let mut replaced: Vec<(String, String)> = Vec::new();
    let mut map = |id: &String| -> String {
        let reps = plan.replicas.get(id).cloned().unwrap_or_default();
        match successor(topo, id, &reps) {
            Some(s) if s.id != *id => {
                if !replaced.iter().any(|(f, _)| f == id) {
                    replaced.push((id.clone(), s.id.clone()));
                }
                s.id.clone()
            }
            _ => id.clone(),
        }
    };
    for m in &mut out.moves {
        m.from = map(&m.from);
        m.to = map(&m.to);
    }
    for n in topo.nodes() {
        out.names.entry(n.id.clone()).or_insert_with(|| n.addr.to_string());
    }
    (out, replaced)
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Finish { slot, from, to, .. } => write!(f, "finish {slot} {from}→{to}"),
            Action::ReturnKeys { slot, node, owner, .. } => write!(f, "return keys of {slot} from {node} to {owner}"),
            Action::Stable { slot, node } => write!(f, "stable {slot} on {node}"),
            Action::Assign { slot, node, owner } => write!(f, "assign {slot} to {owner} on {node}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::parse_nodes;

    /// A fault captured on a real cluster (`tests/failover.rs` with `RUNBOOK_CAPTURE_DIR`): each
    /// running node's CLUSTER NODES, and each master's keys in the slots it does not own.
    struct Captured {
        topo: Topology,
        keys: KeyCounts,
    }

    fn captured(name: &str) -> Captured {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/failover").join(name);
        let mut views = BTreeMap::new();
        let mut keys: KeyCounts = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "nodes") {
                let view = parse_nodes(&std::fs::read_to_string(&path).unwrap()).unwrap();
                let me = view.iter().find(|n| n.flags.myself).unwrap().id.clone();
                let counts = std::fs::read_to_string(path.with_extension("keys")).unwrap_or_default();
                for line in counts.lines() {
                    let (slot, n) = line.split_once(' ').unwrap();
                    keys.entry(slot.parse().unwrap()).or_default().insert(me.clone(), n.parse().unwrap());
                }
                views.insert(me, view);
            }
        }
        Captured { topo: Topology::new(views, BTreeMap::new()), keys }
    }

    fn id(t: &Topology, port: u16) -> String {
        t.nodes().iter().find(|n| n.addr.port == port).unwrap().id.clone()
    }

    /// The master every reachable node flags as failed.
    fn dead(t: &Topology) -> String {
        t.failed().into_keys().next().expect("a failed node")
    }

    fn finishes(r: &Reconciliation) -> BTreeMap<(String, String, bool), usize> {
        let mut out = BTreeMap::new();
        for a in r.decisions.iter().flat_map(|d| &d.actions) {
            if let Action::Finish { from, to, keep, .. } = a {
                *out.entry((from.clone(), to.clone(), *keep == Keep::Receiver)).or_default() += 1;
            }
        }
        out
    }

    // A receiver (T) was killed mid-drain and its replica P promoted; the victim V still shows
    // 256 slots MIGRATING to T, and P holds the keys T had received.
    #[test]
    fn a_dead_receiver_is_followed_to_its_promoted_replica_with_the_intent() {
        let fault = captured("receiver-died");
        let (v, p, t) = (id(&fault.topo, 28328), id(&fault.topo, 28334), dead(&fault.topo));
        assert_eq!(unsettled(&fault.topo, &[]), None);
        let intent = Intent {
            from: v.clone(),
            to: t.clone(),
            slots: (12288..12544).collect(),
            to_replicas: vec![p.clone()],
            ..Intent::default()
        };
        let r = reconcile(&fault.topo, &fault.keys, std::slice::from_ref(&intent));
        assert!(r.unresolved.is_empty(), "{:?}", r.unresolved);
        assert_eq!(r.replaced, vec![(t, p.clone())]);
        assert_eq!(
            finishes(&r),
            BTreeMap::from([((v, p, false), 256)]),
            "every open slot goes on to the promoted replica"
        );
    }

    #[test]
    fn without_an_intent_a_move_toward_a_failed_receiver_goes_back_to_its_living_source() {
        let fault = captured("receiver-died");
        let (v, p) = (id(&fault.topo, 28328), id(&fault.topo, 28334));
        let r = reconcile(&fault.topo, &fault.keys, &[]);
        assert!(r.unresolved.is_empty());
        // redis-cli's fix would finish each move whose target holds keys, here at the replica
        // promoted in the dead receiver's place; that leaves the dead node's nodes.conf importing
        // slots its source no longer owns, which Valkey takes back when it is restarted.
        assert!(finishes(&r).is_empty(), "nothing is finished toward the promoted replica");
        let held: BTreeSet<u16> = fault.keys.iter().filter(|(_, k)| k.contains_key(&p)).map(|(s, _)| *s).collect();
        assert!(!held.is_empty());
        let returned: BTreeSet<u16> = r
            .decisions
            .iter()
            .flat_map(|d| &d.actions)
            .filter_map(|a| match a {
                // While the source lives, its copy of a key found on both is the one in use.
                Action::ReturnKeys { slot, node, owner, keep: Keep::Receiver } if *node == p && *owner == v => {
                    Some(*slot)
                }
                _ => None,
            })
            .collect();
        assert_eq!(returned, held, "P's keys go back to V");
        assert_eq!(r.decisions.len(), 256, "every open slot is decided");
        assert!(r.sentences().iter().all(|s| s.contains("went back to its living source")), "{:?}", r.sentences());
    }

    // The victim V was killed mid-drain and its replica P promoted; the receiver T still imports
    // 256 slots from V and, ignoring ownership news for them, believes dead V owns them.
    #[test]
    fn a_dead_victim_is_followed_to_its_promoted_replica_and_the_receivers_view_corrected_first() {
        let fault = captured("victim-died");
        let (t, p, v) = (id(&fault.topo, 28321), id(&fault.topo, 28333), dead(&fault.topo));
        let intent = Intent {
            from: v.clone(),
            to: t.clone(),
            slots: (12288..12544).collect(),
            from_replicas: vec![p.clone()],
            ..Intent::default()
        };
        let r = reconcile(&fault.topo, &fault.keys, std::slice::from_ref(&intent));
        assert!(r.unresolved.is_empty());
        assert_eq!(r.replaced, vec![(v, p.clone())]);
        assert_eq!(
            finishes(&r),
            BTreeMap::from([((p.clone(), t.clone(), true), 256)]),
            "P's copies predate the move: T's win"
        );
        for d in &r.decisions {
            assert_eq!(
                d.actions.first(),
                Some(&Action::Assign { slot: d.slot, node: t.clone(), owner: p.clone() }),
                "slot {}",
                d.slot
            );
        }
    }

    #[test]
    fn without_an_intent_the_importers_keys_go_to_the_promoted_owner_and_win() {
        let fault = captured("victim-died");
        let (t, p) = (id(&fault.topo, 28321), id(&fault.topo, 28333));
        let r = reconcile(&fault.topo, &fault.keys, &[]);
        assert!(r.unresolved.is_empty() && finishes(&r).is_empty());
        for a in r.decisions.iter().flat_map(|d| &d.actions) {
            match a {
                Action::ReturnKeys { node, owner, keep, .. } => {
                    assert!(*node == t && *owner == p && *keep == Keep::Mover, "T's copies are the newer ones");
                }
                Action::Assign { node, owner, .. } => assert!(*node == t && *owner == p),
                Action::Stable { node, .. } => assert_eq!(*node, t),
                Action::Finish { .. } => unreachable!(),
            }
        }
        assert_eq!(r.decisions.len(), 256);
    }

    /// A restarted receiver rejoined as a replica keeping the IMPORTING of its nodes.conf, as
    /// Valkey leaves it (tests/failover.rs, `fix_after_the_tool_and_a_receiver_died`, on Valkey).
    #[test]
    fn a_replica_keeping_an_open_slot_is_closed_through_its_master() {
        let one = parse_nodes(include_str!("../../tests/fixtures/redis7-healthy-4m4r.txt")).unwrap();
        let replica = one.iter().find(|n| !n.is_master()).unwrap().clone();
        let master = replica.master_id.clone().unwrap();
        let source = one.iter().find(|n| n.is_master() && n.id != master).unwrap().id.clone();
        let views = one
            .iter()
            .map(|me| {
                let view = one.iter().cloned().map(|mut n| {
                    n.flags.myself = n.id == me.id;
                    if n.id == replica.id {
                        n.importing.insert(7, source.clone());
                    }
                    n
                });
                (me.id.clone(), view.collect())
            })
            .collect();
        let topo = Topology::new(views, BTreeMap::new());
        let r = reconcile(&topo, &BTreeMap::new(), &[]);
        assert_eq!(r.decisions.len(), 1);
        assert_eq!(r.decisions[0].actions, vec![Action::Stable { slot: 7, node: master }]);
        assert!(r.decisions[0].reason.contains("which replicates it"), "{}", r.decisions[0].reason);
    }

    #[test]
    fn a_healthy_cluster_needs_nothing_and_a_plan_survives_a_failover() {
        // Every node's own view, from one node's reply.
        let one = parse_nodes(include_str!("../../tests/fixtures/redis7-healthy-4m4r.txt")).unwrap();
        let views = one
            .iter()
            .map(|me| {
                let view = one.iter().cloned().map(|mut n| {
                    n.flags.myself = n.id == me.id;
                    n
                });
                (me.id.clone(), view.collect())
            })
            .collect();
        let healthy = Topology::new(views, BTreeMap::new());
        assert_eq!(unsettled(&healthy, &[]), None);
        assert!(reconcile(&healthy, &BTreeMap::new(), &[]).is_empty());

        let fault = captured("victim-died");
        let (t, p, v) = (id(&fault.topo, 28321), id(&fault.topo, 28333), dead(&fault.topo));
        let mut plan = crate::plan::Plan::new(
            "drain",
            &fault.topo,
            vec![crate::plan::Move { slot: 16000, from: v.clone(), to: t.clone() }],
        );
        plan.replicas.insert(v.clone(), vec![p.clone()]);
        let (followed, replaced) = follow_failovers(&fault.topo, &plan);
        assert_eq!(replaced, vec![(v, p.clone())]);
        assert_eq!((followed.moves[0].from.as_str(), followed.moves[0].to.as_str()), (p.as_str(), t.as_str()));
    }
}

//! `Topology`: the cluster as every reachable node sees it — owners, replicas, open slots, failures
//! and where the nodes' views disagree. Built from `CLUSTER NODES` replies; does no I/O itself.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::keyslot::SLOTS;
use super::node::NodeInfo;
use super::slot_set::SlotSet;

/// A slot left half-moved: `MIGRATING` on its owner or `IMPORTING` on a receiver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenSlot {
    pub slot: u16,
    /// The node whose own view shows the state.
    pub node: String,
    /// `"migrating"` or `"importing"`.
    pub state: String,
    /// The other end: the target when migrating, the source when importing.
    pub peer: String,
}

/// How one node's view differs from what the nodes themselves claim.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ViewDiff {
    pub node: String,
    /// Node ids that this node does not know.
    pub missing: Vec<String>,
    /// Node ids that this node knows and no reachable node claims to be.
    pub extra: Vec<String>,
    /// (slots, owner this node believes, owner the slot's holder claims; "" = none)
    pub slots: Vec<(String, String, String)>,
}

impl ViewDiff {
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.extra.is_empty() && self.slots.is_empty()
    }
}

/// The cluster, assembled from each reachable node's own `CLUSTER NODES` reply.
#[derive(Clone, Debug, Default)]
pub struct Topology {
    /// Every node known to any view, one entry each, sorted by address. Where the node was
    /// reachable this is its own `myself` line (the only place open slots appear).
    nodes: Vec<NodeInfo>,
    /// Each reachable node's whole view, by node id.
    views: BTreeMap<String, Vec<NodeInfo>>,
    /// Nodes that could not be read, with the reason.
    unreachable: BTreeMap<String, String>,
}

impl Topology {
    /// `views` maps a reachable node's id to its `CLUSTER NODES` reply; `unreachable` names the
    /// nodes that could not be asked and why.
    pub fn new(views: BTreeMap<String, Vec<NodeInfo>>, unreachable: BTreeMap<String, String>) -> Self {
        let mut by_id: BTreeMap<String, NodeInfo> = BTreeMap::new();
        for view in views.values() {
            for n in view {
                by_id.entry(n.id.clone()).or_insert_with(|| n.clone());
            }
        }
        for (id, view) in &views {
            if let Some(me) = view.iter().find(|n| n.flags.myself && &n.id == id) {
                let mut own = me.clone();
                own.flags.myself = false;
                by_id.insert(id.clone(), own);
            }
        }
        let mut nodes: Vec<NodeInfo> = by_id.into_values().collect();
        nodes.sort_by(|a, b| (&a.addr.host, a.addr.port, &a.id).cmp(&(&b.addr.host, b.addr.port, &b.id)));
        Self { nodes, views, unreachable }
    }

    /// A topology seen from a single reply, as when only one node could be read.
    pub fn from_single_view(nodes: Vec<NodeInfo>) -> Self {
        let id = nodes.iter().find(|n| n.flags.myself).map(|n| n.id.clone()).unwrap_or_default();
        Self::new(BTreeMap::from([(id, nodes)]), BTreeMap::new())
    }

    pub fn nodes(&self) -> &[NodeInfo] {
        &self.nodes
    }

    pub fn node(&self, id: &str) -> Option<&NodeInfo> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// How messages name a node: its address, else (a node no view lists) its id's first 8 characters.
    pub fn name(&self, id: &str) -> String {
        self.node(id).map_or_else(|| id.chars().take(8).collect(), |n| n.addr.to_string())
    }

    pub fn views(&self) -> &BTreeMap<String, Vec<NodeInfo>> {
        &self.views
    }

    pub fn unreachable(&self) -> &BTreeMap<String, String> {
        &self.unreachable
    }

    pub fn is_reachable(&self, id: &str) -> bool {
        self.views.contains_key(id)
    }

    pub fn masters(&self) -> impl Iterator<Item = &NodeInfo> {
        self.nodes.iter().filter(|n| n.is_master())
    }

    pub fn replicas_of<'a>(&'a self, master_id: &'a str) -> impl Iterator<Item = &'a NodeInfo> + 'a {
        self.nodes.iter().filter(move |n| !n.is_master() && n.master_id.as_deref() == Some(master_id))
    }

    /// Masters that hold `slot` by their own account.
    pub fn owners(&self, slot: u16) -> Vec<&NodeInfo> {
        self.masters().filter(|n| n.slots.contains(slot)).collect()
    }

    pub fn owner(&self, slot: u16) -> Option<&NodeInfo> {
        self.owners(slot).into_iter().next()
    }

    /// Slot → owner id, from each master's own claim.
    pub fn slot_map(&self) -> Vec<Option<&str>> {
        let mut map = vec![None; usize::from(SLOTS)];
        for m in self.masters() {
            for s in m.slots.iter() {
                map[usize::from(s)] = Some(m.id.as_str());
            }
        }
        map
    }

    pub fn uncovered(&self) -> SlotSet {
        self.slot_map().iter().enumerate().filter(|(_, o)| o.is_none()).map(|(s, _)| s as u16).collect()
    }

    pub fn open_slots(&self) -> Vec<OpenSlot> {
        let mut out = Vec::new();
        for n in &self.nodes {
            for (&slot, peer) in &n.migrating {
                out.push(OpenSlot { slot, node: n.id.clone(), state: "migrating".into(), peer: peer.clone() });
            }
            for (&slot, peer) in &n.importing {
                out.push(OpenSlot { slot, node: n.id.clone(), state: "importing".into(), peer: peer.clone() });
            }
        }
        out.sort_by_key(|o| o.slot);
        out
    }

    /// Node id → the reachable nodes that flag it `fail` or `fail?`.
    pub fn failed(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (viewer, view) in &self.views {
            for n in view.iter().filter(|n| n.is_failed()) {
                out.entry(n.id.clone()).or_default().push(viewer.clone());
            }
        }
        out
    }

    /// Per node, how its view differs from the nodes' own claims; only nodes that differ.
    pub fn disagreements(&self) -> Vec<ViewDiff> {
        let truth = self.slot_map();
        // Membership is what most views agree on, so a node that still knows a forgotten peer
        // shows an `extra` entry rather than every other node showing it `missing`.
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for view in self.views.values() {
            for n in view.iter().filter(|n| !n.flags.handshake) {
                *votes.entry(n.id.as_str()).or_default() += 1;
            }
        }
        let members: BTreeSet<&str> =
            votes.iter().filter(|(_, v)| **v * 2 >= self.views.len()).map(|(id, _)| *id).collect();
        let mut out = Vec::new();
        for (viewer, view) in &self.views {
            let mut diff = ViewDiff { node: viewer.clone(), ..ViewDiff::default() };
            let known: BTreeSet<&str> = view.iter().filter(|n| !n.flags.handshake).map(|n| n.id.as_str()).collect();
            diff.missing = members.difference(&known).map(|s| (*s).to_string()).collect();
            diff.extra = known.difference(&members).map(|s| (*s).to_string()).collect();
            let mut seen = vec![None; usize::from(SLOTS)];
            for n in view.iter().filter(|n| n.is_master()) {
                for s in n.slots.iter() {
                    seen[usize::from(s)] = Some(n.id.as_str());
                }
            }
            diff.slots = differing_ranges(&seen, &truth);
            if !diff.is_empty() {
                out.push(diff);
            }
        }
        out
    }

    /// What a run leaves, as a dry run predicts it and the live run makes it: each master's slots
    /// (as ranges), every member, and each replica's master, nodes by address. Two equal
    /// summaries are the same outcome.
    pub fn outcome(&self) -> serde_json::Value {
        let addr = |id: &str| self.node(id).map_or_else(|| id.to_string(), |n| n.addr.to_string());
        let masters: BTreeMap<String, String> =
            self.masters().map(|m| (m.addr.to_string(), m.slots.to_string())).collect();
        let replicas: BTreeMap<String, String> = self
            .nodes
            .iter()
            .filter(|n| !n.is_master())
            .map(|n| (n.addr.to_string(), n.master_id.as_deref().map(addr).unwrap_or_default()))
            .collect();
        let mut members: Vec<String> = self.nodes.iter().map(|n| n.addr.to_string()).collect();
        members.sort();
        let mut out = serde_json::json!({ "masters": masters, "replicas": replicas, "members": members });
        let open: BTreeMap<String, String> = self
            .nodes
            .iter()
            .filter(|n| !n.migrating.is_empty() || !n.importing.is_empty())
            .map(|n| (n.addr.to_string(), open_text(self, n)))
            .collect();
        if !open.is_empty() {
            out["open"] = serde_json::json!(open);
        }
        out
    }

    /// A short hash of the slot map, membership, roles and open slots: equal fingerprints mean
    /// the same layout.
    pub fn fingerprint(&self) -> String {
        let mut text = String::new();
        for n in &self.nodes {
            let _ = write!(text, "{}:{}:{}|", n.id, if n.is_master() { "m" } else { "r" }, n.slots);
            // An open slot is a change in progress: a plan made before it is stale.
            if !n.migrating.is_empty() || !n.importing.is_empty() {
                let _ = write!(text, "open:{}|", open_text(self, n));
            }
        }
        // FNV-1a: stable across runs and platforms, unlike the std hasher.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{h:016x}")
    }
}

/// A node's open slots, grouped by state and peer: `migrating 10-13 to 127.0.0.1:6392`.
fn open_text(topo: &Topology, n: &NodeInfo) -> String {
    let mut groups: BTreeMap<(&str, &str), SlotSet> = BTreeMap::new();
    for (s, peer) in &n.migrating {
        groups.entry(("migrating", peer)).or_default().insert(*s);
    }
    for (s, peer) in &n.importing {
        groups.entry(("importing", peer)).or_default().insert(*s);
    }
    groups
        .into_iter()
        .map(|((state, peer), slots)| {
            let dir = if state == "migrating" { "to" } else { "from" };
            format!("{state} {slots} {dir} {}", topo.name(peer))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn differing_ranges(seen: &[Option<&str>], truth: &[Option<&str>]) -> Vec<(String, String, String)> {
    let mut out: Vec<(u16, u16, String, String)> = Vec::new();
    for (slot, (a, b)) in seen.iter().zip(truth).enumerate() {
        if a == b {
            continue;
        }
        let (a, b) = (a.unwrap_or("").to_string(), b.unwrap_or("").to_string());
        let slot = slot as u16;
        match out.last_mut() {
            Some((_, end, pa, pb)) if *end + 1 == slot && *pa == a && *pb == b => *end = slot,
            _ => out.push((slot, slot, a, b)),
        }
    }
    out.into_iter().map(|(s, e, a, b)| (if s == e { s.to_string() } else { format!("{s}-{e}") }, a, b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::node::parse_nodes;

    const HEALTHY: &str = include_str!("../../tests/fixtures/redis7-healthy-4m4r.txt");
    const OTHER: &str = include_str!("../../tests/fixtures/redis7-healthy-4m4r-from-another-node.txt");
    const SRC: &str = include_str!("../../tests/fixtures/redis7-open-slot-source-view.txt");
    const DST: &str = include_str!("../../tests/fixtures/redis7-open-slot-target-view.txt");
    const FAILED_MASTER: &str = include_str!("../../tests/fixtures/redis7-master-failed-after-failover.txt");
    const FAILED_REPLICA: &str = include_str!("../../tests/fixtures/redis7-replica-failed.txt");
    const VALKEY: &str = include_str!("../../tests/fixtures/valkey8-hostnames-3m3r.txt");

    fn view(text: &str) -> (String, Vec<NodeInfo>) {
        let nodes = parse_nodes(text).unwrap();
        (nodes.iter().find(|n| n.flags.myself).unwrap().id.clone(), nodes)
    }

    #[test]
    fn healthy_cluster() {
        let t = Topology::new(BTreeMap::from([view(HEALTHY), view(OTHER)]), BTreeMap::new());
        assert_eq!(t.nodes().len(), 8);
        assert_eq!(t.masters().count(), 4);
        assert!(t.uncovered().is_empty());
        assert!(t.open_slots().is_empty() && t.failed().is_empty() && t.disagreements().is_empty());
        let m = t.owner(0).unwrap();
        assert_eq!(m.addr.port, 27901);
        let replicas: Vec<u16> = t.replicas_of(&m.id).map(|r| r.addr.port).collect();
        assert_eq!(replicas, vec![27907]);
        assert_eq!(t.nodes()[0].addr.port, 27901, "sorted by address");
    }

    #[test]
    fn open_slots_come_from_own_lines() {
        let t = Topology::new(BTreeMap::from([view(SRC), view(DST)]), BTreeMap::new());
        let open = t.open_slots();
        assert_eq!(open.len(), 2);
        assert_eq!((open[0].slot, open[1].slot), (12288, 12288));
        let states: Vec<&str> = open.iter().map(|o| o.state.as_str()).collect();
        assert!(states.contains(&"migrating") && states.contains(&"importing"));
    }

    #[test]
    fn failures_are_reported_with_their_witnesses() {
        let t = Topology::new(BTreeMap::from([view(FAILED_MASTER)]), BTreeMap::new());
        let failed = t.failed();
        assert_eq!(failed.len(), 2);
        assert!(failed.contains_key("7c2e08abc821f5c3969c0cbb5fd0933ba0ad99a5"));
        let promoted = t.owner(8192).unwrap();
        assert_eq!((promoted.addr.port, promoted.config_epoch), (27908, 9));
        let t = Topology::new(BTreeMap::from([view(FAILED_REPLICA)]), BTreeMap::new());
        assert_eq!(t.failed().keys().next().unwrap(), "f5033253968f0241f3e823351efa3c4545c90841");
    }

    #[test]
    fn valkey_hostnames() {
        let t = Topology::from_single_view(parse_nodes(VALKEY).unwrap());
        assert_eq!(t.masters().count(), 3);
        assert!(t.nodes().iter().all(|n| n.addr.hostname.as_deref().unwrap().ends_with(".example.internal")));
        assert!(t.uncovered().is_empty());
    }

    #[test]
    fn disagreement_names_the_node_and_the_slots() {
        let (id_a, a) = view(HEALTHY);
        let (id_b, mut b) = view(OTHER);
        // b believes 27901's first 10 slots have no owner, and has forgotten replica 27905.
        for n in &mut b {
            if n.addr.port == 27901 {
                for s in 0..10 {
                    n.slots.remove(s);
                }
            }
        }
        b.retain(|n| n.addr.port != 27905);
        let t = Topology::new(BTreeMap::from([(id_a, a), (id_b.clone(), b)]), BTreeMap::new());
        let d = t.disagreements();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].node, id_b);
        assert_eq!(d[0].missing, vec!["f5033253968f0241f3e823351efa3c4545c90841".to_string()]);
        assert_eq!(d[0].slots, vec![("0-9".into(), String::new(), "7a7e9f324a4f55d7cdda9f316dd0a662e38f2d8c".into())]);
    }

    #[test]
    fn an_open_slot_changes_the_fingerprint_and_shows_in_the_outcome() {
        let healthy = Topology::from_single_view(parse_nodes(HEALTHY).unwrap());
        let open = Topology::from_single_view(parse_nodes(SRC).unwrap());
        assert_ne!(healthy.fingerprint(), open.fingerprint(), "a plan made before the slot opened is stale");
        assert_eq!(open.outcome()["open"]["127.0.0.1:27904"], "migrating 12288 to 127.0.0.1:27901");
        assert!(healthy.outcome().get("open").is_none(), "no open slot, no entry");
    }

    #[test]
    fn fingerprint_tracks_the_slot_map() {
        let a = Topology::from_single_view(parse_nodes(HEALTHY).unwrap());
        let b = Topology::from_single_view(parse_nodes(OTHER).unwrap());
        assert_eq!(a.fingerprint(), b.fingerprint());
        let c = Topology::from_single_view(parse_nodes(FAILED_MASTER).unwrap());
        assert_ne!(a.fingerprint(), c.fingerprint());
    }
}

//! The simulated backend for `--dry-run`: the live topology read once, read-only (with per-slot
//! key counts), then every mutating primitive changes this copy instead of the cluster and
//! records what it would have done, so later steps see the state earlier steps would produce.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::model::{Addr, NodeInfo, SLOTS, SlotSet, Topology, describe};
use crate::ops::{Cluster, MoveOpts, MoveStats, NodeStats, Retire, SetSlot};
use crate::plan::Batch;

struct State {
    /// One consistent view: in a simulation every node agrees at once.
    nodes: Vec<NodeInfo>,
    unreachable: BTreeMap<String, String>,
    keys: Vec<u64>,
    stats: BTreeMap<String, NodeStats>,
    steps: Vec<(String, Vec<String>)>,
    /// `cluster-allow-replica-migration` as the servers have it: with it (the default) a master
    /// that loses its last slot becomes a replica of the node that took it; without, it stays
    /// an empty master.
    replica_migration: bool,
}

pub struct SimCluster {
    /// Used for reads of nodes not yet in the cluster (add_node's probe); never for a change.
    live: Arc<dyn Cluster>,
    state: Mutex<State>,
}

impl SimCluster {
    /// Reads the live cluster once: topology, statistics, keys per slot.
    pub fn from_live(live: Arc<dyn Cluster>) -> Result<Self> {
        let topo = live.topology()?;
        let stats = live.stats(&topo)?;
        let mut keys = vec![0u64; usize::from(SLOTS)];
        for m in topo.masters().filter(|m| topo.is_reachable(&m.id) && !m.slots.is_empty()) {
            let slots: Vec<u16> = m.slots.iter().collect();
            for (s, n) in slots.iter().zip(live.count_keys(m, &slots)?) {
                keys[usize::from(*s)] = n;
            }
        }
        let replica_migration = match topo.masters().find(|m| topo.is_reachable(&m.id)) {
            Some(m) => {
                let args = ["CONFIG", "GET", "cluster-allow-replica-migration"].map(String::from);
                let reply = live.call(m, &args).unwrap_or_default();
                reply[1].as_str().or_else(|| reply["cluster-allow-replica-migration"].as_str()) != Some("no")
            }
            None => true,
        };
        let state = State {
            replica_migration,
            nodes: topo.nodes().to_vec(),
            unreachable: topo.unreachable().clone(),
            keys,
            stats,
            steps: vec![("(before any step)".into(), Vec::new())],
        };
        Ok(Self { live, state: Mutex::new(state) })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn record(&self, action: String) {
        self.state().steps.last_mut().expect("always one step").1.push(action);
    }

    /// Every action the run would have taken, grouped by step.
    pub fn report(&self) -> String {
        let st = self.state();
        let steps: Vec<&(String, Vec<String>)> = st.steps.iter().filter(|(_, a)| !a.is_empty()).collect();
        let total: usize = steps.iter().map(|(_, a)| a.len()).sum();
        let mut out = format!("dry run: the cluster was not changed; the run would take {total} action(s):\n");
        for (i, (label, actions)) in steps.iter().enumerate() {
            out.push_str(&format!("  [{}] {label}\n", i + 1));
            for a in actions {
                out.push_str(&format!("      {a}\n"));
            }
        }
        out
    }

    fn name_of(st: &State, id: &str) -> String {
        st.nodes.iter().find(|n| n.id == id).map_or_else(|| id.chars().take(8).collect(), |n| n.addr.to_string())
    }
}

impl Cluster for SimCluster {
    fn name(&self) -> String {
        format!("dry run of {}", self.live.name())
    }

    fn is_dry_run(&self) -> bool {
        true
    }

    fn out(&self) -> &crate::output::Output {
        self.live.out()
    }

    fn begin_step(&self, label: &str) {
        self.state().steps.push((label.to_string(), Vec::new()));
    }

    fn topology(&self) -> Result<Topology> {
        let st = self.state();
        let views = st
            .nodes
            .iter()
            .filter(|n| !st.unreachable.contains_key(&n.id))
            .map(|me| {
                let view = st
                    .nodes
                    .iter()
                    .map(|n| {
                        let mut n = n.clone();
                        n.flags.myself = n.id == me.id;
                        n
                    })
                    .collect();
                (me.id.clone(), view)
            })
            .collect();
        Ok(Topology::new(views, st.unreachable.clone()))
    }

    fn stats(&self, topo: &Topology) -> Result<BTreeMap<String, NodeStats>> {
        let st = self.state();
        Ok(topo
            .nodes()
            .iter()
            .filter(|n| topo.is_reachable(&n.id))
            .map(|n| {
                let mut s = st.stats.get(&n.id).cloned().unwrap_or_default();
                s.cluster_state = Some("ok".into());
                if n.is_master() {
                    s.keys = Some(n.slots.iter().map(|slot| st.keys[usize::from(slot)]).sum());
                }
                (n.id.clone(), s)
            })
            .collect())
    }

    fn count_keys(&self, node: &NodeInfo, slots: &[u16]) -> Result<Vec<u64>> {
        let st = self.state();
        let own = st.nodes.iter().find(|n| n.id == node.id).map(|n| n.slots.clone()).unwrap_or_default();
        Ok(slots.iter().map(|&s| if own.contains(s) { st.keys[usize::from(s)] } else { 0 }).collect())
    }

    fn move_slots(&self, _topo: &Topology, batch: &Batch, _opts: &MoveOpts) -> Result<MoveStats> {
        let mut st = self.state();
        let (Some(si), Some(di)) =
            (st.nodes.iter().position(|n| n.id == batch.from), st.nodes.iter().position(|n| n.id == batch.to))
        else {
            return Err(Error::refused("a node of this move is not in the cluster", None));
        };
        let mut stats = MoveStats::default();
        for &slot in &batch.slots {
            if !st.nodes[si].slots.contains(slot) && !st.nodes[di].slots.contains(slot) {
                return Err(Error::refused(format!("slot {slot} is owned by neither end of the move"), None));
            }
            st.nodes[si].slots.remove(slot);
            st.nodes[di].slots.insert(slot);
            stats.slots += 1;
            stats.keys += st.keys[usize::from(slot)];
        }
        // Memory goes with the keys, at the source's bytes per key as first read (the estimate
        // the memory_headroom gate uses), so a later check shows what the move would leave.
        stats.bytes = stats.keys * st.stats.get(&batch.from).map_or(0, NodeStats::bytes_per_key);
        if let Some(s) = st.stats.get_mut(&batch.from) {
            s.used_memory = s.used_memory.map(|m| m.saturating_sub(stats.bytes));
            s.keys = s.keys.map(|k| k.saturating_sub(stats.keys));
        }
        if let Some(s) = st.stats.get_mut(&batch.to) {
            s.used_memory = s.used_memory.map(|m| m + stats.bytes);
            s.keys = s.keys.map(|k| k + stats.keys);
        }
        // A master that loses its last slot becomes a replica of the node that took it, and its
        // replicas follow, when the servers allow replica migration (Redis 7 and Valkey do by
        // default).
        if st.replica_migration && st.nodes[si].slots.is_empty() && st.nodes[si].is_master() {
            let (from, to) = (st.nodes[si].id.clone(), st.nodes[di].id.clone());
            for n in st.nodes.iter_mut().filter(|n| n.id == from || n.master_id.as_deref() == Some(&from)) {
                n.flags.master = false;
                n.flags.replica = true;
                n.master_id = Some(to.clone());
            }
        }
        let slots: SlotSet = batch.slots.iter().copied().collect();
        let action = format!(
            "move {} slot(s) {slots} ({} keys) {} → {}",
            stats.slots,
            stats.keys,
            Self::name_of(&st, &batch.from),
            Self::name_of(&st, &batch.to)
        );
        drop(st);
        self.record(action);
        Ok(stats)
    }

    fn setslot(&self, node: &NodeInfo, slots: &[u16], how: &SetSlot) -> Result<()> {
        let mut st = self.state();
        if let Some(n) = st.nodes.iter_mut().find(|n| n.id == node.id) {
            for s in slots {
                n.migrating.remove(s);
                n.importing.remove(s);
            }
        }
        let s: SlotSet = slots.iter().copied().collect();
        let what = match how {
            SetSlot::Stable => "STABLE".to_string(),
            SetSlot::Node(id) => format!("NODE {}", Self::name_of(&st, id)),
            SetSlot::Importing(id) => format!("IMPORTING {}", Self::name_of(&st, id)),
        };
        drop(st);
        self.record(format!("CLUSTER SETSLOT {s} {what} on {}", node.addr));
        Ok(())
    }

    fn move_keys(&self, from: &NodeInfo, to: &NodeInfo, slot: u16, _opts: &MoveOpts) -> Result<u64> {
        self.record(format!("move the keys of slot {slot} from {} to {}", from.addr, to.addr));
        Ok(0)
    }

    fn forget(&self, on: &[NodeInfo], id: &str) -> Vec<(String, Result<()>)> {
        let mut st = self.state();
        let name = st.nodes.iter().find(|n| n.id == id).map_or_else(|| id.to_string(), describe);
        // The refusals the servers give: a node cannot forget itself, nor a replica its master.
        let outcomes: Vec<(String, Result<()>)> = on
            .iter()
            .map(|n| {
                let master = st.nodes.iter().find(|x| x.id == n.id).and_then(|x| x.master_id.as_deref());
                let refusal = if n.id == id {
                    Some("ERR I tried hard but I can't forget myself...")
                } else if master == Some(id) {
                    Some("ERR Can't forget my master!")
                } else {
                    None
                };
                let r = refusal.map_or(Ok(()), |reason| {
                    Err(Error::Command {
                        node: n.addr.to_string(),
                        command: "CLUSTER FORGET".into(),
                        reason: reason.into(),
                        state: None,
                    })
                });
                (n.id.clone(), r)
            })
            .collect();
        if outcomes.iter().all(|(_, r)| r.is_ok()) {
            st.nodes.retain(|n| n.id != id);
            st.unreachable.remove(id);
        }
        drop(st);
        self.record(format!("CLUSTER FORGET {name} on {} node(s), in parallel", on.len()));
        outcomes
    }

    fn replicate(&self, replica: &NodeInfo, master_id: &str) -> Result<()> {
        let mut st = self.state();
        let master = Self::name_of(&st, master_id);
        if let Some(n) = st.nodes.iter_mut().find(|n| n.id == replica.id) {
            n.flags.master = false;
            n.flags.replica = true;
            n.master_id = Some(master_id.to_string());
        }
        drop(st);
        self.record(format!("CLUSTER REPLICATE: {} becomes a replica of {master}", replica.addr));
        Ok(())
    }

    fn retire(&self, node: &NodeInfo, how: Retire) -> Result<()> {
        match how {
            Retire::Reset => self.record(format!("CLUSTER RESET SOFT on {}", node.addr)),
            Retire::ResetHard => self.record(format!("CLUSTER RESET HARD on {} (a new id)", node.addr)),
            Retire::Shutdown => self.record(format!("SHUTDOWN {}", node.addr)),
            Retire::Keep => self.record(format!("leave {} running", node.addr)),
        }
        Ok(())
    }

    fn call(&self, node: &NodeInfo, args: &[String]) -> Result<serde_json::Value> {
        // A read is answered by the real node (it changes nothing); anything else is only recorded.
        if crate::ops::command::kind(args) == crate::ops::command::CommandKind::Read {
            return self.live.call(node, args);
        }
        let cmd = crate::ops::command::command_name(args);
        self.record(format!("{cmd}{} on {} (not sent)", if args.len() > 1 { " …" } else { "" }, node.addr));
        Ok(serde_json::Value::Null)
    }

    fn probe(&self, addr: &Addr) -> Result<(String, usize, u64)> {
        self.live.probe(addr)
    }

    fn meet(&self, on: &[NodeInfo], addr: &Addr) -> Result<()> {
        let (id, _, _) = self.live.probe(addr)?;
        let mut st = self.state();
        st.nodes.push(NodeInfo {
            id,
            addr: addr.clone(),
            flags: crate::model::Flags { master: true, ..Default::default() },
            master_id: None,
            ping_sent: 0,
            pong_recv: 0,
            config_epoch: 0,
            connected: true,
            slots: SlotSet::new(),
            migrating: BTreeMap::new(),
            importing: BTreeMap::new(),
        });
        drop(st);
        self.record(format!("CLUSTER MEET {addr} on {} node(s)", on.len()));
        Ok(())
    }

    fn denied(&self, node: &NodeInfo, probes: &[(&str, &[&str])]) -> Result<Vec<(String, String)>> {
        // The probes change nothing, so a dry run proves the permissions as the real run would.
        self.live.denied(node, probes)
    }

    fn largest_keys(&self, node: &NodeInfo, slots: &[u16]) -> Result<Vec<(String, u64)>> {
        // Reads only: the live cluster answers for keys that have not "moved" yet.
        self.live.largest_keys(node, slots)
    }

    fn node_timeout_ms(&self, topo: &Topology) -> Result<Option<u64>> {
        self.live.node_timeout_ms(topo)
    }

    fn canary(&self, src: &NodeInfo, dst: &NodeInfo, _key: &str) -> Result<std::result::Result<(), String>> {
        // It writes a key, so a dry run only says it would try.
        self.record(format!("canary MIGRATE {} → {} (not tried in a dry run)", src.addr, dst.addr));
        Ok(Ok(()))
    }

    fn pause(&self, _d: Duration) -> Result<()> {
        Ok(())
    }
}

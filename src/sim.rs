//! The simulated backend for `--dry-run`: every node's own view of the live cluster, read once,
//! then changed as the servers would change them. Mutating primitives apply the same protocol as
//! the live run (`ops::slot_move`) to these views, with the servers' refusals and their reactions
//! (an importing node's epoch bump spreading by gossip, a master emptied of slots following the
//! node that took them), and record what they would have done. Reads of keys go to the live nodes
//! until the simulation has moved keys of that slot.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::error::{Error, Result, ServerReply};
use crate::model::{Addr, NodeInfo, SlotSet, Topology, describe};
use crate::ops::{Cluster, MoveOpts, MoveStats, NodeStats, Retire, SetSlot, SlotSteps};
use crate::plan::Batch;

struct State {
    /// Each reachable node's own `CLUSTER NODES`, by its id.
    views: BTreeMap<String, Vec<NodeInfo>>,
    unreachable: BTreeMap<String, String>,
    /// Keys a node holds in a slot, for the (node, slot) pairs whose keys this simulation moved;
    /// the others are read from the live node on first use.
    keys: BTreeMap<(String, u16), u64>,
    stats: BTreeMap<String, NodeStats>,
    steps: Vec<(String, Vec<String>)>,
    /// `cluster-allow-replica-migration` as the servers have it: with it (the default) a master
    /// that loses its last slot becomes a replica of the node that took it; without, it stays
    /// an empty master.
    replica_migration: bool,
    /// Slots a node claimed without a bump (`SetSlot::Claim`), which the others learn from its
    /// next bump's PONG.
    claims: BTreeMap<String, std::collections::BTreeSet<u16>>,
}

impl State {
    fn me(&self, id: &str) -> Option<&NodeInfo> {
        self.views.get(id)?.iter().find(|n| n.id == id)
    }

    fn me_mut(&mut self, id: &str) -> Option<&mut NodeInfo> {
        self.views.get_mut(id)?.iter_mut().find(|n| n.id == id)
    }

    /// Who owns `slot` as `viewer` sees it.
    fn owner_in(&self, viewer: &str, slot: u16) -> Option<String> {
        let view = self.views.get(viewer)?;
        view.iter().find(|n| n.is_master() && n.slots.contains(slot)).map(|n| n.id.clone())
    }

    fn knows(&self, viewer: &str, id: &str) -> bool {
        self.views.get(viewer).is_some_and(|v| v.iter().any(|n| n.id == id))
    }

    fn set_owner(&mut self, viewer: &str, slot: u16, owner: &str) {
        if let Some(view) = self.views.get_mut(viewer) {
            for n in view.iter_mut() {
                if n.id == owner {
                    n.slots.insert(slot);
                } else {
                    n.slots.remove(slot);
                }
            }
        }
    }

    /// `id` becomes a replica of `master` in every view (its new role spreads by gossip at once,
    /// as far as a rehearsal can tell), and closes its open slots, as `clusterSetMaster` does.
    fn follow(&mut self, id: &str, master: &str) {
        for view in self.views.values_mut() {
            if let Some(n) = view.iter_mut().find(|n| n.id == id) {
                n.flags.master = false;
                n.flags.replica = true;
                n.master_id = Some(master.to_string());
                n.slots = SlotSet::new();
                n.migrating.clear();
                n.importing.clear();
            }
        }
    }

    /// Slots each node claims in its own view.
    fn own_slot_counts(&self) -> BTreeMap<String, usize> {
        self.views.keys().map(|id| (id.clone(), self.me(id).map_or(0, |n| n.slots.len()))).collect()
    }

    /// After `taker` took slots: a master its own view leaves without slots follows `taker`, and
    /// so do the replicas of such a master (`clusterUpdateSlotsConfigWith`: with replica
    /// migration allowed, or when `taker` holds exactly the slots it took from that master).
    fn reconfigure(&mut self, taker: &str, before: &BTreeMap<String, usize>) {
        let taker_slots = self.me(taker).map_or(0, |n| n.slots.len());
        let emptied: Vec<String> = before
            .iter()
            .filter(|(id, had)| {
                **had > 0
                    && id.as_str() != taker
                    && self.me(id).is_some_and(|n| n.is_master() && n.slots.is_empty())
                    && (self.replica_migration || taker_slots == **had)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for m in &emptied {
            let replicas: Vec<String> = self
                .views
                .keys()
                .filter(|r| self.me(r).and_then(|n| n.master_id.as_deref()) == Some(m.as_str()))
                .cloned()
                .collect();
            self.follow(m, taker);
            for r in replicas {
                self.follow(&r, taker);
            }
        }
    }

    /// `CLUSTER SETSLOT slot <how>` on `node`, as the server would take it: its refusal, if any,
    /// in the words of Redis 7.0 (checked against redis-server 7.0.15).
    /// `holds` is how many keys the node holds in the slot.
    fn setslot(&mut self, node: &str, slot: u16, how: &SetSlot, holds: u64) -> Option<String> {
        let me = self.me(node)?;
        if !me.is_master() {
            return Some("ERR Please use SETSLOT only with masters.".into());
        }
        if let Some(peer) = how.peer()
            && !self.knows(node, peer)
        {
            return Some(format!("ERR Unknown node {peer}"));
        }
        let owner = self.owner_in(node, slot);
        let mine = owner.as_deref() == Some(node);
        let me = self.me_mut(node)?;
        match how {
            SetSlot::Migrating(to) if mine => {
                me.migrating.insert(slot, to.clone());
            }
            SetSlot::Migrating(_) => return Some(format!("ERR I'm not the owner of hash slot {slot}")),
            SetSlot::Importing(_) if mine => return Some(format!("ERR I'm already the owner of hash slot {slot}")),
            SetSlot::Importing(from) => {
                me.importing.insert(slot, from.clone());
            }
            SetSlot::Stable => {
                me.migrating.remove(&slot);
                me.importing.remove(&slot);
                // Valkey replicates a primary's SETSLOT to its replicas; a replica can hold an
                // open state only there (Redis closes them when a master turns replica).
                let replicas: Vec<String> = self
                    .views
                    .keys()
                    .filter(|r| self.me(r).and_then(|n| n.master_id.as_deref()) == Some(node))
                    .cloned()
                    .collect();
                for r in replicas {
                    if let Some(rep) = self.me_mut(&r) {
                        rep.migrating.remove(&slot);
                        rep.importing.remove(&slot);
                    }
                }
            }
            SetSlot::Node(to) => {
                if mine && to != node && holds > 0 {
                    return Some(format!(
                        "ERR Can't assign hashslot {slot} to a different node while I still hold keys for this hash slot."
                    ));
                }
                me.migrating.remove(&slot);
                let was_importing = me.importing.remove(&slot).is_some();
                self.set_owner(node, slot, to);
                // Taking a slot it imported, a node bumps its epoch and says so at once, its PONG
                // naming every slot it claims: every node takes each of them but one it is
                // importing itself (it ignores claims on it).
                if to == node && was_importing {
                    let mut news = self.claims.remove(node).unwrap_or_default();
                    news.insert(slot);
                    let listeners: Vec<String> = self.views.keys().filter(|v| v.as_str() != node).cloned().collect();
                    for v in listeners {
                        for &s in &news {
                            if self.me(&v).is_some_and(|n| !n.importing.contains_key(&s)) {
                                self.set_owner(&v, s, to);
                            }
                        }
                    }
                }
            }
            SetSlot::Claim(to) => {
                // STABLE, then NODE of a slot no longer open: this view only, no bump; the others
                // learn a node's claim from its next bump's PONG.
                me.migrating.remove(&slot);
                me.importing.remove(&slot);
                if mine && to != node && holds > 0 {
                    return Some(format!(
                        "ERR Can't assign hashslot {slot} to a different node while I still hold keys for this hash slot."
                    ));
                }
                self.set_owner(node, slot, to);
                if to == node {
                    self.claims.entry(node.to_string()).or_default().insert(slot);
                }
            }
        }
        None
    }

    /// The ids of the nodes still in the cluster: reachable, and known to another member (a
    /// node that every other one forgot is out, whatever it still believes).
    fn members(&self) -> Vec<String> {
        self.views
            .keys()
            .filter(|id| {
                self.views.len() == 1
                    || self.views.iter().any(|(v, view)| v != *id && view.iter().any(|n| &n.id == *id))
            })
            .cloned()
            .collect()
    }
}

/// The masters' bars before and after, side by side; `None` when no slot would move.
fn slot_maps(before: &Topology, after: &Topology, colour: bool) -> Option<String> {
    let owned = |t: &Topology| -> BTreeMap<String, SlotSet> {
        t.masters().map(|m| (m.addr.to_string(), m.slots.clone())).collect()
    };
    crate::ops::slot_map::before_after(&owned(before), &owned(after), colour)
}

pub struct SimCluster {
    /// Used for reads (keys not moved yet, add_node's probe); never for a change.
    live: Arc<dyn Cluster>,
    /// The cluster as read at the start, for the slot map before and after.
    before: Topology,
    state: Mutex<State>,
}

impl SimCluster {
    /// Reads the live cluster once: every node's view, and its statistics.
    pub fn from_live(live: Arc<dyn Cluster>) -> Result<Self> {
        let topo = live.topology()?;
        let stats = live.stats(&topo)?;
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
            views: topo.views().clone(),
            unreachable: topo.unreachable().clone(),
            keys: BTreeMap::new(),
            stats,
            steps: vec![("(before any step)".into(), Vec::new())],
            claims: BTreeMap::new(),
        };
        Ok(Self { live, before: topo, state: Mutex::new(state) })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn record(&self, action: String) {
        self.state().steps.last_mut().expect("always one step").1.push(action);
    }

    /// Every action the run would have taken, grouped by step, then the slot map before and
    /// after when the run would move slots (`colour`: one colour per master).
    pub fn report(&self, colour: bool) -> String {
        let mut out = self.actions();
        if let Some(map) = self.topology().ok().and_then(|after| slot_maps(&self.before, &after, colour)) {
            out.push_str(&map);
        }
        out
    }

    fn actions(&self) -> String {
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
        st.views
            .values()
            .flat_map(|v| v.iter())
            .find(|n| n.id == id)
            .map_or_else(|| id.chars().take(8).collect(), |n| n.addr.to_string())
    }

    /// Keys `node` holds in each of `slots`: as moved by this simulation, else as the live node
    /// says (read once).
    fn keys(&self, node: &NodeInfo, slots: &[u16]) -> Result<Vec<u64>> {
        let missing: Vec<u16> = {
            let st = self.state();
            slots.iter().copied().filter(|s| !st.keys.contains_key(&(node.id.clone(), *s))).collect()
        };
        if !missing.is_empty() {
            let read = self.live.count_keys(node, &missing)?;
            let mut st = self.state();
            for (s, n) in missing.into_iter().zip(read) {
                st.keys.entry((node.id.clone(), s)).or_insert(n);
            }
        }
        let st = self.state();
        Ok(slots.iter().map(|s| st.keys[&(node.id.clone(), *s)]).collect())
    }

    fn reachable(st: &State, node: &NodeInfo) -> Result<()> {
        match st.unreachable.get(&node.id) {
            Some(why) => Err(Error::refused(format!("{} does not answer: {why}", node.addr), None)),
            None if st.views.contains_key(&node.id) => Ok(()),
            None => Err(Error::refused(format!("{} is not in the cluster", node.addr), None)),
        }
    }

    /// `CLUSTER SETSLOT` of each slot on `node`, applied to the views; per slot, the refusal.
    fn apply_setslot(&self, node: &NodeInfo, slots: &[u16], how: &SetSlot) -> Result<Vec<Option<ServerReply>>> {
        Self::reachable(&self.state(), node)?;
        let holds = match how {
            SetSlot::Node(_) | SetSlot::Claim(_) => self.keys(node, slots)?,
            _ => vec![0; slots.len()],
        };
        let mut st = self.state();
        let before = st.own_slot_counts();
        let replies =
            slots.iter().zip(holds).map(|(&s, h)| st.setslot(&node.id, s, how, h).map(ServerReply::new)).collect();
        if let SetSlot::Node(to) = how {
            st.reconfigure(to, &before);
        }
        Ok(replies)
    }

    /// MIGRATE of every key `from` holds in `slots` to `to`, applied to the key counts and the
    /// statistics; refused, as by the server, for a slot `from` neither owns nor has open.
    fn apply_migrate(&self, from: &NodeInfo, to: &NodeInfo, slots: &[u16]) -> Result<u64> {
        let counts = self.keys(from, slots)?;
        let _ = self.keys(to, slots)?;
        let mut st = self.state();
        Self::reachable(&st, from)?;
        let mut moved = 0;
        for (&slot, n) in slots.iter().zip(counts) {
            if n == 0 {
                continue;
            }
            let open =
                st.me(&from.id).is_some_and(|m| m.migrating.contains_key(&slot) || m.importing.contains_key(&slot));
            if !open && st.owner_in(&from.id, slot).as_deref() != Some(from.id.as_str()) {
                let owner = st.owner_in(&from.id, slot).map(|o| Self::name_of(&st, &o)).unwrap_or_default();
                return Err(Error::Command {
                    node: from.addr.to_string(),
                    command: "MIGRATE".into(),
                    reason: format!("MOVED {slot} {owner}"),
                    state: None,
                });
            }
            st.keys.insert((from.id.clone(), slot), 0);
            *st.keys.entry((to.id.clone(), slot)).or_insert(0) += n;
            moved += n;
        }
        // Memory goes with the keys, at the source's bytes per key as first read (the estimate
        // the memory_headroom gate uses), so a later check shows what the move would leave.
        let bytes = moved * st.stats.get(&from.id).map_or(0, NodeStats::bytes_per_key);
        if let Some(s) = st.stats.get_mut(&from.id) {
            s.used_memory = s.used_memory.map(|m| m.saturating_sub(bytes));
            s.keys = s.keys.map(|k| k.saturating_sub(moved));
        }
        if let Some(s) = st.stats.get_mut(&to.id) {
            s.used_memory = s.used_memory.map(|m| m + bytes);
            s.keys = s.keys.map(|k| k + moved);
        }
        Ok(moved)
    }
}

/// The slot-move protocol's steps applied to the simulation; recorded as one move, not step by step.
struct SimSteps<'a>(&'a SimCluster);

impl SlotSteps for SimSteps<'_> {
    fn setslot(&self, node: &NodeInfo, slots: &[u16], how: &SetSlot) -> Result<Vec<Option<ServerReply>>> {
        self.0.apply_setslot(node, slots, how)
    }

    fn count_keys(&self, node: &NodeInfo, slots: &[u16]) -> Result<Vec<u64>> {
        self.0.keys(node, slots)
    }

    fn migrate_keys(&self, src: &NodeInfo, dst: &NodeInfo, slots: &[u16], _opts: &MoveOpts) -> Result<MoveStats> {
        let keys = self.0.apply_migrate(src, dst, slots)?;
        let bytes = keys * self.0.state().stats.get(&src.id).map_or(0, NodeStats::bytes_per_key);
        Ok(MoveStats { keys, bytes, ..MoveStats::default() })
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
        let views = st.members().into_iter().map(|id| (id.clone(), st.views[&id].clone())).collect();
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
                (n.id.clone(), s)
            })
            .collect())
    }

    fn count_keys(&self, node: &NodeInfo, slots: &[u16]) -> Result<Vec<u64>> {
        self.keys(node, slots)
    }

    fn move_slots(&self, topo: &Topology, batch: &Batch, opts: &MoveOpts, phase: &dyn Fn(&str)) -> Result<MoveStats> {
        let slots: SlotSet = batch.slots.iter().copied().collect();
        let stats = crate::ops::slot_move::move_slots(&SimSteps(self), topo, batch, opts, phase)?;
        let st = self.state();
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
        let what = {
            let st = self.state();
            how.peer().map_or_else(|| how.word().to_string(), |p| format!("{} {}", how.word(), Self::name_of(&st, p)))
        };
        let s: SlotSet = slots.iter().copied().collect();
        self.record(format!("CLUSTER SETSLOT {s} {what} on {}", node.addr));
        crate::ops::slot_move::setslot_all(&SimSteps(self), node, slots, how)
    }

    fn move_keys(&self, from: &NodeInfo, to: &NodeInfo, slot: u16, _opts: &MoveOpts) -> Result<u64> {
        self.record(format!("move the keys of slot {slot} from {} to {}", from.addr, to.addr));
        self.apply_migrate(from, to, &[slot])
    }

    fn forget(&self, on: &[NodeInfo], id: &str) -> Vec<(String, Result<()>)> {
        let mut st = self.state();
        let name =
            st.views.values().flat_map(|v| v.iter()).find(|n| n.id == id).map_or_else(|| id.to_string(), describe);
        // The refusals the servers give: a node cannot forget itself, nor a replica its master,
        // nor a node it does not know.
        let outcomes: Vec<(String, Result<()>)> = on
            .iter()
            .map(|n| {
                let refusal = if let Some(why) = st.unreachable.get(&n.id) {
                    Some(format!("{} does not answer: {why}", n.addr))
                } else if n.id == id {
                    Some("ERR I tried hard but I can't forget myself...".into())
                } else if st.me(&n.id).and_then(|m| m.master_id.as_deref()) == Some(id) {
                    Some("ERR Can't forget my master!".into())
                } else if !st.knows(&n.id, id) {
                    Some(format!("ERR Unknown node {id}"))
                } else {
                    None
                };
                if refusal.is_none()
                    && let Some(view) = st.views.get_mut(&n.id)
                {
                    view.retain(|x| x.id != id);
                }
                let r = refusal.map_or(Ok(()), |reason| {
                    Err(Error::Command {
                        node: n.addr.to_string(),
                        command: "CLUSTER FORGET".into(),
                        reason,
                        state: None,
                    })
                });
                (n.id.clone(), r)
            })
            .collect();
        if !st.views.values().any(|v| v.iter().any(|n| n.id == id)) {
            st.unreachable.remove(id);
        }
        drop(st);
        self.record(format!("CLUSTER FORGET {name} on {} node(s), in parallel", on.len()));
        outcomes
    }

    fn replicate(&self, replica: &NodeInfo, master_id: &str) -> Result<()> {
        let mut st = self.state();
        let master = Self::name_of(&st, master_id);
        let refusal = match st.me(&replica.id) {
            None => Some(format!("{} is not in the cluster", replica.addr)),
            Some(_) if !st.knows(&replica.id, master_id) => Some(format!("ERR Unknown node {master_id}")),
            Some(me) if me.is_master() && !me.slots.is_empty() => {
                Some("ERR To set a master the node must be empty and without assigned slots.".into())
            }
            Some(_) if st.me(master_id).is_some_and(|m| !m.is_master()) => {
                Some("ERR I can only replicate a master, not a replica.".into())
            }
            Some(_) => None,
        };
        if refusal.is_none() {
            st.follow(&replica.id, master_id);
        }
        drop(st);
        self.record(format!("CLUSTER REPLICATE: {} becomes a replica of {master}", replica.addr));
        refusal.map_or(Ok(()), |reason| {
            Err(Error::Command {
                node: replica.addr.to_string(),
                command: "CLUSTER REPLICATE".into(),
                reason,
                state: None,
            })
        })
    }

    fn retire(&self, node: &NodeInfo, how: Retire) -> Result<()> {
        match how {
            Retire::Reset => self.record(format!("CLUSTER RESET SOFT on {}", node.addr)),
            Retire::ResetHard => self.record(format!("CLUSTER RESET HARD on {} (a new id)", node.addr)),
            Retire::Shutdown => self.record(format!("SHUTDOWN {}", node.addr)),
            Retire::Keep => self.record(format!("leave {} running", node.addr)),
        }
        // A reset node knows only itself; a stopped one nothing: either way its view of the
        // cluster is gone.
        if how != Retire::Keep {
            self.state().views.remove(&node.id);
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
        let new = NodeInfo {
            id: id.clone(),
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
        };
        let mut st = self.state();
        // By gossip, every member learns the new node and the new node every member.
        let mut its_view: Vec<NodeInfo> = on
            .first()
            .and_then(|n| st.views.get(&n.id))
            .map(|v| {
                v.iter()
                    .map(|n| {
                        let mut n = n.clone();
                        n.flags.myself = false;
                        n
                    })
                    .collect()
            })
            .unwrap_or_default();
        for view in st.views.values_mut() {
            if !view.iter().any(|n| n.id == id) {
                view.push(new.clone());
            }
        }
        its_view.retain(|n| n.id != id);
        let mut me = new;
        me.flags.myself = true;
        its_view.push(me);
        st.views.insert(id, its_view);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse_nodes;

    const HEALTHY: &str = include_str!("../tests/fixtures/redis7-healthy-4m4r.txt");
    const M1: &str = "7a7e9f324a4f55d7cdda9f316dd0a662e38f2d8c"; // 27901, 0-4095
    const M2: &str = "257ffb6290bfd4150d02ce34baf96514693fdb69"; // 27902, 4096-8191
    const M3: &str = "7c2e08abc821f5c3969c0cbb5fd0933ba0ad99a5"; // 27903, 8192-12287
    const R1: &str = "4da7b13ac7c9036c54f11b070502ca286de78150"; // 27907, replica of M1

    /// Every node's view, each the fixture's seen from that node.
    fn state(replica_migration: bool) -> State {
        let view = parse_nodes(HEALTHY).unwrap();
        let views = view
            .iter()
            .map(|me| {
                let own = view
                    .iter()
                    .map(|n| {
                        let mut n = n.clone();
                        n.flags.myself = n.id == me.id;
                        n
                    })
                    .collect();
                (me.id.clone(), own)
            })
            .collect();
        State {
            views,
            unreachable: BTreeMap::new(),
            keys: BTreeMap::new(),
            stats: BTreeMap::new(),
            steps: Vec::new(),
            replica_migration,
            claims: BTreeMap::new(),
        }
    }

    /// The protocol's SETSLOTs for `slots` from `from` to `to`, the keys already moved.
    fn hand_over(st: &mut State, from: &str, to: &str, slots: std::ops::Range<u16>) {
        let before = st.own_slot_counts();
        for s in slots.clone() {
            assert_eq!(st.setslot(to, s, &SetSlot::Importing(from.into()), 0), None);
            assert_eq!(st.setslot(from, s, &SetSlot::Migrating(to.into()), 0), None);
        }
        // As `slot_move` does: the first slot's NODE the bump, the slots between claimed, the
        // last one's NODE the PONG that carries them.
        assert_eq!(st.setslot(to, slots.start, &SetSlot::Node(to.into()), 0), None);
        for s in slots.start + 1..slots.end.saturating_sub(1) {
            assert_eq!(st.setslot(to, s, &SetSlot::Claim(to.into()), 0), None);
        }
        if slots.len() > 1 {
            assert_eq!(st.setslot(to, slots.end - 1, &SetSlot::Node(to.into()), 0), None);
        }
        st.reconfigure(to, &before);
        for s in slots {
            let r = st.setslot(from, s, &SetSlot::Node(to.into()), 0);
            assert!(
                r.clone().is_none_or(|r| crate::ops::slot_move::tolerated_on_source(&ServerReply::new(r))),
                "{r:?}"
            );
        }
    }

    #[test]
    fn setslot_refusals_are_the_servers_own_words() {
        let mut st = state(true);
        assert_eq!(
            st.setslot(R1, 0, &SetSlot::Stable, 0).as_deref(),
            Some("ERR Please use SETSLOT only with masters.")
        );
        assert_eq!(
            st.setslot(M1, 5000, &SetSlot::Migrating(M2.into()), 0).as_deref(),
            Some("ERR I'm not the owner of hash slot 5000")
        );
        assert_eq!(
            st.setslot(M1, 0, &SetSlot::Importing(M2.into()), 0).as_deref(),
            Some("ERR I'm already the owner of hash slot 0")
        );
        assert_eq!(
            st.setslot(M1, 0, &SetSlot::Node("f".repeat(40)), 0),
            Some(format!("ERR Unknown node {}", "f".repeat(40)))
        );
    }

    #[test]
    fn an_owner_holding_keys_will_not_hand_its_slot_over() {
        let mut st = state(true);
        assert!(st.setslot(M1, 7, &SetSlot::Node(M2.into()), 3).unwrap().contains("still hold keys"));
        assert_eq!(st.owner_in(M1, 7).as_deref(), Some(M1), "nothing changed");
    }

    #[test]
    fn the_takers_claim_spreads_to_all_but_a_node_importing_the_slot() {
        let mut st = state(true);
        // M3 imports slot 10 from M1 too (a stale open slot of an earlier run).
        assert_eq!(st.setslot(M3, 10, &SetSlot::Importing(M1.into()), 0), None);
        hand_over(&mut st, M1, M2, 10..11);
        for viewer in [M1, M2, R1] {
            assert_eq!(st.owner_in(viewer, 10).as_deref(), Some(M2), "{viewer} sees the new owner");
        }
        assert_eq!(st.owner_in(M3, 10).as_deref(), Some(M1), "an importing node ignores the claim");
        assert!(st.me(M2).unwrap().importing.is_empty() && st.me(M1).unwrap().migrating.is_empty(), "closed");
    }

    #[test]
    fn claims_stay_with_the_claimant_until_its_next_pong_carries_them_all() {
        let mut st = state(true);
        for s in 0..3 {
            assert_eq!(st.setslot(M2, s, &SetSlot::Importing(M1.into()), 0), None);
        }
        assert_eq!(st.setslot(M2, 0, &SetSlot::Node(M2.into()), 0), None);
        assert_eq!(st.owner_in(M3, 0).as_deref(), Some(M2), "the bump's PONG");
        assert_eq!(st.setslot(M2, 1, &SetSlot::Claim(M2.into()), 0), None);
        assert!(st.me(M2).unwrap().importing.keys().eq([&2]), "a claim closes the import");
        assert_eq!(st.owner_in(M2, 1).as_deref(), Some(M2));
        assert_eq!(st.owner_in(M3, 1).as_deref(), Some(M1), "a claim sends no PONG");
        assert_eq!(st.setslot(M2, 2, &SetSlot::Node(M2.into()), 0), None);
        for viewer in [M1, M3, R1] {
            for s in 0..3 {
                assert_eq!(st.owner_in(viewer, s).as_deref(), Some(M2), "{viewer} learns slot {s}");
            }
        }
    }

    #[test]
    fn an_emptied_master_and_its_replica_follow_the_node_that_took_its_last_slots() {
        let mut st = state(true);
        hand_over(&mut st, M1, M2, 0..4096);
        for id in [M1, R1] {
            let n = st.me(id).unwrap();
            assert!(!n.is_master() && n.master_id.as_deref() == Some(M2), "{id} follows the taker");
        }
        assert_eq!(st.me(M2).unwrap().slots.len(), 8192);
    }

    #[test]
    fn without_replica_migration_an_emptied_master_stays_one() {
        let mut st = state(false);
        hand_over(&mut st, M1, M2, 0..4096);
        let m1 = st.me(M1).unwrap();
        assert!(m1.is_master() && m1.slots.is_empty());
        assert_eq!(st.me(R1).unwrap().master_id.as_deref(), Some(M1));
    }
}

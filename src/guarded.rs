//! The one place every change to a cluster passes through, whichever backend makes it: the lease
//! taken before it, the journal's intent and outcome around it (the record a resumed run
//! reconciles from), and the `action` event that names it. Backends only carry changes out.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::error::Result;
use crate::journal::Journal;
use crate::model::{Addr, NodeInfo, SlotSet, Topology};
use crate::ops::command::{CommandKind, command_name, kind};
use crate::ops::{Action, Cluster, MoveOpts, MoveStats, NodeStats, Retire, SetSlot};
use crate::output::Output;
use crate::plan::Batch;

pub struct Guarded {
    inner: Arc<dyn Cluster>,
    journal: Option<Arc<Journal>>,
}

impl Guarded {
    /// `inner`'s changes, each leased, journaled in `journal` (when there is one) and reported.
    pub fn new(inner: Arc<dyn Cluster>, journal: Option<Arc<Journal>>) -> Self {
        Self { inner, journal }
    }

    /// Takes the lease, journals `intent`, says `action`, runs `change`, journals its outcome.
    fn change<T>(&self, intent: Value, action: &Action, change: impl FnOnce() -> Result<T>) -> Result<T> {
        self.inner.acquire_lease()?;
        let id = self.journal.as_ref().map(|j| j.intent(intent)).transpose()?;
        action.emit(self.inner.out());
        let r = change();
        if let (Some(j), Some(id)) = (&self.journal, id) {
            j.outcome(id, r.as_ref().err().map(ToString::to_string).as_deref())?;
        }
        r
    }
}

impl Cluster for Guarded {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn out(&self) -> &Output {
        self.inner.out()
    }

    fn is_dry_run(&self) -> bool {
        self.inner.is_dry_run()
    }

    fn acquire_lease(&self) -> Result<()> {
        self.inner.acquire_lease()
    }

    fn begin_step(&self, label: &str) {
        self.inner.begin_step(label);
    }

    fn topology(&self) -> Result<Topology> {
        self.inner.topology()
    }

    fn stats(&self, topo: &Topology) -> Result<BTreeMap<String, NodeStats>> {
        self.inner.stats(topo)
    }

    fn count_keys(&self, node: &NodeInfo, slots: &[u16]) -> Result<Vec<u64>> {
        self.inner.count_keys(node, slots)
    }

    fn move_slots(&self, topo: &Topology, batch: &Batch, opts: &MoveOpts, phase: &dyn Fn(&str)) -> Result<MoveStats> {
        let slots: SlotSet = batch.slots.iter().copied().collect();
        let addr = |id: &str| topo.node(id).map(|n| n.addr.to_string());
        let replicas = |id: &str| topo.replicas_of(id).map(|r| r.id.clone()).collect::<Vec<_>>();
        // The replicas at plan time: a resumed run follows a failed-over end to its successor.
        let intent = json!({
            "op": "move", "from": batch.from, "to": batch.to, "slots": slots.to_string(),
            "from_addr": addr(&batch.from), "to_addr": addr(&batch.to),
            "from_replicas": replicas(&batch.from), "to_replicas": replicas(&batch.to),
        });
        let action = Action::Move { from: topo.name(&batch.from), to: topo.name(&batch.to), slots };
        let journal = self.journal.clone();
        let noted = move |p: &str| {
            if let Some(j) = &journal {
                j.note(&json!({"t": "phase", "phase": p, "ts": crate::journal::now()}));
            }
            phase(p);
        };
        self.change(intent, &action, || self.inner.move_slots(topo, batch, opts, &noted))
    }

    fn setslot(&self, node: &NodeInfo, slots: &[u16], how: &SetSlot) -> Result<()> {
        let s: SlotSet = slots.iter().copied().collect();
        let intent = json!({
            "op": "setslot", "node": node.addr.to_string(), "how": how.word(), "owner": how.peer(), "slots": s.to_string(),
        });
        let action = Action::SetSlot { node: node.addr.to_string(), slots: s, how: how.clone() };
        self.change(intent, &action, || self.inner.setslot(node, slots, how))
    }

    fn move_keys(&self, from: &NodeInfo, to: &NodeInfo, slot: u16, opts: &MoveOpts) -> Result<u64> {
        let intent = json!({"op": "move-keys", "from": from.addr.to_string(), "to": to.addr.to_string(), "slot": slot});
        let action = Action::MoveKeys { from: from.addr.to_string(), to: to.addr.to_string(), slot };
        self.change(intent, &action, || self.inner.move_keys(from, to, slot, opts))
    }

    fn forget(&self, on: &[NodeInfo], id: &str) -> Vec<(String, Result<()>)> {
        let on_addrs: Vec<String> = on.iter().map(|n| n.addr.to_string()).collect();
        let intent = json!({"op": "forget", "node": id, "on": on_addrs});
        let action = Action::Forget { id: id.to_string() };
        // Each node's refusal is its own outcome; the round as a whole is what the journal keeps.
        let mut outcomes = Vec::new();
        let round = self.change(intent, &action, || {
            outcomes = self.inner.forget(on, id);
            Ok(())
        });
        match round {
            Ok(()) => outcomes,
            Err(e) => on.iter().map(|n| (n.id.clone(), Err(e.clone()))).collect(),
        }
    }

    fn replicate(&self, replica: &NodeInfo, master_id: &str) -> Result<()> {
        let intent = json!({"op": "replicate", "node": replica.addr.to_string(), "master": master_id});
        let action = Action::Replicate { node: replica.addr.to_string(), master: master_id.to_string() };
        self.change(intent, &action, || self.inner.replicate(replica, master_id))
    }

    fn retire(&self, node: &NodeInfo, how: Retire) -> Result<()> {
        let intent = json!({"op": "retire", "node": node.addr.to_string(), "how": format!("{how:?}")});
        let action = Action::Retire { node: node.addr.to_string(), how };
        self.change(intent, &action, || self.inner.retire(node, how))
    }

    fn record_membership(&self, id: &str, addr: &str, missed: &[String], added: bool) {
        if let Some(j) = &self.journal {
            let event = if added { "added" } else { "removed" };
            j.note(&json!({"t": "membership", "event": event, "node": id, "addr": addr, "missed": missed, "ts": crate::journal::now()}));
        }
        self.inner.record_membership(id, addr, missed, added);
    }

    fn call(&self, node: &NodeInfo, args: &[String]) -> Result<Value> {
        if kind(args) == CommandKind::Read {
            return self.inner.call(node, args);
        }
        // Only the command's name is journaled: its arguments may hold a secret.
        let name = command_name(args);
        let intent = json!({"op": "command", "node": node.addr.to_string(), "command": name});
        let action = Action::Command { node: node.addr.to_string(), name };
        self.change(intent, &action, || self.inner.call(node, args))
    }

    fn probe(&self, addr: &Addr) -> Result<(String, usize, u64)> {
        self.inner.probe(addr)
    }

    fn meet(&self, on: &[NodeInfo], addr: &Addr) -> Result<()> {
        let on_addrs: Vec<String> = on.iter().map(|n| n.addr.to_string()).collect();
        let intent = json!({"op": "meet", "on": on_addrs, "node": addr.to_string()});
        let action = Action::Meet { addr: addr.to_string() };
        self.change(intent, &action, || self.inner.meet(on, addr))
    }

    fn denied(&self, node: &NodeInfo, probes: &[(&str, &[&str])]) -> Result<Vec<(String, String)>> {
        self.inner.denied(node, probes)
    }

    fn largest_keys(&self, node: &NodeInfo, slots: &[u16]) -> Result<Vec<(String, u64)>> {
        self.inner.largest_keys(node, slots)
    }

    fn node_timeout_ms(&self, topo: &Topology) -> Result<Option<u64>> {
        self.inner.node_timeout_ms(topo)
    }

    fn canary(&self, src: &NodeInfo, dst: &NodeInfo, key: &str) -> Result<std::result::Result<(), String>> {
        self.inner.canary(src, dst, key)
    }

    fn pause(&self, d: Duration) -> Result<()> {
        self.inner.pause(d)
    }
}

//! `Plan`: slot moves grouped into (source, target) batches, with a per-target summary table.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{SlotSet, Topology};

/// One slot going from one master to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    pub slot: u16,
    pub from: String,
    pub to: String,
}

/// Slots with the same source and target: the unit the backends move together.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    pub from: String,
    pub to: String,
    pub slots: Vec<u16>,
}

/// A reviewable list of moves, and the topology fingerprint it was computed against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// `"drain"`, `"rebalance"` or `"moves"`.
    pub kind: String,
    pub moves: Vec<Move>,
    pub fingerprint: String,
    /// Node id → address, for display.
    pub names: BTreeMap<String, String>,
    /// A sentence for an empty plan, e.g. why no rebalancing is needed.
    pub note: Option<String>,
    /// Expected key counts per move (same order as `moves`), when known.
    pub keys: Option<Vec<u64>>,
    /// Master id → its replicas' ids when the plan was made: a master that fails over during
    /// the run is followed to the replica promoted in its place.
    #[serde(default)]
    pub replicas: BTreeMap<String, Vec<String>>,
}

impl Plan {
    pub fn new(kind: &str, topo: &Topology, moves: Vec<Move>) -> Self {
        let names = topo.nodes().iter().map(|n| (n.id.clone(), n.addr.to_string())).collect();
        let replicas =
            topo.masters().map(|m| (m.id.clone(), topo.replicas_of(&m.id).map(|r| r.id.clone()).collect())).collect();
        Plan { kind: kind.to_string(), moves, fingerprint: topo.fingerprint(), names, note: None, keys: None, replicas }
    }

    pub fn is_empty(&self) -> bool {
        self.moves.is_empty()
    }

    /// Batches in plan order: consecutive moves with the same (from, to) go together, capped at
    /// `max_slots` each so a batch never keeps too many slots open at once.
    pub fn batches(&self, max_slots: usize) -> Vec<Batch> {
        let mut out: Vec<Batch> = Vec::new();
        for m in &self.moves {
            match out.last_mut() {
                Some(b) if b.from == m.from && b.to == m.to && b.slots.len() < max_slots.max(1) => b.slots.push(m.slot),
                _ => out.push(Batch { from: m.from.clone(), to: m.to.clone(), slots: vec![m.slot] }),
            }
        }
        out
    }

    /// The intent of moving `batch`, with the replicas that can stand in for its two ends.
    pub fn intent(&self, batch: &Batch) -> crate::plan::Intent {
        let reps = |id: &str| self.replicas.get(id).cloned().unwrap_or_default();
        crate::plan::Intent {
            from: batch.from.clone(),
            to: batch.to.clone(),
            slots: batch.slots.clone(),
            from_replicas: reps(&batch.from),
            to_replicas: reps(&batch.to),
        }
    }

    pub fn name(&self, id: &str) -> String {
        self.names.get(id).cloned().unwrap_or_else(|| id.chars().take(8).collect())
    }

    /// (from, to, slots, keys) per pair, in plan order.
    pub fn summary(&self) -> Vec<(String, String, SlotSet, Option<u64>)> {
        let mut rows: Vec<(String, String, SlotSet, Option<u64>)> = Vec::new();
        for (i, m) in self.moves.iter().enumerate() {
            let keys = self.keys.as_ref().map(|k| k[i]);
            if let Some(row) = rows.iter_mut().find(|r| r.0 == m.from && r.1 == m.to) {
                row.2.insert(m.slot);
                row.3 = row.3.zip(keys).map(|(a, b)| a + b);
            } else {
                rows.push((m.from.clone(), m.to.clone(), std::iter::once(m.slot).collect(), keys));
            }
        }
        rows
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.moves.is_empty() {
            return write!(
                f,
                "{} plan: nothing to move{}",
                self.kind,
                self.note.as_ref().map(|n| format!(" ({n})")).unwrap_or_default()
            );
        }
        writeln!(f, "{} plan: {} slots", self.kind, self.moves.len())?;
        writeln!(f, "  {:<22} {:<22} {:>6} {:>9}  ranges", "from", "to", "slots", "keys")?;
        for (from, to, slots, keys) in self.summary() {
            let ranges = slots.to_string();
            let ranges = if ranges.len() > 40 { format!("{}…", &ranges[..39]) } else { ranges };
            writeln!(
                f,
                "  {:<22} {:<22} {:>6} {:>9}  {ranges}",
                self.name(&from),
                self.name(&to),
                slots.len(),
                keys.map_or("?".into(), |k| k.to_string())
            )?;
        }
        Ok(())
    }
}

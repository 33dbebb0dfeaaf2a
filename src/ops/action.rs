//! A change to the cluster as both backends name it: the live one before sending it, the
//! simulated one as it applies it. `--json` reports each as an `action` event, so a rehearsal's
//! actions can be held against the run's, by automation as by the tests.

use std::fmt;

use super::cluster::{Retire, SetSlot};
use crate::model::SlotSet;
use crate::output::Output;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// A batch of slots moved between two masters (addresses).
    Move { from: String, to: String, slots: SlotSet },
    /// `CLUSTER SETSLOT` of `slots` on `node` (address); `how` names the peer by id.
    SetSlot { node: String, slots: SlotSet, how: SetSlot },
    /// The keys of one slot moved from one node to another (addresses).
    MoveKeys { from: String, to: String, slot: u16 },
    /// A round of `CLUSTER FORGET id`.
    Forget { id: String },
    /// `node` (address) made a replica of `master` (id).
    Replicate { node: String, master: String },
    /// A forgotten node (address) taken out of service.
    Retire { node: String, how: Retire },
    /// `CLUSTER MEET addr` sent to the members.
    Meet { addr: String },
    /// A raw command that may change something, by name, on `node` (address).
    Command { node: String, name: String },
}

fn short(id: &str) -> &str {
    &id[..id.len().min(8)]
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Move { from, to, slots } => write!(f, "move {slots} {from} -> {to}"),
            Self::SetSlot { node, slots, how } => match how.peer() {
                Some(p) => write!(f, "setslot {slots} {} {} on {node}", how.word(), short(p)),
                None => write!(f, "setslot {slots} {} on {node}", how.word()),
            },
            Self::MoveKeys { from, to, slot } => write!(f, "move keys of slot {slot} {from} -> {to}"),
            Self::Forget { id } => write!(f, "forget {}", short(id)),
            Self::Replicate { node, master } => write!(f, "replicate {node} -> {}", short(master)),
            Self::Retire { node, how } => write!(f, "retire {node} {how:?}"),
            Self::Meet { addr } => write!(f, "meet {addr}"),
            Self::Command { node, name } => write!(f, "command {name} on {node}"),
        }
    }
}

impl Action {
    /// The `action` event, when `--json` is on.
    pub fn emit(&self, out: &Output) {
        out.emit("action", serde_json::json!({ "action": self.to_string() }));
    }
}

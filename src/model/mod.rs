//! The pure cluster model: nodes, slot sets, topology, key slots and node selectors. No I/O.

pub mod keyslot;
pub mod node;
pub mod selector;
pub mod slot_set;
pub mod topology;

pub use keyslot::{SLOTS, key_slot};
pub use node::{Addr, Flags, NodeInfo, parse_nodes};
pub use selector::{SelectError, describe, select};
pub use slot_set::SlotSet;
pub use topology::{OpenSlot, Topology, ViewDiff};

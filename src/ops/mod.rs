//! Cluster operations: the `Cluster` trait and the procedures built on it (apply a plan, forget,
//! delete a node, wait for convergence). Procedures only use the trait, so a dry run runs them too.

pub mod action;
pub mod apply;
pub mod bytes;
pub mod check;
pub mod cluster;
pub mod command;
pub mod fix;
pub mod gates;
pub mod membership;
pub mod progress;
pub mod reconcile;
pub mod settle;
pub mod slot_map;
pub mod slot_move;

pub use action::Action;
pub use apply::{ApplyReport, apply};
pub use check::{CheckReport, KnownAgain, NodeStats};
pub use cluster::{Cluster, MoveOpts, MoveStats, Retire, SetSlot};
pub use fix::fix_open_slots;
pub use membership::{
    DelNodeOpts, DelNodeReport, ReplicaPolicy, add_node, del_node, finish_forgets, finish_removed, forget_everywhere,
    forget_node, wait_converged,
};
pub use slot_move::SlotSteps;

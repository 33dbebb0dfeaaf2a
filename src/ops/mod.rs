//! Cluster operations: the `Cluster` trait and the procedures built on it (apply a plan, forget,
//! delete a node, wait for convergence). Procedures only use the trait, so a dry run runs them too.

pub mod check;
pub mod cluster;

pub use check::{CheckReport, NodeStats};
pub use cluster::{Cluster, MoveOpts, MoveStats, Retire};

//! Test support: clusters of real redis-server processes, and running the `runbook` binary.

// Helpers are shared by many test files; not every one uses each.
#![allow(dead_code)]

pub mod cluster;
pub mod command;
pub mod pty;

pub use cluster::TestCluster;
pub use command::{runbook, script};

//! Pure planners: which slots go where. No I/O, no rhai; deterministic for a given topology.

pub mod drain;
pub mod moves;
pub mod pace;
pub mod rebalance;
pub mod reconcile;

#[cfg(test)]
mod fixtures;

pub use drain::plan_drain;

/// Why a plan cannot be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// The request itself is wrong (a replica to drain, a negative weight).
    BadInput(String),
    /// The request is well-formed but cannot be met (no master would be left).
    Impossible(String),
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlanError::BadInput(s) | PlanError::Impossible(s) => f.write_str(s),
        }
    }
}
pub use moves::{Batch, Move, Plan};
pub use rebalance::{RebalanceOpts, plan_rebalance};
pub use reconcile::{Action, Intent, Keep, KeyCounts, Reconciliation, reconcile};

//! Pure planners: which slots go where. No I/O, no rhai; deterministic for a given topology.

pub mod drain;
pub mod moves;
pub mod rebalance;

pub use drain::plan_drain;
pub use moves::{Batch, Move, Plan};
pub use rebalance::{RebalanceOpts, plan_rebalance};

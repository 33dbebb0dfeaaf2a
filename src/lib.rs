//! `runbook`: safe, scriptable scale-in for Redis Cluster and Valkey.
//!
//! Layers, dependencies pointing down: `cli`/`run`/`sandbox` → `script` (rhai glue) → `ops` (the
//! `Cluster` trait and the procedures on it) → `live` (real nodes) → `plan` → `model`.
//! `model` and `plan` are pure: no I/O, no rhai. Beside the layers: `config` (the arguments,
//! validated once) and `output` (how a command reports), both made by `run` and handed down;
//! nothing process-wide is mutable.

pub mod cli;
mod complete;
pub mod config;
pub mod error;
pub mod failpoint;
pub mod guarded;
pub mod holder;
pub mod interrupt;
pub mod journal;
mod journal_command;
pub mod live;
pub mod model;
pub mod ops;
pub mod output;
pub mod plan;
pub mod profiles;
pub mod removed;
pub mod repl;
pub(crate) mod run;
pub mod sandbox;
pub mod script;
mod shell;
pub mod shipped;
pub mod sim;
pub mod state_dir;
pub mod status;

pub use run::run;

//! The `Cluster` trait: the primitives a backend provides. The script layer and the procedures
//! in `ops` see only this, never a socket; `--dry-run` swaps in a simulated implementation.

use std::collections::BTreeMap;
use std::time::Duration;

use super::check::NodeStats;
use crate::error::Result;
use crate::model::{Addr, NodeInfo, Topology};
use crate::plan::Batch;

/// How slots are moved.
#[derive(Clone, Debug, PartialEq)]
pub struct MoveOpts {
    /// Keys per GETKEYSINSLOT / MIGRATE round (redis-cli's `--cluster-pipeline`).
    pub keys_per_migrate: usize,
    /// MIGRATE's idle timeout (redis-cli's `--cluster-timeout`).
    pub timeout: Duration,
    /// Overwrite keys that already exist on the target (BUSYKEY) instead of stopping.
    pub replace: bool,
    /// At most this many slots open (MIGRATING/IMPORTING) at once per batch.
    pub slots_per_batch: usize,
}

impl Default for MoveOpts {
    fn default() -> Self {
        Self { keys_per_migrate: 200, timeout: Duration::from_millis(60_000), replace: false, slots_per_batch: 256 }
    }
}

/// What a move did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MoveStats {
    pub slots: usize,
    pub keys: u64,
}

impl std::ops::AddAssign for MoveStats {
    fn add_assign(&mut self, o: Self) {
        self.slots += o.slots;
        self.keys += o.keys;
    }
}

/// What happens to a node once the others have forgotten it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retire {
    /// `CLUSTER RESET SOFT`: it forgets the cluster and keeps running, empty (redis-cli's default).
    Reset,
    /// `SHUTDOWN NOSAVE`: it stops.
    Shutdown,
    /// Leave the process alone.
    Keep,
}

pub trait Cluster: Send + Sync {
    /// Where this backend points, for messages: the seed address, or "dry run of …".
    fn name(&self) -> String;

    fn is_dry_run(&self) -> bool {
        false
    }

    /// A fresh read of every node's view.
    fn topology(&self) -> Result<Topology>;

    /// Per reachable node: keys, memory, cluster_state, replication link.
    fn stats(&self, topo: &Topology) -> Result<BTreeMap<String, NodeStats>>;

    /// Keys held by `node` in each of `slots` (`CLUSTER COUNTKEYSINSLOT`).
    fn count_keys(&self, node: &NodeInfo, slots: &[u16]) -> Result<Vec<u64>>;

    /// Moves `batch.slots` from `batch.from` to `batch.to`, keys and ownership, safely:
    /// IMPORTING, MIGRATING, MIGRATE until empty, then SETSLOT NODE target → source → others.
    fn move_slots(&self, topo: &Topology, batch: &Batch, opts: &MoveOpts) -> Result<MoveStats>;

    /// One round of `CLUSTER FORGET id` on each of `on`, in parallel; the outcome per node.
    fn forget(&self, on: &[NodeInfo], id: &str) -> Vec<(String, Result<()>)>;

    /// `CLUSTER REPLICATE master_id` on `replica`.
    fn replicate(&self, replica: &NodeInfo, master_id: &str) -> Result<()>;

    /// Takes a forgotten node out of service.
    fn retire(&self, node: &NodeInfo, how: Retire) -> Result<()>;

    /// A raw command on one node; the reply as JSON-like data.
    fn call(&self, node: &NodeInfo, args: &[String]) -> Result<serde_json::Value>;

    /// What a node that may not be in the cluster yet says of itself: (id, known nodes, keys).
    fn probe(&self, addr: &Addr) -> Result<(String, usize, u64)>;

    /// `CLUSTER MEET addr` sent to `via`.
    fn meet(&self, via: &NodeInfo, addr: &Addr) -> Result<()>;

    /// Waits, cancellably; a dry run does not wait.
    fn pause(&self, d: Duration) -> Result<()>;
}

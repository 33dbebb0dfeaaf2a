//! The `Cluster` trait: the primitives a backend provides. The script layer and the procedures
//! in `ops` see only this, never a socket; `--dry-run` swaps in a simulated implementation.

use std::collections::BTreeMap;
use std::time::Duration;

use super::check::NodeStats;
use crate::error::Result;
use crate::model::{Addr, NodeInfo, Topology};
use crate::output::Output;
use crate::plan::Batch;

/// How slots are moved.
#[derive(Clone, Debug, PartialEq)]
pub struct MoveOpts {
    /// Keys per MIGRATE (redis-cli's `--cluster-pipeline`); 0 sizes it from a sample of key
    /// sizes so that one MIGRATE carries about 1 MiB.
    pub keys_per_migrate: usize,
    /// MIGRATE's idle timeout (redis-cli's `--cluster-timeout`).
    pub timeout: Duration,
    /// Overwrite keys that already exist on the target (BUSYKEY) instead of stopping.
    pub replace: bool,
    /// On BUSYKEY keep the target's copy and delete the source's. Set when finishing a move
    /// whose source failed over: its promoted replica may still hold keys the dead source had
    /// already moved to the target (the source's DEL had not reached the replica), and the
    /// target's copy, which clients have written to since, is the newer one.
    pub keep_target: bool,
    /// At most this many slots open (MIGRATING/IMPORTING) at once per batch.
    pub slots_per_batch: usize,
    /// At most this many keys per second (`--rate-limit`), to spare a busy cluster.
    pub rate_limit: Option<u64>,
    /// How long one pipeline of MIGRATEs may hold the source, whose other clients wait meanwhile
    /// (`--max-pause`); `None`: the run's setting, else `DEFAULT_MAX_PAUSE`; zero: no budget.
    /// Only where keys per MIGRATE are sized automatically.
    pub max_pause: Option<Duration>,
}

/// The pause budget when neither the call nor the run sets one: a MIGRATE pipeline holds the
/// source about 1 ms, so its other clients wait about as long as under `redis-cli --cluster`
/// (measured on 1M keys: the source's p99 1.55 ms against redis-cli's 1.44 ms, at 0.38 × its
/// time; without a budget 5.4 ms, at 0.32 ×).
pub const DEFAULT_MAX_PAUSE: Duration = Duration::from_millis(1);

impl Default for MoveOpts {
    fn default() -> Self {
        Self {
            keys_per_migrate: 0,
            timeout: Duration::from_millis(60_000),
            replace: false,
            keep_target: false,
            slots_per_batch: 256,
            rate_limit: None,
            max_pause: None,
        }
    }
}

/// What a move did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MoveStats {
    pub slots: usize,
    pub keys: u64,
    /// Estimated from a sample of key sizes (`MEMORY USAGE`), not counted.
    pub bytes: u64,
    /// The longest a pipeline of MIGRATEs took, as the tool timed it: about how long the source
    /// kept its other clients waiting at worst, the figure the pause budget is about.
    pub longest_hold_ms: u64,
    /// Pipelines whose keys took more than twice the pause budget each: a key too big to stay
    /// within it (each was named as it happened).
    pub over_budget: u64,
}

impl std::ops::AddAssign for MoveStats {
    fn add_assign(&mut self, o: Self) {
        self.slots += o.slots;
        self.keys += o.keys;
        self.bytes += o.bytes;
        self.longest_hold_ms = self.longest_hold_ms.max(o.longest_hold_ms);
        self.over_budget += o.over_budget;
    }
}

/// A `CLUSTER SETSLOT` that closes or settles a slot, as `fix` needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SetSlot {
    /// `STABLE`: clear MIGRATING/IMPORTING.
    Stable,
    /// `NODE id`: this node should consider `id` the owner.
    Node(String),
    /// `IMPORTING id`: the node receives the slot from `id`; also opens the slot on a node that
    /// holds keys it does not own, so that MIGRATE may move them (a node runs MIGRATE only for
    /// keys of slots it owns or has open).
    Importing(String),
    /// `MIGRATING id`: the owner gives the slot to `id`.
    Migrating(String),
    /// `STABLE`, then `NODE id`, on the node `id` itself: it takes a slot it imports as a plain
    /// claim, without the epoch bump and the PONG to every node that `NODE` of an importing slot
    /// costs (see `slot_move`: only once its epoch is the greatest). Sent as one pair, so that
    /// no client finds the slot neither importing nor owned there for longer than between two
    /// commands.
    Claim(String),
}

impl SetSlot {
    /// The subcommand's word, as the server reads it.
    pub fn word(&self) -> &'static str {
        match self {
            Self::Stable => "STABLE",
            Self::Node(_) | Self::Claim(_) => "NODE",
            Self::Importing(_) => "IMPORTING",
            Self::Migrating(_) => "MIGRATING",
        }
    }

    /// The node id the subcommand names, if any.
    pub fn peer(&self) -> Option<&str> {
        match self {
            Self::Stable => None,
            Self::Node(id) | Self::Importing(id) | Self::Migrating(id) | Self::Claim(id) => Some(id),
        }
    }
}

/// What happens to a node once the others have forgotten it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retire {
    /// `CLUSTER RESET SOFT`: it forgets the cluster and keeps running, empty, with its id.
    Reset,
    /// `CLUSTER RESET HARD`: as `Reset`, and it takes a new id. For a node that some node could
    /// not be told to forget (see `del_node`).
    ResetHard,
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

    /// Where the command's progress lines and `--json` events go.
    fn out(&self) -> &Output;

    /// Takes the cluster's lease (at most one changing run per cluster); a no-op where there is
    /// nothing to protect, as in a dry run.
    fn acquire_lease(&self) -> Result<()> {
        Ok(())
    }

    /// Marks the start of a runbook step (`del_node 127.0.0.1:6398`), for the dry-run report.
    fn begin_step(&self, _label: &str) {}

    /// A fresh read of every node's view.
    fn topology(&self) -> Result<Topology>;

    /// Per reachable node: keys, memory, cluster_state, replication link.
    fn stats(&self, topo: &Topology) -> Result<BTreeMap<String, NodeStats>>;

    /// Keys held by `node` in each of `slots` (`CLUSTER COUNTKEYSINSLOT`).
    fn count_keys(&self, node: &NodeInfo, slots: &[u16]) -> Result<Vec<u64>>;

    /// Moves `batch.slots` from `batch.from` to `batch.to`, keys and ownership, by the protocol
    /// of `slot_move`; `phase` is told each of its steps as it starts (the journal keeps them).
    fn move_slots(&self, topo: &Topology, batch: &Batch, opts: &MoveOpts, phase: &dyn Fn(&str)) -> Result<MoveStats>;

    /// `CLUSTER SETSLOT s STABLE|NODE id` for each slot on one node.
    fn setslot(&self, node: &NodeInfo, slots: &[u16], how: &SetSlot) -> Result<()>;

    /// MIGRATEs every key `from` holds in `slot` to `to`, whoever owns the slot (for `fix`).
    fn move_keys(&self, from: &NodeInfo, to: &NodeInfo, slot: u16, opts: &MoveOpts) -> Result<u64>;

    /// One round of `CLUSTER FORGET id` on each of `on`, in parallel; the outcome per node.
    fn forget(&self, on: &[NodeInfo], id: &str) -> Vec<(String, Result<()>)>;

    /// `CLUSTER REPLICATE master_id` on `replica`.
    fn replicate(&self, replica: &NodeInfo, master_id: &str) -> Result<()>;

    /// Takes a forgotten node out of service.
    fn retire(&self, node: &NodeInfo, how: Retire) -> Result<()>;

    /// Keeps in the registry of removed nodes (`crate::removed`) that node `id` left the cluster,
    /// `missed` naming the nodes that could not be told to forget it; or with `added`, that it
    /// was added back on purpose. Best effort: a registry that cannot be written is said, not
    /// fatal. A dry run keeps nothing.
    fn record_membership(&self, _id: &str, _addr: &str, _missed: &[String], _added: bool) {}

    /// A raw command on one node; the reply as JSON-like data.
    fn call(&self, node: &NodeInfo, args: &[String]) -> Result<serde_json::Value>;

    /// What a node that may not be in the cluster yet says of itself: (id, known nodes, keys).
    fn probe(&self, addr: &Addr) -> Result<(String, usize, u64)>;

    /// `CLUSTER MEET addr` sent by each of `on`, in parallel.
    fn meet(&self, on: &[NodeInfo], addr: &Addr) -> Result<()>;

    /// Sends each probe (`label`, arguments) to `node` and returns the labels the user's ACL
    /// refused, with the server's words. Probes are chosen to have no effect (see
    /// `gates::PERMISSION_PROBES`).
    fn denied(&self, node: &NodeInfo, probes: &[(&str, &[&str])]) -> Result<Vec<(String, String)>>;

    /// The biggest keys (name, bytes by `MEMORY USAGE`) among a sample of each slot's keys.
    fn largest_keys(&self, node: &NodeInfo, slots: &[u16]) -> Result<Vec<(String, u64)>>;

    /// `cluster-node-timeout` in ms, as the first reachable master reports it.
    fn node_timeout_ms(&self, topo: &Topology) -> Result<Option<u64>>;

    /// Tries a MIGRATE (COPY) of a throwaway `key` from `src` to `dst`: `Ok(Err(reason))` when the
    /// pair cannot talk or authenticate. The key is deleted afterwards.
    fn canary(&self, src: &NodeInfo, dst: &NodeInfo, key: &str) -> Result<std::result::Result<(), String>>;

    /// Waits, cancellably; a dry run does not wait.
    fn pause(&self, d: Duration) -> Result<()>;
}

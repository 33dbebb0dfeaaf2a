//! The live backend: `Cluster` over real nodes, one connection each, on a tokio runtime.
//!
//! Rhai is synchronous, so each primitive blocks on the runtime (`Runtime::block_on`) from the
//! engine's thread, which is never a runtime thread. It only carries changes out: the lease and
//! the journal around each are `Guarded`'s, whichever backend it wraps.

pub mod discover;
pub mod form;
pub mod lease;
pub mod migrate;
pub mod pool;
pub mod stats;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use tokio::runtime::Runtime;

pub use lease::Holder;
pub use pool::{Pool, Timeouts};

use crate::config::Credentials;
use crate::error::{Error, Result};
use crate::model::{Addr, NodeInfo, Topology};
use crate::ops::{Cluster, MoveOpts, MoveStats, NodeStats, Retire, SetSlot};
use crate::output::Output;
use crate::plan::Batch;

/// Builds the runtime every live operation blocks on.
pub fn runtime() -> Result<Arc<Runtime>> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map(Arc::new)
        .map_err(|e| Error::io("starting the I/O runtime", &e))
}

pub struct LiveCluster {
    rt: Arc<Runtime>,
    pool: Arc<Pool>,
    seed: Addr,
    cancel: Arc<AtomicBool>,
    holder: Holder,
    /// The journal's run id, when the run keeps one: the registry of removed nodes names it.
    run_id: Option<String>,
    lease: Mutex<Option<lease::Lease>>,
    rate_limit: Option<u64>,
    max_pause: Option<Duration>,
    /// The nodes that answered the last read of the cluster: where to read it from when the
    /// seed itself dies mid-run (a failover of the very node named by --cluster).
    peers: Mutex<Vec<Addr>>,
    seed_down_said: AtomicBool,
    /// The seed's node id, as last read: when this run makes the others forget it (the seed is
    /// the node being removed), its own view is no longer the cluster's.
    seed_id: Mutex<Option<String>>,
    /// This run removed the seed from the cluster: read the cluster from its peers from now on.
    seed_left: AtomicBool,
    /// Nodes this run reset or shut down: never a peer to read the cluster from.
    retired: Mutex<Vec<Addr>>,
}

impl LiveCluster {
    /// Connects to `seed` and checks it is a cluster node; nothing is changed. What it has to
    /// say goes to `out`.
    pub fn connect(
        rt: Arc<Runtime>,
        seed: Addr,
        creds: Credentials,
        cancel: Arc<AtomicBool>,
        out: Arc<Output>,
    ) -> Result<Self> {
        let me = Self {
            rt,
            pool: Arc::new(Pool::new(creds, Timeouts::default()).with_output(out)),
            seed,
            cancel,
            holder: Holder::me("runbook", "interactive"),
            run_id: None,
            lease: Mutex::new(None),
            rate_limit: None,
            max_pause: None,
            peers: Mutex::new(Vec::new()),
            seed_down_said: AtomicBool::new(false),
            seed_id: Mutex::new(None),
            seed_left: AtomicBool::new(false),
            retired: Mutex::new(Vec::new()),
        };
        me.block(discover::read_view(&me.pool, &me.seed))?;
        Ok(me)
    }

    /// Names the lease after this run, and the registry of removed nodes after its journal.
    #[must_use]
    pub fn with_holder(mut self, holder: Holder, run_id: Option<String>) -> Self {
        self.holder = holder;
        self.run_id = run_id;
        self
    }

    /// Caps every move at `keys_per_sec`, and each MIGRATE pipeline's hold on the source at
    /// `max_pause`, unless a call sets its own.
    #[must_use]
    pub fn with_pacing(mut self, keys_per_sec: Option<u64>, max_pause: Option<Duration>) -> Self {
        self.rate_limit = keys_per_sec;
        self.max_pause = max_pause;
        self
    }

    /// A call's options with the run's pacing where the call sets none, and the default pause
    /// budget where neither does.
    fn paced(&self, opts: &MoveOpts) -> MoveOpts {
        let mut opts = opts.clone();
        opts.rate_limit = opts.rate_limit.or(self.rate_limit);
        opts.max_pause = opts.max_pause.or(self.max_pause).or(Some(crate::ops::cluster::DEFAULT_MAX_PAUSE));
        opts
    }

    /// The run that holds the cluster's lease, if any (read only: nothing is taken).
    pub fn lease_holder(&self, topo: &Topology) -> Result<Option<Holder>> {
        self.block(lease::holder(&self.pool, topo))
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Runs `fut` to completion, or stops with `Cancelled` once Ctrl-C was pressed.
    fn block<T>(&self, fut: impl Future<Output = Result<T>>) -> Result<T> {
        let cancel = self.cancel.clone();
        self.rt.block_on(async move {
            tokio::select! {
                r = fut => r,
                () = async {
                    while !cancel.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                } => Err(Error::Cancelled),
            }
        })
    }

    /// Takes the cluster's lease unless this connection holds it already; refuses while another
    /// run holds it.
    fn ensure_lease(&self) -> Result<()> {
        let mut held = self.lease.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if held.is_none() {
            let topo = self.block(discover::load(&self.pool, &self.seed))?;
            *held = Some(self.rt.block_on(lease::acquire(&self.pool, &topo, &self.holder))?);
        }
        Ok(())
    }

    /// Runs a change to its end: Ctrl-C does not cut a started change short. (The lease and the
    /// journal around it are `Guarded`'s.)
    fn change<T>(&self, step: impl Future<Output = Result<T>>) -> Result<T> {
        self.rt.block_on(step)
    }
}

impl Cluster for LiveCluster {
    fn name(&self) -> String {
        self.seed.to_string()
    }

    fn out(&self) -> &Output {
        self.pool.out()
    }

    fn acquire_lease(&self) -> Result<()> {
        self.ensure_lease()
    }

    fn topology(&self) -> Result<Topology> {
        let read = if self.seed_left.load(Ordering::Relaxed) {
            Err(Error::refused(format!("{} has left the cluster: this run removed it", self.seed), None))
        } else {
            self.block(discover::load(&self.pool, &self.seed))
        };
        let topo = match read {
            Err(e @ (Error::Connect { .. } | Error::Timeout { .. } | Error::Refused { .. })) => {
                let peers = self.peers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
                let retired = self.retired.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
                let mut found = None;
                for p in
                    peers.iter().filter(|p| !p.same_endpoint(&self.seed) && !retired.iter().any(|r| r.same_endpoint(p)))
                {
                    if let Ok(t) = self.block(discover::load(&self.pool, p)) {
                        if !self.seed_down_said.swap(true, Ordering::Relaxed) {
                            self.pool.out().say(&format!(
                                "{}: reading the cluster from the nodes that still answer, {p} first",
                                match &e {
                                    Error::Refused { message, .. } => message.clone(),
                                    other => format!("{} does not answer ({other})", self.seed),
                                }
                            ));
                        }
                        found = Some(t);
                        break;
                    }
                }
                found.ok_or(e)?
            }
            other => other?,
        };
        if let Some(me) = topo.nodes().iter().find(|n| n.addr.same_endpoint(&self.seed)) {
            *self.seed_id.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(me.id.clone());
        }
        let answered: Vec<Addr> = topo
            .nodes()
            .iter()
            .filter(|n| topo.is_reachable(&n.id) && !n.addr.same_endpoint(&self.seed))
            .map(|n| n.addr.clone())
            .collect();
        *self.peers.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = answered;
        Ok(topo)
    }

    fn stats(&self, topo: &Topology) -> Result<BTreeMap<String, NodeStats>> {
        self.block(stats::gather(&self.pool, topo))
    }

    fn count_keys(&self, node: &NodeInfo, slots: &[u16]) -> Result<Vec<u64>> {
        self.block(migrate::count_keys(&self.pool, node, slots))
    }

    fn move_slots(&self, topo: &Topology, batch: &Batch, opts: &MoveOpts, phase: &dyn Fn(&str)) -> Result<MoveStats> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(Error::Cancelled);
        }
        let opts = self.paced(opts);
        // A batch runs to its end once started, so Ctrl-C never leaves a slot open.
        let steps = migrate::LiveSteps { rt: &self.rt, pool: &self.pool };
        crate::ops::slot_move::move_slots(&steps, topo, batch, &opts, phase)
    }

    fn setslot(&self, node: &NodeInfo, slots: &[u16], how: &SetSlot) -> Result<()> {
        let steps = migrate::LiveSteps { rt: &self.rt, pool: &self.pool };
        crate::ops::slot_move::setslot_all(&steps, node, slots, how)
    }

    fn move_keys(&self, from: &NodeInfo, to: &NodeInfo, slot: u16, opts: &MoveOpts) -> Result<u64> {
        self.change(migrate::migrate_keys(&self.pool, from, to, slot, &self.paced(opts)))
    }

    fn forget(&self, on: &[NodeInfo], id: &str) -> Vec<(String, Result<()>)> {
        let pool = &self.pool;
        let futs = on.iter().map(|n| async move {
            let r: Result<redis::Value> =
                pool.query(&n.addr, "CLUSTER FORGET", redis::cmd("CLUSTER").arg("FORGET").arg(id)).await;
            (n.id.clone(), r.map(|_| ()))
        });
        if self.seed_id.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_deref() == Some(id) {
            self.seed_left.store(true, Ordering::Relaxed);
        }
        let out = self.rt.block_on(join_all(futs));
        self.pool.failpoint("after-forget");
        out
    }

    fn replicate(&self, replica: &NodeInfo, master_id: &str) -> Result<()> {
        self.change(async {
            let _: redis::Value = self
                .pool
                .query(&replica.addr, "CLUSTER REPLICATE", redis::cmd("CLUSTER").arg("REPLICATE").arg(master_id))
                .await?;
            Ok(())
        })
    }

    fn retire(&self, node: &NodeInfo, how: Retire) -> Result<()> {
        if node.addr.same_endpoint(&self.seed) {
            self.seed_left.store(true, Ordering::Relaxed);
        }
        self.retired.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(node.addr.clone());
        self.change(async {
            match how {
                Retire::Keep => Ok(()),
                Retire::Reset | Retire::ResetHard => {
                    let how = if how == Retire::Reset { "SOFT" } else { "HARD" };
                    let _: redis::Value = self
                        .pool
                        .query(&node.addr, &format!("CLUSTER RESET {how}"), redis::cmd("CLUSTER").arg("RESET").arg(how))
                        .await?;
                    Ok(())
                }
                Retire::Shutdown => {
                    // The connection drops as the server exits: that is the success case.
                    match self
                        .pool
                        .query::<redis::Value>(&node.addr, "SHUTDOWN", redis::cmd("SHUTDOWN").arg("NOSAVE"))
                        .await
                    {
                        Ok(_) | Err(Error::Connect { .. } | Error::Timeout { .. }) => Ok(()),
                        Err(e) => Err(e),
                    }
                }
            }
        })
    }

    fn record_membership(&self, id: &str, addr: &str, missed: &[String], added: bool) {
        // Only a node of the registry can be added back: a new node has nothing to end.
        if added && !crate::removed::load().iter().any(|r| r.id == id) {
            return;
        }
        let r = crate::removed::Removal {
            id: id.to_string(),
            addr: addr.to_string(),
            run: self.run_id.clone().unwrap_or_else(|| format!("{} (pid {})", self.holder.runbook, self.holder.pid)),
            ts: crate::journal::now(),
            missed: missed.to_vec(),
            event: if added { "added" } else { "removed" }.into(),
        };
        if let Err(e) = crate::removed::record(&r) {
            self.pool
                .out()
                .say(&format!("could not keep the removal of {} in the registry of removed nodes: {e}", r.addr));
        }
    }

    fn call(&self, node: &NodeInfo, args: &[String]) -> Result<serde_json::Value> {
        let Some((first, rest)) = args.split_first() else {
            return Err(Error::usage("call needs a command", Some("e.g. c.command(n, \"CLUSTER INFO\")")));
        };
        let mut cmd = redis::cmd(first);
        for a in rest {
            cmd.arg(a);
        }
        let name = first.to_uppercase();
        let v: redis::Value = self.block(self.pool.query(&node.addr, &name, &cmd))?;
        Ok(to_json(v))
    }

    fn probe(&self, addr: &Addr) -> Result<(String, usize, u64)> {
        self.pool.ask_again(addr);
        self.block(async {
            let id: String =
                self.pool.read(addr, "CLUSTER MYID", redis::cmd("CLUSTER").arg("MYID")).await.map_err(|e| match e {
                    Error::Command { reason, .. } if reason.contains("cluster support disabled") => {
                        Error::NotCluster { addr: addr.to_string() }
                    }
                    other => other,
                })?;
            let info: String = self.pool.read(addr, "CLUSTER INFO", redis::cmd("CLUSTER").arg("INFO")).await?;
            let known = stats::info_fields(&info).get("cluster_known_nodes").and_then(|v| v.parse().ok()).unwrap_or(0);
            let keys: u64 = self.pool.read(addr, "DBSIZE", &redis::cmd("DBSIZE")).await?;
            Ok((id, known, keys))
        })
    }

    fn meet(&self, on: &[NodeInfo], addr: &Addr) -> Result<()> {
        let pool = &self.pool;
        self.change(async {
            let meets = on.iter().map(|n| async move {
                let meet = redis::cmd("CLUSTER").arg("MEET").arg(&addr.host).arg(addr.port).clone();
                pool.query::<redis::Value>(&n.addr, "CLUSTER MEET", &meet).await
            });
            join_all(meets).await.into_iter().collect::<Result<Vec<_>>>().map(|_| ())
        })
    }

    fn denied(&self, node: &NodeInfo, probes: &[(&str, &[&str])]) -> Result<Vec<(String, String)>> {
        let mut pipe = redis::pipe();
        for (_, args) in probes {
            let mut cmd = redis::cmd(args[0]);
            cmd.arg(&args[1..]);
            pipe.add_command(cmd);
        }
        let replies = self.block(self.pool.read_pipeline(&node.addr, "permission probes", &pipe))?;
        Ok(probes
            .iter()
            .zip(replies)
            .filter_map(|((label, _), r)| match r {
                Err(reply) if reply.kind == crate::error::ServerKind::NoPerm => {
                    Some(((*label).to_string(), reply.text))
                }
                _ => None,
            })
            .collect())
    }

    fn largest_keys(&self, node: &NodeInfo, slots: &[u16]) -> Result<Vec<(String, u64)>> {
        self.block(migrate::largest_keys(&self.pool, node, slots))
    }

    fn node_timeout_ms(&self, topo: &Topology) -> Result<Option<u64>> {
        let Some(m) = topo.masters().find(|m| topo.is_reachable(&m.id)) else { return Ok(None) };
        let v: Vec<String> = self
            .block(self.pool.query(&m.addr, "CONFIG GET", redis::cmd("CONFIG").arg("GET").arg("cluster-node-timeout")))
            .unwrap_or_default();
        Ok(v.get(1).and_then(|t| t.parse().ok()))
    }

    fn canary(&self, src: &NodeInfo, dst: &NodeInfo, key: &str) -> Result<std::result::Result<(), String>> {
        self.block(migrate::canary(&self.pool, src, dst, key))
    }

    fn pause(&self, d: Duration) -> Result<()> {
        self.block(async move {
            tokio::time::sleep(d).await;
            Ok(())
        })
    }
}

/// A reply as data a script can use: strings, numbers, arrays, maps.
pub fn to_json(v: redis::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        redis::Value::Nil => J::Null,
        redis::Value::Int(i) => J::from(i),
        redis::Value::BulkString(b) => J::String(String::from_utf8_lossy(&b).into_owned()),
        redis::Value::SimpleString(s) => J::String(s),
        redis::Value::Okay => J::String("OK".into()),
        redis::Value::Array(a) | redis::Value::Set(a) => J::Array(a.into_iter().map(to_json).collect()),
        redis::Value::Map(m) => J::Object(
            m.into_iter()
                .map(|(k, v)| {
                    (
                        match to_json(k) {
                            J::String(s) => s,
                            other => other.to_string(),
                        },
                        to_json(v),
                    )
                })
                .collect(),
        ),
        redis::Value::Double(d) => J::from(d),
        redis::Value::Boolean(b) => J::Bool(b),
        redis::Value::VerbatimString { text, .. } => J::String(text),
        redis::Value::ServerError(e) => J::String(format!("{} {}", e.code(), e.details().unwrap_or_default())),
        other => J::String(format!("{other:?}")),
    }
}

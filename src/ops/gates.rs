//! Preflight gates: each a named check, reported, and skipped only when the operator names it
//! (`--skip-gates memory_headroom,canary`). A runbook runs them before its first change, so a
//! failing gate stops it while nothing has changed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::bytes::human_bytes;
use super::check::NodeStats;
use super::cluster::Cluster;
use super::settle::Problem;
use crate::error::{Error, Result};
use crate::model::{Topology, key_slot};
use crate::plan::Plan;

pub const GATES: &[&str] = &[
    "permissions",
    "cluster_state",
    "coverage",
    "agreement",
    "open_slots",
    "failed_nodes",
    "replicas_in_sync",
    "memory_headroom",
    "big_keys",
    "canary",
];

/// Every command a changing run sends (beyond the reads that found the cluster), each in a form
/// the server checks against the user's ACL *before* refusing or answering it without effect: an
/// out-of-range slot, an unknown node id, a syntax error, a key that does not exist. `MIGRATE`
/// and `SET` are proven by the canary, with real keys.
pub const PERMISSION_PROBES: &[(&str, &[&str])] = &[
    ("INFO", &["INFO", "memory"]),
    ("CONFIG GET", &["CONFIG", "GET", "cluster-node-timeout"]),
    ("CLIENT LIST", &["CLIENT", "LIST", "ID", "0"]),
    ("CLIENT SETNAME", &["CLIENT", "SETNAME", "runbook-preflight"]),
    ("CLUSTER COUNTKEYSINSLOT", &["CLUSTER", "COUNTKEYSINSLOT", "0"]),
    ("CLUSTER GETKEYSINSLOT", &["CLUSTER", "GETKEYSINSLOT", "0", "0"]),
    ("MEMORY USAGE", &["MEMORY", "USAGE", "runbook-permission-probe"]),
    ("CLUSTER SETSLOT", &["CLUSTER", "SETSLOT", "16384", "STABLE"]),
    ("CLUSTER FORGET", &["CLUSTER", "FORGET", "0000000000000000000000000000000000000000"]),
    ("CLUSTER REPLICATE", &["CLUSTER", "REPLICATE", "0000000000000000000000000000000000000000"]),
    ("CLUSTER RESET", &["CLUSTER", "RESET", "runbook-permission-probe"]),
];

/// In JSON as operators write them: `pass`, `warn`, `fail`, `skipped` (journals written before
/// this read too).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    #[serde(alias = "Pass")]
    Pass,
    #[serde(alias = "Warn")]
    Warn,
    #[serde(alias = "Fail")]
    Fail,
    #[serde(alias = "Skipped")]
    Skipped,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Gate {
    pub name: String,
    pub outcome: Outcome,
    pub detail: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GateReport {
    pub gates: Vec<Gate>,
}

impl GateReport {
    pub fn passed(&self) -> bool {
        !self.gates.iter().any(|g| g.outcome == Outcome::Fail)
    }

    /// The failing gates as an error, naming how to override each. A missing permission comes
    /// first (exit 4): no other gate can be judged, nor the run succeed, without it.
    pub fn to_error(&self) -> Option<Error> {
        let failed: Vec<&Gate> = self.gates.iter().filter(|g| g.outcome == Outcome::Fail).collect();
        if let Some(g) = failed.iter().find(|g| g.name == "permissions") {
            let denied = g.detail.split("; ").filter_map(|d| d.split(" (").next()).map(str::to_string).collect();
            return Some(Error::Permission {
                denied,
                reason: "the user's ACL refuses it (NOPERM); nothing was changed".into(),
            });
        }
        if failed.is_empty() {
            return None;
        }
        let message = format!(
            "preflight gate(s) failed, nothing was changed:\n  - {}",
            failed.iter().map(|g| format!("{}: {}", g.name, g.detail)).collect::<Vec<_>>().join("\n  - ")
        );
        let hint = if failed.iter().any(|g| g.name == "open_slots") {
            // Skipping is the wrong advice here: moving slots over open ones strands keys.
            "slots left open by a run that stopped: run that same command again to finish it (its journal knows the plan), or `runbook fix` to close them".to_string()
        } else {
            format!(
                "fix the cause, or skip a gate you have judged safe with --skip-gates {}",
                failed.iter().map(|g| g.name.as_str()).collect::<Vec<_>>().join(",")
            )
        };
        Some(Error::refused(message, Some(&hint)))
    }
}

impl fmt::Display for GateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "preflight gates:")?;
        for g in &self.gates {
            let mark = match g.outcome {
                Outcome::Pass => "ok  ",
                Outcome::Warn => "warn",
                Outcome::Fail => "FAIL",
                Outcome::Skipped => "skip",
            };
            writeln!(f, "  [{mark}] {:<17} {}", g.name, g.detail)?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
pub struct GateOpts {
    pub skip: BTreeSet<String>,
    /// Receivers must stay under maxmemory × (1 − headroom) after the move.
    pub headroom: f64,
    /// How long to wait for a state that settles by itself (`--settle`) before refusing.
    pub settle: Duration,
}

/// `--settle`'s default: long enough for a failover (cluster-node-timeout plus the election)
/// and a replica's resync, short enough that a refusal comes soon.
pub const DEFAULT_SETTLE_SECS: u64 = 30;

impl Default for GateOpts {
    fn default() -> Self {
        Self { skip: BTreeSet::new(), headroom: 0.2, settle: Duration::from_secs(DEFAULT_SETTLE_SECS) }
    }
}

/// Runs every gate; with a plan, also the gates about what it moves.
pub fn preflight(c: &dyn Cluster, plan: Option<&Plan>, opts: &GateOpts) -> Result<GateReport> {
    if let Some(bad) = opts.skip.iter().find(|s| !GATES.contains(&s.as_str())) {
        return Err(Error::usage(
            format!("no gate named `{bad}`"),
            Some(&format!("the gates are {}", GATES.join(", "))),
        ));
    }
    if !(0.0..1.0).contains(&opts.headroom) {
        return Err(Error::usage(format!("headroom {} is out of range: a fraction from 0 to 1", opts.headroom), None));
    }
    // A state that settles by itself (a replica syncing, a failover under way, nodes not yet
    // agreeing) is waited for, up to `settle`; a persistent one refuses at once.
    let settled = super::settle::wait(c, &opts.skip, opts.settle)?;
    let (topo, stats) = (&settled.topo, &settled.stats);
    let mut gates = Vec::new();
    let mut gate = |n: &str, check: &mut dyn FnMut() -> Result<(Outcome, String)>| -> Result<()> {
        let g = if opts.skip.contains(n) {
            Gate { name: n.into(), outcome: Outcome::Skipped, detail: "skipped by the operator".into() }
        } else {
            let (outcome, detail) = check()?;
            Gate { name: n.into(), outcome, detail }
        };
        gates.push(g);
        Ok(())
    };
    let dry_run = c.is_dry_run();
    let verdict = |name: &str, good: &str| {
        let mine: Vec<&Problem> = settled.problems.iter().filter(|p| p.gate == name).collect();
        if mine.is_empty() {
            return (Outcome::Pass, good.to_string());
        }
        let text = mine
            .iter()
            .map(|p| match &p.settles {
                Some(why) => format!("{} (settles by itself: {why})", p.text),
                None => p.text.clone(),
            })
            .collect::<Vec<_>>()
            .join("; ");
        let transient = mine.iter().all(|p| p.is_transient());
        let settle = opts.settle.as_secs();
        if transient && dry_run {
            (Outcome::Warn, format!("{text}; a real run waits up to {settle} s for it (--settle)"))
        } else if transient && settled.problems.iter().all(Problem::is_transient) {
            (Outcome::Fail, format!("{text}; not settled after {settle} s (--settle SECS waits longer)"))
        } else {
            (Outcome::Fail, text)
        }
    };

    gate("permissions", &mut || permissions_gate(c, topo))?;
    gate("cluster_state", &mut || Ok(verdict("cluster_state", "every node reports cluster_state:ok")))?;
    gate("coverage", &mut || Ok(verdict("coverage", "all 16384 slots covered")))?;
    gate("agreement", &mut || Ok(verdict("agreement", "every node agrees on slots and membership")))?;
    gate("open_slots", &mut || Ok(verdict("open_slots", "no slot is migrating or importing")))?;
    gate("failed_nodes", &mut || Ok(verdict("failed_nodes", "no failed or unreachable node")))?;
    gate("replicas_in_sync", &mut || Ok(verdict("replicas_in_sync", "every replica's link to its master is up")))?;
    let Some(plan) = plan else {
        return Ok(GateReport { gates });
    };
    let incoming = incoming_bytes(plan, stats);
    let unread = unreadable(plan, topo, stats);
    gate("memory_headroom", &mut || {
        if unread.is_empty() {
            Ok(headroom_gate(topo, stats, &incoming, opts.headroom))
        } else {
            Ok((Outcome::Fail, format!("cannot judge without memory and key counts: {}", unread.join("; "))))
        }
    })?;
    gate("big_keys", &mut || big_keys_gate(c, topo, plan))?;
    gate("canary", &mut || canary_gate(c, topo, plan))?;
    Ok(GateReport { gates })
}

/// Every command the run will send, tried harmlessly on every reachable node.
fn permissions_gate(c: &dyn Cluster, topo: &Topology) -> Result<(Outcome, String)> {
    let mut denied: BTreeMap<String, (Vec<String>, String)> = BTreeMap::new();
    let nodes: Vec<_> = topo.nodes().iter().filter(|n| topo.is_reachable(&n.id)).collect();
    for node in &nodes {
        for (label, reason) in c.denied(node, PERMISSION_PROBES)? {
            let entry = denied.entry(label).or_insert_with(|| (Vec::new(), reason));
            entry.0.push(node.addr.to_string());
        }
    }
    if denied.is_empty() {
        return Ok((
            Outcome::Pass,
            format!("the user may run every command the run sends, on all {} reachable node(s)", nodes.len()),
        ));
    }
    let detail = denied
        .into_iter()
        .map(|(label, (on, reason))| {
            let on = if on.len() == nodes.len() { "every node".to_string() } else { on.join(", ") };
            format!("{label} on {on} ({reason})")
        })
        .collect::<Vec<_>>()
        .join("; ");
    Ok((Outcome::Fail, detail))
}

/// The plan's nodes whose memory or key count could not be read, with the reason.
fn unreadable(plan: &Plan, topo: &Topology, stats: &BTreeMap<String, NodeStats>) -> Vec<String> {
    let involved: BTreeSet<&str> = plan.moves.iter().flat_map(|m| [m.from.as_str(), m.to.as_str()]).collect();
    // Grouped by reason: a refused INFO is refused on every node alike.
    let mut by_reason: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for id in involved {
        let addr = topo.node(id).map_or_else(|| id.to_string(), |n| n.addr.to_string());
        let why = match stats.get(id) {
            None => "did not answer".to_string(),
            Some(NodeStats { unreadable: Some(why), .. }) => why.clone(),
            Some(_) => continue,
        };
        by_reason.entry(why).or_default().push(addr);
    }
    by_reason.into_iter().map(|(why, nodes)| format!("{}: {why}", nodes.join(", "))).collect()
}

/// Bytes each receiver would take: its share of the plan's keys, at each source's average key size.
fn incoming_bytes(plan: &Plan, stats: &BTreeMap<String, NodeStats>) -> BTreeMap<String, u64> {
    let per_key = |id: &str| stats.get(id).map_or(0, NodeStats::bytes_per_key);
    let mut out: BTreeMap<String, u64> = BTreeMap::new();
    for (i, m) in plan.moves.iter().enumerate() {
        let keys = plan.keys.as_ref().map_or(0, |k| k[i]);
        *out.entry(m.to.clone()).or_default() += keys * per_key(&m.from);
    }
    out
}

fn headroom_gate(
    topo: &Topology,
    stats: &BTreeMap<String, NodeStats>,
    incoming: &BTreeMap<String, u64>,
    headroom: f64,
) -> (Outcome, String) {
    let mut bad = Vec::new();
    let mut notes = Vec::new();
    for (id, bytes) in incoming {
        let Some(s) = stats.get(id) else { continue };
        let used = s.used_memory.unwrap_or(0);
        let (limit, basis) = match s.maxmemory.filter(|m| *m > 0) {
            Some(m) => (m, "maxmemory"),
            None => (s.total_system_memory.unwrap_or(0), "the host's memory (no maxmemory set)"),
        };
        if limit == 0 {
            continue;
        }
        let allowed = (limit as f64 * (1.0 - headroom)) as u64;
        let after = used + bytes;
        let addr = topo.node(id).map_or_else(|| id.clone(), |n| n.addr.to_string());
        if after > allowed {
            bad.push(format!(
                "{addr} would hold ~{} after receiving ~{}, over {} of {basis} ({})",
                human_bytes(after),
                human_bytes(*bytes),
                format_args!("{:.0}%", (1.0 - headroom) * 100.0),
                human_bytes(limit)
            ));
        } else {
            notes.push(format!("{addr} ~{} of {}", human_bytes(after), human_bytes(allowed)));
        }
    }
    if bad.is_empty() {
        (
            Outcome::Pass,
            format!(
                "receivers stay under their limit: {}",
                if notes.is_empty() { "nothing to receive".into() } else { notes.join(", ") }
            ),
        )
    } else {
        (Outcome::Fail, bad.join("; "))
    }
}

/// The largest key among a sample of each moving slot's keys; a warning when moving it would take
/// longer than half of cluster-node-timeout (MIGRATE blocks both nodes meanwhile).
fn big_keys_gate(c: &dyn Cluster, topo: &Topology, plan: &Plan) -> Result<(Outcome, String)> {
    let mut largest: Option<(u64, String, String)> = None;
    let mut by_source: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
    for m in &plan.moves {
        by_source.entry(m.from.as_str()).or_default().push(m.slot);
    }
    for (src, slots) in by_source {
        let Some(node) = topo.node(src) else { continue };
        let sampled = match c.largest_keys(node, &slots) {
            Ok(s) => s,
            Err(e) => return Ok((Outcome::Fail, format!("cannot size the keys {} would send: {e}", node.addr))),
        };
        for (key, bytes) in sampled {
            if largest.as_ref().is_none_or(|(b, _, _)| bytes > *b) {
                largest = Some((bytes, key, node.addr.to_string()));
            }
        }
    }
    let Some((bytes, key, addr)) = largest else {
        return Ok((Outcome::Pass, "no keys to move".into()));
    };
    let timeout_ms = c.node_timeout_ms(topo)?.unwrap_or(15_000);
    // A conservative 50 MB/s for DUMP, transfer and RESTORE together.
    let secs = bytes as f64 / 50e6;
    let detail = format!("largest sampled key `{key}` on {addr}: ~{}, about {secs:.1}s to move", human_bytes(bytes));
    if secs * 1000.0 > timeout_ms as f64 / 2.0 {
        Ok((
            Outcome::Warn,
            format!("{detail}, over half of cluster-node-timeout ({timeout_ms} ms): replicas may fail over meanwhile"),
        ))
    } else {
        Ok((Outcome::Pass, detail))
    }
}

/// A throwaway key MIGRATEd (COPY) from every planned source to every planned target with the
/// real credentials. The target refuses it with MOVED (it does not own the slot), but only after
/// AUTH succeeded: MOVED is the proof that the pair can talk and authenticate.
fn canary_gate(c: &dyn Cluster, topo: &Topology, plan: &Plan) -> Result<(Outcome, String)> {
    let pairs: BTreeSet<(&str, &str)> = plan.moves.iter().map(|m| (m.from.as_str(), m.to.as_str())).collect();
    let mut bad = Vec::new();
    for (from, to) in &pairs {
        let (Some(src), Some(dst)) = (topo.node(from), topo.node(to)) else { continue };
        let Some(key) = (0..100_000)
            .map(|i| format!("runbook-canary:{{{i}}}"))
            .find(|k| src.slots.contains(key_slot(k.as_bytes())))
        else {
            continue;
        };
        if let Err(reason) = c.canary(src, dst, &key)? {
            bad.push(format!("{} cannot MIGRATE to {}: {reason}", src.addr, dst.addr));
        }
    }
    if c.is_dry_run() {
        // The canary writes a key, so a dry run cannot try it: say so rather than claim a pass.
        Ok((
            Outcome::Skipped,
            format!("not tried in a dry run (it writes a throwaway key); the real run tries {} pair(s)", pairs.len()),
        ))
    } else if bad.is_empty() {
        Ok((
            Outcome::Pass,
            format!("MIGRATE works with these credentials between {} (source, target) pair(s)", pairs.len()),
        ))
    } else {
        Ok((Outcome::Fail, bad.join("; ")))
    }
}

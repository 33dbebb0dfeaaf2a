//! Removing nodes from the cluster: FORGET everywhere within the ban window, `del_node`, and
//! waiting until every node agrees.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::cluster::{Cluster, Retire};
use crate::error::{Error, Result};
use crate::model::{Addr, NodeInfo, Topology, describe, select};
use crate::output::Every;
use crate::removed::Removal;

/// How `del_node` treats the node's replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicaPolicy {
    /// Re-home each to the master with fewest replicas (never a leaving node).
    Rehome,
    /// Remove them from the cluster too.
    Remove,
}

#[derive(Clone, Debug)]
pub struct DelNodeOpts {
    pub replicas: ReplicaPolicy,
    pub retire: Retire,
    /// Node ids also on their way out: never chosen as a new master for replicas.
    pub leaving: Vec<String>,
}

impl Default for DelNodeOpts {
    fn default() -> Self {
        Self { replicas: ReplicaPolicy::Rehome, retire: Retire::Reset, leaving: Vec::new() }
    }
}

/// What `del_node` did, for the runbook's summary.
#[derive(Clone, Debug, Default)]
pub struct DelNodeReport {
    pub removed: Vec<String>,
    pub rehomed: Vec<(String, String)>,
    pub notes: Vec<String>,
}

/// The ban list keeps a forgotten node out for 60 s (`cluster-blacklist-ttl`); every node must
/// have forgotten it well inside that, so the rounds stop at 45 s.
const FORGET_WINDOW: Duration = Duration::from_secs(45);

/// How often a wait says what it is waiting for.
const TELL_EVERY: Duration = Duration::from_secs(3);

/// Sends `CLUSTER FORGET id` to every other reachable node in parallel, then re-reads every
/// node and repeats where the node is still known, until none knows it. Returns the nodes that
/// could not be told (unreachable, or silent when asked), as (id, address): they still know it.
pub fn forget_everywhere(c: &dyn Cluster, id: &str) -> Result<Vec<(String, String)>> {
    let started = Instant::now();
    let mut tell = Every::new(TELL_EVERY);
    let mut round = 0;
    let mut addr = None;
    // By id: the address to name it by.
    let mut missed: BTreeMap<String, String> = BTreeMap::new();
    loop {
        let topo = c.topology()?;
        if round == 0 {
            addr = topo.node(id).map(|n| n.addr.to_string());
            for n in topo.nodes().iter().filter(|n| n.id != id && !topo.is_reachable(&n.id)) {
                missed.insert(n.id.clone(), n.addr.to_string());
            }
        }
        let holders: Vec<NodeInfo> = topo
            .nodes()
            .iter()
            .filter(|n| n.id != id && topo.is_reachable(&n.id))
            .filter(|n| round == 0 || topo.views().get(&n.id).is_some_and(|v| v.iter().any(|x| x.id == id)))
            .cloned()
            .collect();
        if holders.is_empty() && round > 0 {
            c.out().emit(
                "forgotten",
                serde_json::json!({"node": id, "addr": addr, "missed": missed.values().collect::<Vec<_>>()}),
            );
            return Ok(missed.into_iter().collect());
        }
        if round > 0 {
            let names: Vec<String> = holders.iter().map(|n| n.addr.to_string()).collect();
            tell.say(c.out(), || {
                format!(
                    "forget round {}: {} is still known by {} ({}s of {}s)",
                    round + 1,
                    addr.as_deref().unwrap_or(id),
                    names.join(", "),
                    started.elapsed().as_secs(),
                    FORGET_WINDOW.as_secs()
                )
            });
        }
        for (node, result) in c.forget(&holders, id) {
            let Err(e) = result else {
                missed.remove(&node);
                continue;
            };
            let text = e.to_string();
            if text.contains("Unknown node") {
                missed.remove(&node);
                continue;
            }
            let who = topo.node(&node).map_or(node.clone(), describe);
            if text.contains("Can't forget my master") {
                return Err(Error::refused(
                    format!("{who} is a replica of the node being removed and cannot forget its own master"),
                    Some("re-home or remove its replicas first: del_node(node, #{ replicas: \"rehome\" })"),
                ));
            }
            if matches!(e, Error::Connect { .. } | Error::Timeout { .. }) {
                // Gone silent since it was read: like a node unreachable from the start, it
                // keeps knowing the node, which the caller deals with.
                missed.insert(node.clone(), topo.node(&node).map_or(node, |n| n.addr.to_string()));
                continue;
            }
            return Err(e);
        }
        if round > 0 && started.elapsed() > FORGET_WINDOW {
            let names: Vec<String> = holders.iter().map(describe).collect();
            return Err(Error::Timeout {
                what: "making every node forget the removed node".into(),
                detail: format!("still known by {}", names.join(", ")),
            });
        }
        round += 1;
    }
}

/// `forget_everywhere`, kept in the registry of removed nodes, and the nodes that missed it named.
pub fn forget_node(c: &dyn Cluster, node: &NodeInfo) -> Result<Vec<String>> {
    let missed: Vec<String> = forget_everywhere(c, &node.id)?.into_iter().map(|(_, addr)| addr).collect();
    c.record_membership(&node.id, &node.addr.to_string(), &missed, false);
    if !missed.is_empty() {
        c.out().say(&format!(
            "{} missed the forget (unreachable): it still knows {}; run `runbook fix` once it answers, to finish the forget",
            missed.join(" and "),
            node.addr
        ));
    }
    Ok(missed)
}

/// For each removed node of the registry that some node knows again (it missed the forget, or
/// learned the node back from one that did), finishes the forget: `CLUSTER FORGET` on every node,
/// verified. A node that answers with that id and knows the cluster is a member again (added
/// back by hand), not a leftover: it is named and left alone. Returns one sentence per node.
pub fn finish_forgets(c: &dyn Cluster, removed: &[Removal]) -> Result<Vec<String>> {
    let topo = c.topology()?;
    let again = super::check::known_again(&topo, removed);
    if again.is_empty() {
        c.out().say("no removed node is known again: no forget to finish");
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for k in again {
        // Its own view: a removed node that was reset knows only itself, whoever lists it.
        let member = topo.views().get(&k.id).is_some_and(|v| v.len() > 1);
        if member {
            let s =
                format!("{}: {}; it knows the cluster too, so it was added back: left as it is", k.addr, k.sentence());
            c.out().say(&s);
            out.push(s);
            continue;
        }
        c.out().say(&format!("{}: forgetting it everywhere", k.sentence()));
        // The other removed nodes it knows are not nodes that missed this forget.
        let missed: Vec<String> = forget_everywhere(c, &k.id)?
            .into_iter()
            .filter(|(id, _)| !removed.iter().any(|r| &r.id == id))
            .map(|(_, addr)| addr)
            .collect();
        let s = format!("{} forgot {} (removed by run {})", k.known_by.join(", "), k.addr, k.run);
        c.out().say(&s);
        out.push(s);
        if let Some(node) = topo.node(&k.id).filter(|_| topo.is_reachable(&k.id)) {
            // Still running with the id the others just forgot (reset SOFT by an older run):
            // a new id keeps a node that missed this round from bringing it back.
            c.out().say(&format!("{}: CLUSTER RESET HARD, so that it answers with a new id", k.addr));
            c.retire(node, Retire::ResetHard)?;
        }
        if !missed.is_empty() {
            let m = missed.join(", ");
            c.record_membership(&k.id, &k.addr, &missed, false);
            out.push(format!("{m} could not be told to forget {}: run `runbook fix` again once it answers", k.addr));
            c.out().say(out.last().expect("just pushed"));
        }
    }
    Ok(out)
}

/// Finishes removing a node the cluster has already forgotten (a resumed run, or a run that
/// died before resetting it): resets it if it still remembers the cluster.
pub fn finish_removed(c: &dyn Cluster, node: &NodeInfo, retire: Retire) -> Result<DelNodeReport> {
    let mut report = DelNodeReport { removed: vec![node.addr.to_string()], ..DelNodeReport::default() };
    match c.probe(&node.addr) {
        Ok((id, known, _)) if id == node.id && known > 1 && retire != Retire::Keep => {
            c.out().say(&format!("{} was already forgotten by the cluster; finishing its removal", node.addr));
            c.retire(node, retire)?;
        }
        Ok(_) => c.out().say(&format!("{} was already removed", node.addr)),
        Err(_) => report.notes.push(format!("{} was already forgotten and is unreachable", node.addr)),
    }
    Ok(report)
}

/// Removes a node that owns no slots: its replicas re-homed or removed, every other node made to
/// forget it, then the node itself reset or shut down. Works when the node is unreachable.
pub fn del_node(c: &dyn Cluster, id: &str, opts: &DelNodeOpts) -> Result<DelNodeReport> {
    let topo = c.topology()?;
    let node =
        topo.node(id).ok_or_else(|| Error::refused(format!("no node with id {id} in the cluster"), None))?.clone();
    if !node.slots.is_empty() {
        return Err(Error::refused(
            format!(
                "{} still owns {} slots; removing it would leave them uncovered",
                describe(&node),
                node.slots.len()
            ),
            Some("move them first: c.apply(c.plan_drain(node)), then del_node"),
        ));
    }
    if topo.nodes().len() <= 1 {
        return Err(Error::refused("it is the last node of the cluster", None));
    }
    let mut report = DelNodeReport::default();
    let mut leaving = opts.leaving.clone();
    leaving.push(node.id.clone());
    let replicas: Vec<NodeInfo> = topo.replicas_of(&node.id).cloned().collect();
    for r in &replicas {
        match opts.replicas {
            ReplicaPolicy::Remove => {
                let sub = del_node(c, &r.id, &DelNodeOpts { leaving: leaving.clone(), ..opts.clone() })?;
                report.removed.extend(sub.removed);
                report.notes.extend(sub.notes);
            }
            ReplicaPolicy::Rehome => {
                let topo = c.topology()?;
                let master = fewest_replicas(&topo, &leaving).ok_or_else(|| {
                    Error::refused(
                        format!("no master is left to take {} as a replica", describe(r)),
                        Some("remove it instead: #{ replicas: \"remove\" }"),
                    )
                })?;
                c.out().say(&format!("{} becomes a replica of {}", r.addr, master.addr));
                c.replicate(r, &master.id)?;
                report.rehomed.push((r.addr.to_string(), master.addr.to_string()));
            }
        }
    }
    c.out().say(&format!("making every node forget {}", describe(&node)));
    let missed = forget_node(c, &node)?;
    let mut retire = opts.retire;
    if !missed.is_empty() {
        // A node that missed the FORGET still knows this one and gossips about it; once the
        // others' 60 s ban ends they add it back from that gossip, id and address as given
        // (clusterProcessGossipSection: any node not `noaddr` and not banned), and ping it.
        // Reset SOFT, it answers with the same id and is a member again. Shut down, it stays
        // in that gossip with its address, so every node adds it back as a failed node (and
        // restarted, it would rejoin from its nodes.conf). Reset HARD, it answers with a new
        // id: a node pinging the old id there marks it `noaddr` ("PONG contains mismatching
        // sender ID"), and gossip about a `noaddr` node is ignored, so the old id stays with
        // the nodes that missed the forget until `runbook fix` ends it. tests/faults.rs
        // watches past the ban: SOFT and SHUTDOWN both let it come back, HARD does not.
        retire = match opts.retire {
            Retire::Reset => Retire::ResetHard,
            other => other,
        };
    }
    // Tried even when the last read of the cluster could not reach it: a node busy loading a
    // resync can miss a bounded read and still be up, and left running with its id it would be
    // brought back by gossip. One that really is down fails fast (connection refused).
    let reachable = topo.is_reachable(&node.id) || c.probe(&node.addr).is_ok_and(|(id, _, _)| id == node.id);
    if reachable {
        let how = match retire {
            Retire::Reset => "CLUSTER RESET SOFT",
            Retire::ResetHard => {
                "CLUSTER RESET HARD (a new id, so that gossip from a node that missed the forget cannot bring it back)"
            }
            Retire::Shutdown => "SHUTDOWN",
            Retire::Keep => "left running",
        };
        if retire == Retire::Shutdown && !missed.is_empty() {
            // Reset first: restarted some day from its nodes.conf, it would rejoin.
            c.out().say(&format!("{}: CLUSTER RESET HARD, then SHUTDOWN", node.addr));
            c.retire(&node, Retire::ResetHard)?;
        } else {
            c.out().say(&format!("{}: {how}", node.addr));
        }
        if retire == Retire::Keep && !missed.is_empty() {
            report.notes.push(format!(
                "{} keeps running with its id (keep_running): {} may bring it back into the cluster; `runbook check` will say so",
                node.addr,
                missed.join(" and ")
            ));
        }
        c.retire(&node, retire)?;
    } else {
        report.notes.push(format!(
            "{} was unreachable: every other node has forgotten it; make sure it stays down or is reset before it returns",
            node.addr
        ));
    }
    report.removed.push(node.addr.to_string());
    c.out().emit(
        "removed",
        serde_json::json!({"node": node.id, "addr": node.addr.to_string(), "retired": format!("{:?}", opts.retire)}),
    );
    Ok(report)
}

/// The master (not failing, not leaving) with fewest replicas; ties by address.
fn fewest_replicas<'a>(topo: &'a Topology, leaving: &[String]) -> Option<&'a NodeInfo> {
    topo.masters()
        .filter(|m| !m.is_failed() && !leaving.contains(&m.id) && topo.is_reachable(&m.id))
        .min_by_key(|m| (topo.replicas_of(&m.id).count(), m.addr.host.clone(), m.addr.port))
}

/// Waits until every reachable node agrees on slots and membership and reports
/// `cluster_state:ok` (a master that just joined stays `fail` for up to 5 s, and a MIGRATE to it
/// fails with CLUSTERDOWN meanwhile). On timeout, names the nodes that still disagree and how.
/// Roles are not waited for: a master emptied by a drain turns itself into a replica, and the
/// others learn it only by gossip (up to half of cluster-node-timeout); no step relies on it.
pub fn wait_converged(c: &dyn Cluster, timeout: Duration) -> Result<Topology> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut tell = Every::new(TELL_EVERY);
    loop {
        let topo = c.topology()?;
        let mut problems = super::check::agreement(&topo);
        if problems.is_empty() {
            problems = super::check::cluster_state(&topo, &c.stats(&topo)?);
        }
        if problems.is_empty() {
            return Ok(topo);
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: format!("waiting {}s for the nodes to agree", timeout.as_secs()),
                detail: problems.join("; "),
            });
        }
        tell.say(c.out(), || {
            let more = if problems.len() > 1 { format!(" (and {} more)", problems.len() - 1) } else { String::new() };
            format!(
                "waiting for the nodes to agree ({}s of {}s): {}{more}",
                started.elapsed().as_secs(),
                timeout.as_secs(),
                problems[0]
            )
        });
        c.pause(Duration::from_millis(100))?;
    }
}

/// Adds an empty node at `addr`: MEET, wait until every node knows it, and with `replica_of`
/// make it a replica of that master. Refuses a node that has keys or belongs to a cluster.
pub fn add_node(c: &dyn Cluster, addr: &Addr, replica_of: Option<&str>, timeout: Duration) -> Result<NodeInfo> {
    let topo = c.topology()?;
    let (id, known, keys) = c.probe(addr).map_err(|e| match e {
        Error::Connect { reason, .. } => Error::refused(
            format!("the new node {addr} cannot be reached: {reason}"),
            Some("start it first: redis-server with cluster-enabled yes, empty, reachable from here"),
        ),
        other => other,
    })?;
    if let Some(existing) = topo.node(&id) {
        // Already added, e.g. by the run this one resumes: make sure of the role, and stop.
        c.out().say(&format!("{addr} is already part of the cluster"));
        c.record_membership(&existing.id, &existing.addr.to_string(), &[], true);
        if let Some(master) = replica_of
            && existing.master_id.as_deref() != Some(master)
        {
            c.replicate(existing, master)?;
            return Ok(wait_converged(c, timeout)?.node(&id).cloned().unwrap_or_else(|| existing.clone()));
        }
        return Ok(existing.clone());
    }
    if known > 1 || keys > 0 {
        return Err(Error::refused(
            format!("{addr} is not empty: it knows {known} nodes and holds {keys} keys"),
            Some("add only a fresh node (or run CLUSTER RESET HARD and FLUSHALL on it, if you are sure)"),
        ));
    }
    // Every node meets it, not one: a node forgotten less than 60 s ago (removed, then added back)
    // is on the others' FORGET ban list, and they ignore gossip about it until the ban ends; a
    // MEET of their own is not refused.
    let on: Vec<NodeInfo> =
        topo.nodes().iter().filter(|n| topo.is_reachable(&n.id) && !n.is_failed()).cloned().collect();
    if on.is_empty() {
        return Err(Error::refused("no reachable node to introduce the new node", None));
    }
    c.out().say(&format!("adding {addr} to the cluster"));
    c.meet(&on, addr)?;
    let mut topo = wait_converged(c, timeout)?;
    while topo.node(&id).is_none() {
        c.pause(Duration::from_millis(100))?;
        topo = wait_converged(c, timeout)?;
    }
    if let Some(master) = replica_of {
        let m = topo.node(master).ok_or_else(|| Error::refused(format!("unknown master {master}"), None))?;
        let new = topo.node(&id).expect("waited for it").clone();
        c.out().say(&format!("{addr} becomes a replica of {}", m.addr));
        c.replicate(&new, &m.id)?;
        topo = wait_converged(c, timeout)?;
    }
    let added = select(&topo, &id)?.clone();
    c.record_membership(&added.id, &added.addr.to_string(), &[], true);
    Ok(added)
}

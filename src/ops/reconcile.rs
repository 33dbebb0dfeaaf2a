//! Carrying out a reconciliation: wait (bounded, visibly) for a failover to settle, gather the
//! evidence (every node's view, keys per slot on every reachable master), let the pure
//! `plan::reconcile` decide, then execute its actions and say each decision with its reason.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::cluster::{Cluster, MoveOpts, SetSlot};
use crate::error::{Error, Result};
use crate::model::{SLOTS, Topology};
use crate::plan::reconcile::{Action, Intent, Keep, KeyCounts, Reconciliation, unsettled};
use crate::plan::{Batch, reconcile};

/// How long to wait for a failover to settle: a replica is promoted after about twice
/// `cluster-node-timeout`; this leaves room for the election and for gossip.
pub fn failover_wait(c: &dyn Cluster, topo: &Topology) -> Duration {
    let timeout = c.node_timeout_ms(topo).ok().flatten().unwrap_or(15_000);
    Duration::from_millis(timeout * 3 + 10_000).min(Duration::from_secs(120))
}

/// Waits until no failover is under way, saying what it waits for every few seconds; a timeout
/// names what is still unsettled.
pub fn settled(c: &dyn Cluster, intents: &[Intent], wait: Duration) -> Result<Topology> {
    let started = Instant::now();
    let mut said: Option<Instant> = None;
    loop {
        let topo = c.topology()?;
        let Some(why) = unsettled(&topo, intents) else { return Ok(topo) };
        if started.elapsed() >= wait {
            return Err(Error::Timeout {
                what: format!("waiting {}s for a failover to settle", wait.as_secs()),
                detail: why,
            });
        }
        if said.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
            c.out().say(&format!(
                "waiting for the cluster to settle ({}s of at most {}s): {why}",
                started.elapsed().as_secs(),
                wait.as_secs()
            ));
            said = Some(Instant::now());
        }
        c.pause(Duration::from_millis(250))?;
    }
}

/// One master's id and its non-zero (slot, keys) counts.
type NodeCounts = (String, Vec<(u16, u64)>);

/// Keys per slot on every reachable master, for the slots it does not own (stranded keys) and
/// for every slot that is open or intended; counted on all masters at once.
fn count_keys(c: &dyn Cluster, topo: &Topology, intents: &[Intent]) -> Result<KeyCounts> {
    let mut watched: Vec<u16> = topo.open_slots().iter().map(|o| o.slot).collect();
    watched.extend(intents.iter().flat_map(|i| i.slots.iter().copied()));
    watched.sort_unstable();
    watched.dedup();
    let masters: Vec<_> = topo.masters().filter(|m| topo.is_reachable(&m.id)).collect();
    let counted: Vec<Result<NodeCounts>> = std::thread::scope(|s| {
        let handles: Vec<_> = masters
            .iter()
            .map(|m| {
                let watched = &watched;
                s.spawn(move || {
                    let slots: Vec<u16> =
                        (0..SLOTS).filter(|s| !m.slots.contains(*s) || watched.binary_search(s).is_ok()).collect();
                    let counts = c.count_keys(m, &slots)?;
                    Ok((m.id.clone(), slots.into_iter().zip(counts).filter(|(_, n)| *n > 0).collect()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(Error::refused("a count thread panicked", None))))
            .collect()
    });
    let mut keys: KeyCounts = BTreeMap::new();
    for r in counted {
        let (id, counts) = r?;
        for (slot, n) in counts {
            keys.entry(slot).or_default().insert(id.clone(), n);
        }
    }
    Ok(keys)
}

/// Brings every open slot (and every slot of `intents` a move had begun) to one owner holding
/// all its keys, and every stranded key to its slot's owner. Waits up to `wait` for a failover
/// first. Each decision is said with its reason; slots it will not decide on are an error,
/// after everything else was done.
pub fn repair(c: &dyn Cluster, intents: &[Intent], opts: &MoveOpts, wait: Duration) -> Result<Reconciliation> {
    let topo = settled(c, intents, wait)?;
    let keys = count_keys(c, &topo, intents)?;
    let r = reconcile(&topo, &keys, intents);
    let name = |id: &str| topo.name(id);
    for (failed, successor) in &r.replaced {
        // A receiver that died importing keeps those imports in its nodes.conf. Valkey 8,
        // restarted from it, takes such a slot once its source (still known by its old id) gives
        // it up, bumping its epoch without consensus, and with that epoch wins back its old slots
        // from `successor`, dropping what was written there since. A decommission ends the risk
        // by retiring the source with a new id; other runbooks leave the source in place.
        let receiver = intents.iter().any(|i| i.to == *failed);
        c.out().say(&format!(
            "{} failed over to {} during the run: the move goes on with {}{}",
            name(failed),
            name(successor),
            name(successor),
            if receiver {
                format!(
                    "; {} died importing slots: unless this run removes their source, restart it without its nodes.conf \
                     (Valkey, restarted from it, takes back a slot it was importing once the source gives it up, and its \
                     old slots from {} with it)",
                    name(failed),
                    name(successor)
                )
            } else {
                String::new()
            }
        ));
    }
    execute(c, &topo, &r, opts)?;
    replicas_closed(c, &topo, &r)?;
    for line in r.sentences() {
        c.out().say(&line);
    }
    if !r.unresolved.is_empty() {
        let slots: crate::model::SlotSet = r.unresolved.iter().map(|u| u.0).collect();
        return Err(Error::refused(
            format!("{} slot(s) were left as they are: {slots}", slots.len()),
            Some("see the reasons above; `runbook check` shows the cluster now; the other slots were repaired"),
        ));
    }
    Ok(r)
}

/// How long a replica may take to pick up its master's SETSLOT STABLE: Valkey replicates a
/// SETSLOT only to replicas whose link is online, so one still loading its first sync after a
/// restart misses it and needs it sent again.
const REPLICA_SYNC_WAIT: Duration = Duration::from_secs(60);

/// Waits until each replica whose open state a master's STABLE was to close no longer shows it,
/// sending the STABLE again each second meanwhile; bounded, and said every few seconds.
/// Only the replicas that showed the state before the repair are watched, so a server whose
/// replicas never keep open slots (Redis closes them) costs no extra read.
fn replicas_closed(c: &dyn Cluster, before: &Topology, r: &Reconciliation) -> Result<()> {
    let kept = |slot: u16, master: &str| {
        before.replicas_of(master).any(|rep| rep.migrating.contains_key(&slot) || rep.importing.contains_key(&slot))
    };
    let stable: Vec<(u16, &str)> = r
        .decisions
        .iter()
        .flat_map(|d| &d.actions)
        .filter_map(|a| match a {
            Action::Stable { slot, node } if kept(*slot, node) => Some((*slot, node.as_str())),
            _ => None,
        })
        .collect();
    if stable.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    let mut tell = crate::output::Every::new(Duration::from_secs(5));
    loop {
        let topo = c.topology()?;
        let mut pending: BTreeMap<String, (crate::model::NodeInfo, Vec<u16>, Vec<String>)> = BTreeMap::new();
        for &(slot, master) in &stable {
            for rep in topo.replicas_of(master).filter(|n| topo.is_reachable(&n.id)) {
                if rep.migrating.contains_key(&slot) || rep.importing.contains_key(&slot) {
                    let Some(m) = topo.node(master) else { continue };
                    let e = pending.entry(master.to_string()).or_insert_with(|| (m.clone(), Vec::new(), Vec::new()));
                    e.1.push(slot);
                    e.2.push(rep.addr.to_string());
                }
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = pending
            .values()
            .flat_map(|(_, _, r)| r.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if started.elapsed() > REPLICA_SYNC_WAIT {
            return Err(Error::refused(
                format!(
                    "{} still show open slots that their masters closed {}s ago",
                    names.join(", "),
                    REPLICA_SYNC_WAIT.as_secs()
                ),
                Some(
                    "a replica gets its master's SETSLOT only while its replication link is up: check `INFO replication` on it, then run `runbook fix` again",
                ),
            ));
        }
        tell.say(c.out(), || {
            format!(
                "waiting for {} to take SETSLOT STABLE from its master (a replica still syncing misses it): {}s of at most {}s",
                names.join(", "),
                started.elapsed().as_secs(),
                REPLICA_SYNC_WAIT.as_secs()
            )
        });
        std::thread::sleep(Duration::from_secs(1));
        for (m, slots, _) in pending.values() {
            c.setslot(m, slots, &SetSlot::Stable)?;
        }
    }
}

/// Move options that settle a key found on both nodes as `keep` says.
fn conflicts(opts: &MoveOpts, keep: Keep) -> MoveOpts {
    MoveOpts { replace: keep == Keep::Mover, keep_target: keep == Keep::Receiver, ..opts.clone() }
}

/// The actions in a safe order: stale views corrected first (a node that believes a dead node
/// owns a slot refuses MIGRATE), then whole moves (batched per pair, as a drain's), then
/// leftover states closed, then keys returned to owners.
fn execute(c: &dyn Cluster, topo: &Topology, r: &Reconciliation, opts: &MoveOpts) -> Result<()> {
    let actions: Vec<&Action> = r.decisions.iter().flat_map(|d| &d.actions).collect();
    let node = |id: &str| {
        topo.node(id).cloned().ok_or_else(|| Error::refused(format!("node {id} is no longer in the cluster"), None))
    };
    let mut assign: BTreeMap<(&str, &str), Vec<u16>> = BTreeMap::new();
    let mut stable: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
    for a in &actions {
        match a {
            Action::Assign { slot, node, owner } => assign.entry((node, owner)).or_default().push(*slot),
            Action::Stable { slot, node } => stable.entry(node).or_default().push(*slot),
            _ => {}
        }
    }
    for ((id, owner), slots) in &assign {
        c.setslot(&node(id)?, slots, &SetSlot::Node((*owner).to_string()))?;
    }
    let mut batches: Vec<(Batch, Keep)> = Vec::new();
    for a in &actions {
        if let Action::Finish { slot, from, to, keep } = a {
            match batches.iter_mut().find(|(b, k)| b.from == *from && b.to == *to && k == keep) {
                Some((b, _)) => b.slots.push(*slot),
                None => batches.push((Batch { from: from.clone(), to: to.clone(), slots: vec![*slot] }, *keep)),
            }
        }
    }
    for (b, keep) in batches {
        let opts = conflicts(opts, keep);
        for chunk in b.slots.chunks(opts.slots_per_batch.max(1)) {
            let batch = Batch { from: b.from.clone(), to: b.to.clone(), slots: chunk.to_vec() };
            c.move_slots(&c.topology()?, &batch, &opts, &|_| {})?;
        }
    }
    // Leftover states close before keys come back: an owner still MIGRATING a slot answers a
    // RESTORE of a key it lacks with ASK instead of taking it.
    for (id, slots) in &stable {
        c.setslot(&node(id)?, slots, &SetSlot::Stable)?;
    }
    for a in &actions {
        if let Action::ReturnKeys { slot, node: from, owner, keep } = a {
            let (n, o) = (node(from)?, node(owner)?);
            if !n.importing.contains_key(slot) && !n.migrating.contains_key(slot) {
                c.setslot(&n, &[*slot], &SetSlot::Importing(o.id.clone()))?;
            }
            c.move_keys(&n, &o, *slot, &conflicts(opts, *keep))?;
            c.setslot(&n, &[*slot], &SetSlot::Stable)?;
        }
    }
    Ok(())
}

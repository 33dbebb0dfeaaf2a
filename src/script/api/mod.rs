//! The functions runbooks call. Each is registered with its parameters' names and a doc line,
//! the one source for `runbook functions`, the REPL's help and the guide; each primitive of a
//! cluster is declared with what it does to the cluster (`Primitive`), the one source for the
//! journal, the lease and lint.

use std::sync::Arc;
use std::time::Duration;

use rhai::{Array, Dynamic, Engine, Map};

use super::journaled::{decide, j, show};
use super::options::{MAX_SLEEP_SECS, MOVE_KEYS, check_keys, del_opts, move_opts, number, rebalance_opts, wait_secs};
use super::primitive::{Primitive, Registrar};
use super::session::Session;
use super::types::{CheckValue, ClusterHandle, GatesValue, Node, PlanValue, RhaiResult, SlotRanges, rhai_err};
use crate::error::Error;
use crate::model::{NodeInfo, Topology, select};
use crate::ops::{self, Cluster, MoveOpts};
use crate::plan::{self, Move, Plan};

// The primitives, each declared once with what it does to the cluster (see `Effect`), and
// registered below with its parameters and doc.
const NODES: Primitive = Primitive::reads("nodes");
const MASTERS: Primitive = Primitive::reads("masters");
const REPLICAS_OF: Primitive = Primitive::reads("replicas_of");
const NODE: Primitive = Primitive::reads("node");
const FIND_NODE: Primitive = Primitive::reads("find_node");
const SLOTS_OF: Primitive = Primitive::reads("slots_of");
const KEYS_PER_SLOT: Primitive = Primitive::reads("keys_per_slot");
const FINGERPRINT: Primitive = Primitive::reads("fingerprint");
const PLAN_DRAIN: Primitive = Primitive::reads("plan_drain");
const PLAN_REBALANCE: Primitive = Primitive::reads("plan_rebalance");
const CHECK: Primitive = Primitive::checks("check");
const WAIT_CONVERGED: Primitive = Primitive::checks("wait_converged");
const PREFLIGHT: Primitive = Primitive::checks("preflight");
const MIGRATE_SLOT: Primitive = Primitive::changes("migrate_slot");
const MIGRATE_SLOTS: Primitive = Primitive::changes("migrate_slots");
const APPLY: Primitive = Primitive::changes("apply");
const FORGET: Primitive = Primitive::changes("forget");
const DEL_NODE: Primitive = Primitive::changes("del_node");
const REBALANCE: Primitive = Primitive::changes("rebalance");
const ADD_NODE: Primitive = Primitive::changes("add_node");
const REPLICATE: Primitive = Primitive::changes("replicate");
const FIX: Primitive = Primitive::changes("fix");
/// A raw command can change anything, so a runbook calling `command` needs the lease; each call
/// is journaled by what it sends (`COMMAND_READ` for a read).
const COMMAND: Primitive = Primitive::changes("command");
/// A read sent through `command`, journaled apart so a resumed run does not take it for a change.
const COMMAND_READ: Primitive = Primitive::reads("command_read");

fn err<T>(e: Error) -> RhaiResult<T> {
    Err(rhai_err(e))
}

/// The node a runbook means: a `Node` (looked up again by id), a selector string or a port.
fn resolve(topo: &Topology, who: &Dynamic) -> Result<NodeInfo, Error> {
    if let Some(n) = who.clone().try_cast::<Node>() {
        return topo.node(&n.0.id).cloned().ok_or_else(|| {
            Error::refused(
                format!("{} is no longer part of the cluster", n.0.addr),
                Some("re-read it with c.node(...)"),
            )
        });
    }
    let sel = if let Ok(i) = who.as_int() {
        i.to_string()
    } else {
        who.clone()
            .into_string()
            .map_err(|t| Error::usage(format!("a node is a Node, a port, host:port or a node id, not a {t}"), None))?
    };
    match select(topo, &sel) {
        Ok(n) => Ok(n.clone()),
        Err(e) => Err(removed_earlier(&sel).unwrap_or_else(|| e.into())),
    }
}

/// A selector that names a node removed earlier from here (`removed.jsonl`): at 3 a.m. the
/// question is "did that already happen?", and the answer is more use than the candidates.
fn removed_earlier(sel: &str) -> Option<Error> {
    let r = crate::removed::load().into_iter().rev().find(|r| {
        r.event == "removed" && (r.addr == sel || r.addr.rsplit_once(':').is_some_and(|(_, p)| p == sel) || r.id == sel)
    })?;
    Some(Error::usage(
        format!(
            "{} is no longer in the cluster: it was removed by run {} at {}",
            r.addr,
            r.run,
            crate::holder::unix_time(r.ts as u64)
        ),
        Some(
            "nothing is left to do for it; `runbook journal` shows what that run did, `runbook check` the cluster now",
        ),
    ))
}

/// A runbook's own input check failed: bad input (exit 2) while the run has changed nothing, a
/// failed step (exit 1) once it has; the run's end decides which (`Error::after_changes`).
fn fail_input(message: &str) -> Error {
    Error::usage(message, Some("correct the parameters and run the same command again"))
}

fn nodes_of(topo: &Topology, pick: impl Fn(&NodeInfo) -> bool) -> Array {
    topo.nodes().iter().filter(|n| pick(n)).map(|n| Dynamic::from(Node(n.clone()))).collect()
}

fn report_map(r: &ops::ApplyReport) -> Map {
    let mut m = Map::new();
    m.insert("slots".into(), Dynamic::from(r.stats.slots as i64));
    m.insert("keys".into(), Dynamic::from(r.stats.keys as i64));
    m.insert("seconds".into(), Dynamic::from(r.seconds));
    m.insert("most_open".into(), Dynamic::from(r.most_open as i64));
    m
}

/// Adds the key count of every planned slot, so the plan shows what it will move.
fn with_keys(c: &dyn Cluster, topo: &Topology, mut plan: Plan) -> Result<Plan, Error> {
    let mut keys = vec![0u64; plan.moves.len()];
    let mut by_source: std::collections::BTreeMap<&str, Vec<usize>> = std::collections::BTreeMap::new();
    for (i, m) in plan.moves.iter().enumerate() {
        by_source.entry(m.from.as_str()).or_default().push(i);
    }
    for (src, idx) in by_source {
        let Some(node) = topo.node(src) else { continue };
        let slots: Vec<u16> = idx.iter().map(|&i| plan.moves[i].slot).collect();
        for (i, n) in idx.iter().zip(c.count_keys(node, &slots)?) {
            keys[*i] = n;
        }
    }
    plan.keys = Some(keys);
    Ok(plan)
}

fn apply_plan(c: &dyn Cluster, plan: &Plan, mopts: &MoveOpts) -> RhaiResult<Map> {
    ops::apply(c, plan, mopts).map(|r| report_map(&r)).map_err(rhai_err)
}

fn migrate(c: &dyn Cluster, slots: &[i64], to: &Dynamic, opts: &Map) -> RhaiResult<Map> {
    check_keys(opts, MOVE_KEYS, "migrate_slot").map_err(rhai_err)?;
    let mopts = move_opts(opts).map_err(rhai_err)?;
    let topo = c.topology().map_err(rhai_err)?;
    let target = resolve(&topo, to).map_err(rhai_err)?;
    if !target.is_master() {
        return err(Error::usage(format!("{} is a replica: slots can only go to a master", target.addr), None));
    }
    let mut moves = Vec::new();
    for &s in slots {
        let slot = u16::try_from(s)
            .ok()
            .filter(|s| *s < crate::model::SLOTS)
            .ok_or_else(|| rhai_err(Error::usage(format!("{s} is not a slot (0-16383)"), None)))?;
        let owner = topo.owner(slot).ok_or_else(|| {
            rhai_err(Error::refused(format!("slot {slot} has no owner"), Some("run `runbook check`")))
        })?;
        if owner.id != target.id {
            moves.push(Move { slot, from: owner.id.clone(), to: target.id.clone() });
        }
    }
    moves.sort_by(|a, b| (&a.from, a.slot).cmp(&(&b.from, b.slot)));
    apply_plan(c, &Plan::new("moves", &topo, moves), &mopts)
}

/// When the run records or replays a plan, `rebalance` moves by a decision like `plan_rebalance`.
fn decided_rebalance(s: &Session, c: &ClusterHandle, opts: &Map) -> RhaiResult<Option<PlanValue>> {
    if s.decisions.is_none() {
        return Ok(None);
    }
    decide(s, c, PLAN_REBALANCE, "", |cl| plan_rebalance(cl, opts)).map(Some)
}

fn slot_list(slots: &Array) -> RhaiResult<Vec<i64>> {
    slots
        .iter()
        .map(|s| s.as_int().map_err(|t| rhai_err(Error::usage(format!("slots are integers, not {t}"), None))))
        .collect()
}

/// Registers every function runbooks call, and returns the primitives among them.
pub fn register(engine: &mut Engine, session: &Arc<Session>) -> Vec<Primitive> {
    let mut r = Registrar::new(engine);
    let s = session.clone();
    r.function(
        "cluster",
        [],
        "The cluster named by --cluster or RUNBOOK_CLUSTER.",
        move || -> RhaiResult<ClusterHandle> { s.cluster(None).map_err(rhai_err) },
    );
    let s = session.clone();
    r.function(
        "cluster",
        ["addr"],
        "The cluster that `addr` (host:port of any node) belongs to.",
        move |addr: &str| -> RhaiResult<ClusterHandle> { s.cluster(Some(addr)).map_err(rhai_err) },
    );
    let s = session.clone();
    r.function(
        "confirm",
        ["question"],
        "Asks a yes/no question; --yes answers yes; with no terminal and no --yes the run stops (exit 5).",
        move |q: &str| -> RhaiResult<bool> { s.confirm(q).map_err(rhai_err) },
    );
    r.function(
        "fail_input",
        ["message"],
        "Stops the run because its input is wrong: exit 2 and the message, before anything changed (exit 1, saying so, after).",
        |message: &str| -> RhaiResult<()> { err(fail_input(message)) },
    );
    let s = session.clone();
    r.function(
        "sleep",
        ["secs"],
        "Waits `secs` seconds, 0 to 86400 (Ctrl-C interrupts).",
        move |secs: f64| -> RhaiResult<()> { sleep(&s, secs) },
    );
    let s = session.clone();
    r.function(
        "sleep",
        ["secs"],
        "Waits `secs` seconds, 0 to 86400 (Ctrl-C interrupts).",
        move |secs: i64| -> RhaiResult<()> {
            // Checked as an integer first: a huge one would print rounded as a float.
            if !(0..=MAX_SLEEP_SECS as i64).contains(&secs) {
                return err(Error::usage(
                    format!("sleep({secs}): seconds must be a number from 0 to {MAX_SLEEP_SECS} (one day)"),
                    Some("give the wait in seconds, e.g. sleep(0.5) or sleep(30)"),
                ));
            }
            sleep(&s, secs as f64)
        },
    );

    r.primitive(
        NODES,
        ["c"],
        "Every node of the cluster, sorted by address.",
        |c: &mut ClusterHandle| -> RhaiResult<Array> {
            j(c, NODES, "", |cl| Ok(nodes_of(&cl.topology().map_err(rhai_err)?, |_| true)))
        },
    );
    r.primitive(MASTERS, ["c"], "The masters, sorted by address.", |c: &mut ClusterHandle| -> RhaiResult<Array> {
        j(c, MASTERS, "", |cl| Ok(nodes_of(&cl.topology().map_err(rhai_err)?, NodeInfo::is_master)))
    });
    r.primitive(
        REPLICAS_OF,
        ["c", "node"],
        "The replicas of a master.",
        |c: &mut ClusterHandle, n: Dynamic| -> RhaiResult<Array> {
            j(c, REPLICAS_OF, &show(&n), |cl| {
                let topo = cl.topology().map_err(rhai_err)?;
                let m = resolve(&topo, &n).map_err(rhai_err)?;
                Ok(nodes_of(&topo, |r| !r.is_master() && r.master_id.as_deref() == Some(m.id.as_str())))
            })
        },
    );
    r.primitive(
        NODE,
        ["c", "selector"],
        "The node a selector names: a port (6397), host:port, or a node id (8+ hex characters, or id:PREFIX).",
        |c: &mut ClusterHandle, sel: Dynamic| -> RhaiResult<Node> {
            j(c, NODE, &show(&sel), |cl| Ok(Node(resolve(&cl.topology().map_err(rhai_err)?, &sel).map_err(rhai_err)?)))
        },
    );
    r.primitive(
        FIND_NODE,
        ["c", "selector"],
        "The node a selector names, or () when no node of the cluster matches (a malformed or ambiguous selector is still an error).",
        |c: &mut ClusterHandle, sel: Dynamic| -> RhaiResult<Dynamic> {
            j(c, FIND_NODE, &show(&sel), |cl| match resolve(&cl.topology().map_err(rhai_err)?, &sel) {
                Ok(n) => Ok(Dynamic::from(Node(n))),
                Err(Error::Select(crate::model::SelectError::NotFound { .. })) => Ok(Dynamic::UNIT),
                Err(e) => Err(rhai_err(e)),
            })
        },
    );
    r.primitive(
        SLOTS_OF,
        ["c", "node"],
        "The slots a node owns: prints as 0-5460,10923; r[0] is the first range [start, end], r.count the slots.",
        |c: &mut ClusterHandle, n: Dynamic| -> RhaiResult<SlotRanges> {
            j(c, SLOTS_OF, &show(&n), |cl| {
                let n = resolve(&cl.topology().map_err(rhai_err)?, &n).map_err(rhai_err)?;
                Ok(SlotRanges(n.slots))
            })
        },
    );
    r.primitive(
        KEYS_PER_SLOT,
        ["c", "node"],
        "Each slot a master owns with its key count, in slot order: [#{slot: 13654, keys: 120}, ...]. Sort it to find the busiest.",
        |c: &mut ClusterHandle, n: Dynamic| -> RhaiResult<Array> {
            j(c, KEYS_PER_SLOT, &show(&n), |cl| {
                let n = resolve(&cl.topology().map_err(rhai_err)?, &n).map_err(rhai_err)?;
                let slots: Vec<u16> = n.slots.iter().collect();
                let counts = cl.count_keys(&n, &slots).map_err(rhai_err)?;
                Ok(slots
                    .iter()
                    .zip(counts)
                    .map(|(s, k)| {
                        let mut m = Map::new();
                        m.insert("slot".into(), Dynamic::from(i64::from(*s)));
                        m.insert("keys".into(), Dynamic::from(k as i64));
                        Dynamic::from(m)
                    })
                    .collect())
            })
        },
    );
    r.primitive(
        FINGERPRINT,
        ["c"],
        "A short hash of the slot map and membership.",
        |c: &mut ClusterHandle| -> RhaiResult<String> {
            j(c, FINGERPRINT, "", |cl| Ok(cl.topology().map_err(rhai_err)?.fingerprint()))
        },
    );
    r.primitive(
        CHECK,
        ["c"],
        "Health: coverage, agreement on slots and membership, open slots, failures, per-master load.",
        |c: &mut ClusterHandle| -> RhaiResult<CheckValue> {
            j(c, CHECK, "", |cl| {
                let topo = cl.topology().map_err(rhai_err)?;
                let stats = cl.stats(&topo).map_err(rhai_err)?;
                let report = ops::CheckReport::build(&topo, &stats).with_removed(&topo, &crate::removed::load());
                Ok(CheckValue(Arc::new(report)))
            })
        },
    );
    r.primitive(
        WAIT_CONVERGED,
        ["c"],
        "Waits (up to 60 s) until every node agrees on slots and membership and reports cluster_state:ok.",
        |c: &mut ClusterHandle| -> RhaiResult<()> {
            j(c, WAIT_CONVERGED, "60", |cl| {
                ops::wait_converged(cl, Duration::from_secs(60)).map(|_| ()).map_err(rhai_err)
            })
        },
    );
    r.primitive(
        WAIT_CONVERGED,
        ["c", "secs"],
        "Waits up to `secs` seconds until every node agrees on slots and membership and reports cluster_state:ok.",
        |c: &mut ClusterHandle, secs: i64| -> RhaiResult<()> {
            j(c, WAIT_CONVERGED, &secs.to_string(), |cl| {
                let wait = wait_secs(secs as f64, "wait_converged").map_err(rhai_err)?;
                ops::wait_converged(cl, wait).map(|_| ()).map_err(rhai_err)
            })
        },
    );
    r.primitive(
        MIGRATE_SLOT,
        ["c", "slot", "to"],
        "Moves one slot, keys and ownership, to the master `to`.",
        |c: &mut ClusterHandle, slot: i64, to: Dynamic| -> RhaiResult<Map> {
            j(c, MIGRATE_SLOT, &format!("{slot} to {}", show(&to)), |cl| migrate(cl, &[slot], &to, &Map::new()))
        },
    );
    r.primitive(
        MIGRATE_SLOT,
        ["c", "slot", "to", "opts"],
        "Moves one slot to `to`; opts: pipeline, timeout (ms), replace, batch.",
        |c: &mut ClusterHandle, slot: i64, to: Dynamic, opts: Map| -> RhaiResult<Map> {
            j(c, MIGRATE_SLOT, &format!("{slot} to {}", show(&to)), |cl| migrate(cl, &[slot], &to, &opts))
        },
    );
    r.primitive(
        MIGRATE_SLOTS,
        ["c", "slots", "to"],
        "Moves several slots to `to`, batched per source.",
        |c: &mut ClusterHandle, slots: Array, to: Dynamic| -> RhaiResult<Map> {
            let slots = slot_list(&slots)?;
            j(c, MIGRATE_SLOTS, &format!("{} slots to {}", slots.len(), show(&to)), |cl| {
                migrate(cl, &slots, &to, &Map::new())
            })
        },
    );
    r.primitive(
        MIGRATE_SLOTS,
        ["c", "slots", "to", "opts"],
        "Moves several slots to `to`; opts: pipeline, timeout (ms), replace, batch.",
        |c: &mut ClusterHandle, slots: Array, to: Dynamic, opts: Map| -> RhaiResult<Map> {
            let slots = slot_list(&slots)?;
            j(c, MIGRATE_SLOTS, &format!("{} slots to {}", slots.len(), show(&to)), |cl| {
                migrate(cl, &slots, &to, &opts)
            })
        },
    );
    let (s1, s2, s3) = (session.clone(), session.clone(), session.clone());
    let (s4, s5) = (session.clone(), session.clone());
    r.primitive(
        PLAN_DRAIN,
        ["c", "nodes"],
        "A plan spreading the slots of a master (or an array of masters) evenly over the others.",
        move |c: &mut ClusterHandle, who: Dynamic| -> RhaiResult<PlanValue> {
            decide(&s1, c, PLAN_DRAIN, &show(&who), |cl| {
                let topo = cl.topology().map_err(rhai_err)?;
                let list: Array = who.clone().try_cast::<Array>().unwrap_or_else(|| vec![who.clone()]);
                let ids: Vec<String> =
                    list.iter().map(|w| resolve(&topo, w).map(|n| n.id)).collect::<Result<_, _>>().map_err(rhai_err)?;
                let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                let plan = plan::plan_drain(&topo, &ids).map_err(|e| rhai_err(e.into()))?;
                Ok(PlanValue(Arc::new(with_keys(cl, &topo, plan).map_err(rhai_err)?)))
            })
        },
    );
    r.primitive(
        PLAN_REBALANCE,
        ["c"],
        "A rebalance plan with default options (threshold 2%).",
        move |c: &mut ClusterHandle| -> RhaiResult<PlanValue> {
            decide(&s2, c, PLAN_REBALANCE, "", |cl| plan_rebalance(cl, &Map::new()))
        },
    );
    r.primitive(
        PLAN_REBALANCE,
        ["c", "opts"],
        "A rebalance plan; opts: weights, auto_weights, use_empty_masters, threshold.",
        move |c: &mut ClusterHandle, opts: Map| -> RhaiResult<PlanValue> {
            decide(&s3, c, PLAN_REBALANCE, "", |cl| plan_rebalance(cl, &opts))
        },
    );
    r.primitive(
        APPLY,
        ["c", "plan"],
        "Carries out a plan, batch by batch; returns #{slots, keys, seconds}.",
        |c: &mut ClusterHandle, p: PlanValue| -> RhaiResult<Map> {
            j(c, APPLY, &show(&Dynamic::from(p.clone())), |cl| apply_plan(cl, &p.0, &MoveOpts::default()))
        },
    );
    r.primitive(
        APPLY,
        ["c", "plan", "opts"],
        "Carries out a plan; opts: pipeline, timeout (ms), replace, batch.",
        |c: &mut ClusterHandle, p: PlanValue, opts: Map| -> RhaiResult<Map> {
            check_keys(&opts, MOVE_KEYS, "apply").map_err(rhai_err)?;
            let mopts = move_opts(&opts).map_err(rhai_err)?;
            j(c, APPLY, &show(&Dynamic::from(p.clone())), |cl| apply_plan(cl, &p.0, &mopts))
        },
    );
    r.primitive(
        FORGET,
        ["c", "node"],
        "Makes every other node forget a node (CLUSTER FORGET everywhere, verified, repeated within the 60 s ban).",
        |c: &mut ClusterHandle, n: Dynamic| -> RhaiResult<()> {
            j(c, FORGET, &show(&n), |cl| {
                let n = resolve(&cl.topology().map_err(rhai_err)?, &n).map_err(rhai_err)?;
                ops::forget_node(cl, &n).map(|_| ()).map_err(rhai_err)
            })
        },
    );
    r.primitive(
        DEL_NODE,
        ["c", "node"],
        "Removes a node that owns no slots: re-homes its replicas, forgets it everywhere, then CLUSTER RESET SOFT.",
        |c: &mut ClusterHandle, n: Dynamic| -> RhaiResult<Map> {
            j(c, DEL_NODE, &show(&n), |cl| del_node(cl, &n, &Map::new()))
        },
    );
    r.primitive(
        DEL_NODE,
        ["c", "node", "opts"],
        "Removes a node; opts: replicas (\"rehome\" or \"remove\"), shutdown, keep_running.",
        |c: &mut ClusterHandle, n: Dynamic, opts: Map| -> RhaiResult<Map> {
            j(c, DEL_NODE, &show(&n), |cl| del_node(cl, &n, &opts))
        },
    );
    r.primitive(
        REBALANCE,
        ["c"],
        "Evens out slots across masters (threshold 2%); returns #{slots, keys, seconds}.",
        move |c: &mut ClusterHandle| -> RhaiResult<Map> {
            let decided = decided_rebalance(&s4, c, &Map::new())?;
            j(c, REBALANCE, "", |cl| rebalance(cl, &Map::new(), decided.as_ref().map(|p| p.0.as_ref())))
        },
    );
    r.primitive(
        REBALANCE,
        ["c", "opts"],
        "Rebalance; opts: weights, auto_weights, use_empty_masters, threshold, simulate, pipeline, timeout, replace.",
        move |c: &mut ClusterHandle, opts: Map| -> RhaiResult<Map> {
            let decided = decided_rebalance(&s5, c, &opts)?;
            j(c, REBALANCE, "", |cl| rebalance(cl, &opts, decided.as_ref().map(|p| p.0.as_ref())))
        },
    );
    r.primitive(
        ADD_NODE,
        ["c", "addr"],
        "Adds an empty node (host:port) to the cluster as a master without slots.",
        |c: &mut ClusterHandle, addr: &str| -> RhaiResult<Node> {
            j(c, ADD_NODE, addr, |cl| add_node(cl, addr, &Map::new()))
        },
    );
    r.primitive(
        ADD_NODE,
        ["c", "addr", "opts"],
        "Adds an empty node; opts: replica_of (a master), timeout (s).",
        |c: &mut ClusterHandle, addr: &str, opts: Map| -> RhaiResult<Node> {
            j(c, ADD_NODE, addr, |cl| add_node(cl, addr, &opts))
        },
    );
    let settle = session.settle;
    r.primitive(
        PREFLIGHT,
        ["c", "plan"],
        "The preflight gates for a plan: state, coverage, agreement, open slots, failures, replica sync, memory headroom, big keys, canary MIGRATE. A state that settles by itself is waited for (--settle, 30 s).",
        move |c: &mut ClusterHandle, p: PlanValue| -> RhaiResult<GatesValue> {
            j(c, PREFLIGHT, &show(&Dynamic::from(p.clone())), |cl| gates(cl, Some(&p.0), &Map::new(), settle))
        },
    );
    r.primitive(
        PREFLIGHT,
        ["c", "plan", "opts"],
        "The preflight gates for a plan; opts: skip (gate names, an array or \"a,b\"), headroom (0.2), settle (seconds to wait for a transient state; --settle, 30).",
        move |c: &mut ClusterHandle, p: PlanValue, opts: Map| -> RhaiResult<GatesValue> {
            j(c, PREFLIGHT, &show(&Dynamic::from(p.clone())), |cl| gates(cl, Some(&p.0), &opts, settle))
        },
    );
    r.primitive(
        REPLICATE,
        ["c", "replica", "master"],
        "Makes `replica` a replica of `master` (CLUSTER REPLICATE); a no-op when it already is.",
        |c: &mut ClusterHandle, replica: Dynamic, master: Dynamic| -> RhaiResult<()> {
            j(c, REPLICATE, &format!("{} {}", show(&replica), show(&master)), |cl| {
                let topo = cl.topology().map_err(rhai_err)?;
                let r = resolve(&topo, &replica).map_err(rhai_err)?;
                let m = resolve(&topo, &master).map_err(rhai_err)?;
                if !m.is_master() {
                    return Err(rhai_err(Error::usage(
                        format!("{} is a replica: a replica needs a master", m.addr),
                        None,
                    )));
                }
                if r.master_id.as_deref() == Some(m.id.as_str()) {
                    return Ok(());
                }
                if !r.slots.is_empty() {
                    return Err(rhai_err(Error::refused(
                        format!("{} owns {} slots: move them away before it can replicate", r.addr, r.slots.len()),
                        None,
                    )));
                }
                cl.out().say(&format!("{} becomes a replica of {}", r.addr, m.addr));
                cl.replicate(&r, &m.id).map_err(rhai_err)
            })
        },
    );
    r.primitive(
        FIX,
        ["c"],
        "Closes every open slot (MIGRATING/IMPORTING) as redis-cli's fix does, printing each decision.",
        |c: &mut ClusterHandle| -> RhaiResult<Array> {
            j(c, FIX, "", |cl| {
                Ok(ops::fix_open_slots(cl, &MoveOpts::default())
                    .map_err(rhai_err)?
                    .into_iter()
                    .map(Dynamic::from)
                    .collect())
            })
        },
    );
    let s = session.clone();
    r.primitive(
        COMMAND,
        ["c", "node", "command"],
        "Runs a raw command on one node, e.g. c.command(n, \"CLUSTER INFO\"); the reply as data. Destructive ones (FLUSHALL, CONFIG SET, CLUSTER RESET, ...) need a confirm() before them, or --yes.",
        move |c: &mut ClusterHandle, n: Dynamic, cmd: &str| -> RhaiResult<Dynamic> {
            raw_command(&s, c, &n, cmd.split_whitespace().map(str::to_string).collect())
        },
    );
    let s = session.clone();
    r.primitive(
        COMMAND,
        ["c", "node", "args"],
        "Runs a raw command given as an array of arguments, e.g. c.command(n, [\"CONFIG\", \"GET\", \"maxmemory\"]).",
        move |c: &mut ClusterHandle, n: Dynamic, args: Array| -> RhaiResult<Dynamic> {
            raw_command(&s, c, &n, args.iter().map(ToString::to_string).collect())
        },
    );
    r.declared()
}

/// `c.command(...)`: a read runs as it is; a write is journaled and takes the lease; a
/// destructive command also needs the run to have confirmed something (or `--yes`).
fn raw_command(s: &Session, c: &ClusterHandle, n: &Dynamic, args: Vec<String>) -> RhaiResult<Dynamic> {
    use crate::ops::command::{CommandKind, command_name, kind};
    if args.is_empty() {
        return err(Error::usage("c.command needs a command", Some("e.g. c.command(n, \"CLUSTER INFO\")")));
    }
    let name = command_name(&args);
    let kind = kind(&args);
    if kind == CommandKind::Destructive && !s.confirmed() {
        return err(Error::refused(
            format!("{name} is destructive, and the run has not asked for a confirmation; nothing was sent"),
            Some("call confirm(\"…\") before c.command sends it (--yes answers it), or pass --yes"),
        ));
    }
    let primitive = if kind == CommandKind::Read { COMMAND_READ } else { COMMAND };
    j(c, primitive, &format!("{} {name}", show(n)), |cl| command(cl, n, &args))
}

fn sleep(s: &Session, secs: f64) -> RhaiResult<()> {
    let until = std::time::Instant::now() + wait_secs(secs, "sleep").map_err(rhai_err)?;
    while std::time::Instant::now() < until {
        if s.cancelled() {
            return err(Error::Cancelled);
        }
        std::thread::sleep(Duration::from_millis(20).min(until.saturating_duration_since(std::time::Instant::now())));
    }
    Ok(())
}

fn plan_rebalance(c: &dyn Cluster, opts: &Map) -> RhaiResult<PlanValue> {
    let topo = c.topology().map_err(rhai_err)?;
    let (r, _, _) = rebalance_opts(c, &topo, opts).map_err(rhai_err)?;
    let plan = plan::plan_rebalance(&topo, &r).map_err(|e| rhai_err(e.into()))?;
    Ok(PlanValue(Arc::new(with_keys(c, &topo, plan).map_err(rhai_err)?)))
}

/// Rebalances by `decided` (a plan's decision) or by a plan computed now.
fn rebalance(c: &dyn Cluster, opts: &Map, decided: Option<&Plan>) -> RhaiResult<Map> {
    let topo = c.topology().map_err(rhai_err)?;
    let (r, mopts, simulate) = rebalance_opts(c, &topo, opts).map_err(rhai_err)?;
    let plan = match decided {
        Some(p) => p.clone(),
        None => plan::plan_rebalance(&topo, &r).map_err(|e| rhai_err(e.into()))?,
    };
    let mut out = if plan.is_empty() {
        c.out().say(&format!("no rebalancing needed: {}", plan.note.clone().unwrap_or_default()));
        report_map(&ops::ApplyReport::default())
    } else if simulate {
        c.out().say(&format!("simulate: would move {} slots", plan.moves.len()));
        report_map(&ops::ApplyReport::default())
    } else {
        apply_plan(c, &plan, &mopts)?
    };
    out.insert("plan".into(), Dynamic::from(PlanValue(Arc::new(plan))));
    Ok(out)
}

fn del_node(c: &dyn Cluster, n: &Dynamic, opts: &Map) -> RhaiResult<Map> {
    let topo = c.topology().map_err(rhai_err)?;
    let opts = del_opts(opts).map_err(rhai_err)?;
    let r = match n.clone().try_cast::<Node>() {
        // A node the cluster no longer knows was removed already (by a run this one resumes).
        Some(gone) if topo.node(&gone.0.id).is_none() => {
            ops::finish_removed(c, &gone.0, opts.retire).map_err(rhai_err)?
        }
        _ => {
            let node = resolve(&topo, n).map_err(rhai_err)?;
            ops::del_node(c, &node.id, &opts).map_err(rhai_err)?
        }
    };
    let mut m = Map::new();
    m.insert("removed".into(), Dynamic::from(r.removed.into_iter().map(Dynamic::from).collect::<Array>()));
    m.insert(
        "rehomed".into(),
        Dynamic::from(r.rehomed.into_iter().map(|(a, b)| Dynamic::from(format!("{a} → {b}"))).collect::<Array>()),
    );
    for note in &r.notes {
        c.out().say(note);
    }
    Ok(m)
}

fn command(c: &dyn Cluster, n: &Dynamic, args: &[String]) -> RhaiResult<Dynamic> {
    let topo = c.topology().map_err(rhai_err)?;
    let node = resolve(&topo, n).map_err(rhai_err)?;
    let v = c.call(&node, args).map_err(rhai_err)?;
    rhai::serde::to_dynamic(v)
        .map_err(|e| rhai_err(Error::Protocol { node: node.addr.to_string(), reason: e.to_string() }))
}

fn add_node(c: &dyn Cluster, addr: &str, opts: &Map) -> RhaiResult<Node> {
    check_keys(opts, &["replica_of", "timeout"], "add_node").map_err(rhai_err)?;
    let addr = crate::config::parse_seed(addr).map_err(rhai_err)?;
    let topo = c.topology().map_err(rhai_err)?;
    let master = match opts.get("replica_of") {
        Some(m) => {
            let m = resolve(&topo, m).map_err(rhai_err)?;
            if !m.is_master() {
                return err(Error::usage(format!("{} is a replica: replica_of needs a master", m.addr), None));
            }
            Some(m.id)
        }
        None => None,
    };
    let timeout = opts.get("timeout").map(|v| number(v, "timeout")).transpose().map_err(rhai_err)?.unwrap_or(60.0);
    let timeout = wait_secs(timeout, "add_node timeout").map_err(rhai_err)?.max(Duration::from_secs(1));
    ops::add_node(c, &addr, master.as_deref(), timeout).map(Node).map_err(rhai_err)
}

/// `settle` is `--settle`; the option map's `settle` wins over it.
fn gates(c: &dyn Cluster, plan: Option<&Plan>, opts: &Map, settle: Option<u64>) -> RhaiResult<GatesValue> {
    check_keys(opts, &["skip", "headroom", "settle"], "preflight").map_err(rhai_err)?;
    let mut g = ops::gates::GateOpts::default();
    if let Some(v) = opts.get("skip") {
        let names: Vec<String> = match v.clone().try_cast::<Array>() {
            Some(a) => a.iter().map(ToString::to_string).collect(),
            None => v.to_string().split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        };
        g.skip = names.into_iter().collect();
    }
    if let Some(v) = opts.get("headroom") {
        g.headroom = number(v, "headroom").map_err(rhai_err)?;
    }
    if let Some(secs) = settle {
        g.settle = Duration::from_secs(secs);
    }
    if let Some(v) = opts.get("settle") {
        let secs = number(v, "settle").map_err(rhai_err)?;
        if !(0.0..=86_400.0).contains(&secs) {
            return err(Error::usage(format!("settle {secs} is out of range: seconds, 0 to 86400"), None));
        }
        g.settle = Duration::from_secs_f64(secs);
    }
    let report = ops::gates::preflight(c, plan, &g).map_err(rhai_err)?;
    for line in report.to_string().lines() {
        c.out().say(line);
    }
    for gate in &report.gates {
        c.out().emit("gate", serde_json::json!({"gate": gate.name, "outcome": gate.outcome, "detail": gate.detail}));
    }
    Ok(GatesValue(Arc::new(report)))
}

//! Who is in the cluster and as what: waiting for the nodes to agree, forgetting, removing and
//! adding a node, making one a replica.

use std::time::Duration;

use rhai::{Array, Dynamic, Map};

use super::{err, resolve};
use crate::error::Error;
use crate::ops::{self, Cluster};
use crate::script::journaled::{j, show};
use crate::script::options::{check_keys, del_opts, number, wait_secs};
use crate::script::primitive::{Primitive, Registrar};
use crate::script::types::{ClusterHandle, Node, RhaiResult, rhai_err};

const WAIT_CONVERGED: Primitive = Primitive::checks("wait_converged");
const FORGET: Primitive = Primitive::changes("forget");
const DEL_NODE: Primitive = Primitive::changes("del_node");
const ADD_NODE: Primitive = Primitive::changes("add_node");
const REPLICATE: Primitive = Primitive::changes("replicate");

pub(super) fn register(r: &mut Registrar<'_>) {
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

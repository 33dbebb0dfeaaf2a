//! The reads of a cluster's topology: its nodes, one node by selector, the slots and keys a node
//! holds, the fingerprint and the health check.

use std::sync::Arc;

use rhai::{Array, Dynamic, Map};

use super::resolve;
use crate::error::Error;
use crate::model::{NodeInfo, Topology};
use crate::ops;
use crate::script::journaled::{j, show};
use crate::script::primitive::{Primitive, Registrar};
use crate::script::types::{CheckValue, ClusterHandle, Node, RhaiResult, SlotRanges, rhai_err};

const NODES: Primitive = Primitive::reads("nodes");
const MASTERS: Primitive = Primitive::reads("masters");
const REPLICAS_OF: Primitive = Primitive::reads("replicas_of");
const NODE: Primitive = Primitive::reads("node");
const FIND_NODE: Primitive = Primitive::reads("find_node");
const SLOTS_OF: Primitive = Primitive::reads("slots_of");
const KEYS_PER_SLOT: Primitive = Primitive::reads("keys_per_slot");
const FINGERPRINT: Primitive = Primitive::reads("fingerprint");
const CHECK: Primitive = Primitive::checks("check");

pub(super) fn register(r: &mut Registrar<'_>) {
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
                // The registry before the views, as `runbook check` reads them.
                let removed = crate::removed::load();
                let topo = cl.topology().map_err(rhai_err)?;
                let stats = cl.stats(&topo).map_err(rhai_err)?;
                let report = ops::CheckReport::build(&topo, &stats).with_removed(&topo, &removed);
                Ok(CheckValue(Arc::new(report)))
            })
        },
    );
}

fn nodes_of(topo: &Topology, pick: impl Fn(&NodeInfo) -> bool) -> Array {
    topo.nodes().iter().filter(|n| pick(n)).map(|n| Dynamic::from(Node(n.clone()))).collect()
}

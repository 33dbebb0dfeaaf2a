//! Reads the cluster: `CLUSTER NODES` from the seed, then from every node it names, in parallel.

use std::collections::BTreeMap;

use futures::future::join_all;

use super::pool::Pool;
use crate::error::{Error, Result};
use crate::model::{Addr, NodeInfo, Topology, parse_nodes};

/// One node's `CLUSTER NODES` reply: one bounded attempt, none while the node is remembered
/// as unreachable (see `Pool::read`).
pub async fn read_view(pool: &Pool, addr: &Addr) -> Result<Vec<NodeInfo>> {
    let text: String = match pool.read(addr, "CLUSTER NODES", redis::cmd("CLUSTER").arg("NODES")).await {
        Err(Error::Command { reason, .. }) if reason.contains("cluster support disabled") => {
            return Err(Error::NotCluster { addr: addr.to_string() });
        }
        other => other?,
    };
    parse_nodes(&text).map_err(|reason| Error::Protocol { node: addr.to_string(), reason })
}

/// The whole cluster as each reachable node sees it. Fails only when the seed cannot be read.
pub async fn load(pool: &Pool, seed: &Addr) -> Result<Topology> {
    let seed_view = read_view(pool, seed).await?;
    let targets: Vec<(String, Addr)> = seed_view
        .iter()
        .filter(|n| n.addr.is_known() && !n.flags.handshake)
        .map(|n| (n.id.clone(), n.addr.clone()))
        .collect();
    let reads = join_all(targets.iter().map(|(_, addr)| read_view(pool, addr))).await;
    let mut views = BTreeMap::new();
    let mut unreachable = BTreeMap::new();
    for ((id, _), read) in targets.into_iter().zip(reads) {
        match read {
            // A node at a reused address may have a new id; trust only a view whose `myself` is that id.
            Ok(view) if view.iter().any(|n| n.flags.myself && n.id == id) => {
                views.insert(id, view);
            }
            Ok(_) => {
                unreachable.insert(id, "answers at that address with another node id".to_string());
            }
            Err(e) => {
                unreachable.insert(id, e.to_string());
            }
        }
    }
    for n in seed_view.iter().filter(|n| !n.addr.is_known()) {
        unreachable.entry(n.id.clone()).or_insert_with(|| "no address (noaddr)".into());
    }
    Ok(Topology::new(views, unreachable))
}

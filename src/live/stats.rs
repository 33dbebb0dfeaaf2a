//! Per-node statistics for `check` and the planners: keys, memory, cluster state, replication.

use std::collections::BTreeMap;

use futures::future::join_all;

use super::pool::Pool;
use crate::error::Result;
use crate::model::{NodeInfo, Topology};
use crate::ops::NodeStats;

/// `field:value` lines of an INFO or CLUSTER INFO reply.
pub fn info_fields(text: &str) -> BTreeMap<&str, &str> {
    text.lines().filter_map(|l| l.trim().split_once(':')).collect()
}

async fn one(pool: &Pool, node: &NodeInfo) -> NodeStats {
    let mut pipe = redis::pipe();
    pipe.cmd("DBSIZE").cmd("INFO").arg("memory").cmd("INFO").arg("replication").cmd("CLUSTER").arg("INFO");
    let replies = match pool.read_pipeline(&node.addr, "DBSIZE/INFO", &pipe).await {
        Ok(r) => r,
        Err(e) => return NodeStats { unreadable: Some(e.to_string()), ..NodeStats::default() },
    };
    let unreadable = replies.iter().take(2).find_map(|r| r.as_ref().err().map(|e| e.text.clone()));
    let text = |i: usize| -> String {
        match replies.get(i) {
            Some(Ok(v)) => redis::from_redis_value_ref::<String>(v).unwrap_or_default(),
            _ => String::new(),
        }
    };
    let (memory, replication, cluster) = (text(1), text(2), text(3));
    let (memory, replication, cluster) = (info_fields(&memory), info_fields(&replication), info_fields(&cluster));
    NodeStats {
        keys: match replies.first() {
            Some(Ok(redis::Value::Int(n))) => Some(*n as u64),
            _ => None,
        },
        used_memory: memory.get("used_memory").and_then(|v| v.parse().ok()),
        maxmemory: memory.get("maxmemory").and_then(|v| v.parse().ok()),
        total_system_memory: memory.get("total_system_memory").and_then(|v| v.parse().ok()),
        cluster_state: cluster.get("cluster_state").map(|s| (*s).to_string()),
        master_link_up: replication.get("master_link_status").map(|s| *s == "up"),
        unreadable,
    }
}

pub async fn gather(pool: &Pool, topo: &Topology) -> Result<BTreeMap<String, NodeStats>> {
    let nodes: Vec<&NodeInfo> = topo.nodes().iter().filter(|n| topo.is_reachable(&n.id)).collect();
    let stats = join_all(nodes.iter().map(|n| one(pool, n))).await;
    Ok(nodes.into_iter().map(|n| n.id.clone()).zip(stats).collect())
}

//! Forming a new cluster from empty nodes: epochs, ADDSLOTSRANGE, MEET, REPLICATE, then waiting
//! until every node reports `cluster_state:ok` and all views agree. Used by `sandbox` and tests.

use std::time::{Duration, Instant};

use futures::future::join_all;

use super::discover;
use super::pool::Pool;
use super::stats::info_fields;
use crate::error::{Error, Result};
use crate::model::{Addr, SLOTS, Topology};
use crate::ops::check::Findings;

/// Forms a cluster: the first `masters` addresses get the slots, the rest become replicas,
/// spread round-robin over the masters.
pub async fn form(pool: &Pool, addrs: &[Addr], masters: usize, timeout: Duration) -> Result<Topology> {
    if masters == 0 || masters > addrs.len() {
        return Err(Error::usage(
            format!("cannot form a cluster of {masters} masters from {} nodes", addrs.len()),
            None,
        ));
    }
    let ids = join_all(addrs.iter().map(|a| async move {
        let id: String = pool.query(a, "CLUSTER MYID", redis::cmd("CLUSTER").arg("MYID")).await?;
        let info: String = pool.query(a, "CLUSTER INFO", redis::cmd("CLUSTER").arg("INFO")).await?;
        let known: usize = info_fields(&info).get("cluster_known_nodes").and_then(|v| v.parse().ok()).unwrap_or(0);
        if known > 1 {
            return Err(Error::refused(
                format!("{a} already belongs to a cluster ({known} known nodes)"),
                Some("use empty nodes"),
            ));
        }
        Ok(id)
    }))
    .await
    .into_iter()
    .collect::<Result<Vec<String>>>()?;

    // Distinct epochs up front, as redis-cli does, so no epoch-collision round is needed.
    for (i, a) in addrs.iter().enumerate() {
        let _: Result<redis::Value> =
            pool.query(a, "CLUSTER SET-CONFIG-EPOCH", redis::cmd("CLUSTER").arg("SET-CONFIG-EPOCH").arg(i + 1)).await;
    }
    let per = usize::from(SLOTS) / masters;
    for (i, a) in addrs.iter().take(masters).enumerate() {
        let start = i * per;
        let end = if i + 1 == masters { usize::from(SLOTS) - 1 } else { start + per - 1 };
        let _: redis::Value = pool
            .query(a, "CLUSTER ADDSLOTSRANGE", redis::cmd("CLUSTER").arg("ADDSLOTSRANGE").arg(start).arg(end))
            .await?;
    }
    for a in &addrs[1..] {
        let _: redis::Value =
            pool.query(&addrs[0], "CLUSTER MEET", redis::cmd("CLUSTER").arg("MEET").arg(&a.host).arg(a.port)).await?;
    }
    let deadline = Instant::now() + timeout;
    wait_until(deadline, "every node to know every other", || async {
        let views = join_all(addrs.iter().map(|a| discover::read_view(pool, a))).await;
        Ok(views
            .iter()
            .all(|v| v.as_ref().is_ok_and(|v| v.len() == addrs.len() && v.iter().all(|n| !n.flags.handshake))))
    })
    .await?;
    for (k, a) in addrs.iter().enumerate().skip(masters) {
        let master = &ids[(k - masters) % masters];
        let _: redis::Value =
            pool.query(a, "CLUSTER REPLICATE", redis::cmd("CLUSTER").arg("REPLICATE").arg(master)).await?;
    }
    wait_healthy(pool, &addrs[0], deadline).await
}

/// Polls until every node reports `cluster_state:ok`, all views agree on slots and membership,
/// and every node sees the same roles.
pub async fn wait_healthy(pool: &Pool, seed: &Addr, deadline: Instant) -> Result<Topology> {
    loop {
        let last = match healthy(pool, seed).await {
            Ok(Ok(topo)) => return Ok(topo),
            Ok(Err(problems)) => problems,
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(Error::Timeout { what: "waiting for the cluster to become healthy".into(), detail: last });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The topology once the cluster is healthy (by `Findings`, as `check` judges), every node
/// reports cluster_state:ok, every replica has finished its first sync (a runbook's
/// replicas_in_sync gate would stop otherwise) and every node sees the same roles; else what
/// is still wrong.
async fn healthy(pool: &Pool, seed: &Addr) -> Result<std::result::Result<Topology, String>> {
    let topo = discover::load(pool, seed).await?;
    let stats = super::stats::gather(pool, &topo).await?;
    let mut problems = Findings::of(&topo, &stats).all();
    for n in topo.nodes() {
        let s = stats.get(&n.id);
        if s.and_then(|s| s.cluster_state.as_deref()) != Some("ok") {
            problems.push(format!("{} is not yet cluster_state:ok", n.addr));
        }
        if !n.is_master() && s.and_then(|s| s.master_link_up) != Some(true) {
            problems.push(format!("{} has not finished syncing with its master", n.addr));
        }
    }
    let roles_agree = topo.views().values().all(|view| {
        view.iter().all(|n| {
            topo.node(&n.id).is_some_and(|own| own.is_master() == n.is_master() && own.master_id == n.master_id)
        })
    });
    if !roles_agree {
        problems.push("the nodes do not see the same roles yet".into());
    }
    Ok(if problems.is_empty() { Ok(topo) } else { Err(problems.join("; ")) })
}

/// Calls `check` every 50 ms until it says yes or `deadline` passes.
pub async fn wait_until<F, Fut>(deadline: Instant, what: &str, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    loop {
        let last_err = match check().await {
            Ok(true) => return Ok(()),
            Ok(false) => None,
            Err(e) => Some(e.to_string()),
        };
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: format!("waiting for {what}"),
                detail: last_err.unwrap_or_else(|| "the condition never held".into()),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

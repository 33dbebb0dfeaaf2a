//! The lease: at most one mutating `runbook` run per cluster.
//!
//! It lives in the cluster itself, as the client name `runbook-lease:<host>:<pid>:<runbook>:<start>:<run>`
//! of one dedicated connection per master (`CLIENT SETNAME`), so operators on other hosts see it
//! (`CLIENT LIST`), nothing is written to the keyspace, and it disappears by itself when its holder
//! dies (the connection closes). A lease whose connection has been idle for more than 30 s (its
//! holder stopped or lost the network; a live holder pings every 5 s) is stale and is taken over.
//! Of two runs that ask at the same moment exactly one gets it (see `acquire`): a run first asks
//! (`runbook-lease-asking:…`), and marks the lease held once nobody is ahead of it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::MultiplexedConnection;

use super::pool::Pool;
use crate::error::{Error, Result};
pub use crate::holder::{Holder, unix_time};
use crate::model::{Addr, Topology};

const STALE_AFTER_SECS: u64 = 30;
/// How long a run that asks after this one is given to decide (it backs off or holds) before
/// this run gives up.
const DECIDE_WITHIN_SECS: u64 = 10;
/// The client-name prefixes of a held lease, and of a run still asking for it.
const HELD: &str = "runbook-lease:";
const ASKING: &str = "runbook-lease-asking:";

impl Holder {
    /// The name of a held lease.
    fn client_name(&self) -> String {
        format!("{HELD}{}", self.fields())
    }

    /// The name while this run asks for the lease and has not decided yet.
    fn asking_name(&self) -> String {
        format!("{ASKING}{}", self.fields())
    }

    fn fields(&self) -> String {
        let clean =
            |s: &str| -> String { s.chars().map(|c| if c.is_ascii_graphic() && c != ':' { c } else { '_' }).collect() };
        format!("{}:{}:{}:{}:{}", clean(&self.host), self.pid, clean(&self.runbook), self.started, clean(&self.run))
    }

    /// The holder a client name stands for, and whether it holds the lease (or still asks).
    fn parse(name: &str) -> Option<(Self, bool)> {
        let (rest, held) = match name.strip_prefix(HELD) {
            Some(rest) => (rest, true),
            None => (name.strip_prefix(ASKING)?, false),
        };
        let mut p = rest.split(':');
        let holder = Holder {
            host: p.next()?.to_string(),
            pid: p.next()?.parse().ok()?,
            runbook: p.next()?.to_string(),
            started: p.next()?.parse().ok()?,
            run: p.next()?.to_string(),
        };
        Some((holder, held))
    }
}

/// A held lease; dropping it releases it (the connections close).
pub struct Lease {
    _conns: Vec<MultiplexedConnection>,
    alive: Arc<AtomicBool>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::Relaxed);
    }
}

struct Other {
    holder: Holder,
    held: bool,
    client_id: String,
    idle: u64,
    node: Addr,
}

async fn others(conn: &mut MultiplexedConnection, node: &Addr, me: &Holder) -> Result<Vec<Other>> {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(conn)
        .await
        .map_err(|e| super::pool::command_error(node, "CLIENT LIST", &e))?;
    Ok(runs_in(&list, node, &[me.client_name(), me.asking_name()]))
}

/// The runs named in a `CLIENT LIST` reply, but for the names in `mine`.
fn runs_in(list: &str, node: &Addr, mine: &[String]) -> Vec<Other> {
    list.lines()
        .filter_map(|line| {
            let field = |k: &str| line.split(' ').find_map(|f| f.strip_prefix(k)).map(str::to_string);
            let name = field("name=")?;
            if mine.contains(&name) {
                return None;
            }
            let (holder, held) = Holder::parse(&name)?;
            Some(Other {
                holder,
                held,
                client_id: field("id=")?,
                idle: field("idle=").and_then(|i| i.parse().ok()).unwrap_or(0),
                node: node.clone(),
            })
        })
        .collect()
}

/// The run that holds the lease, as the reachable masters' client lists name it; read only
/// (`runbook status`, `runbook check`). A stale lease is none: the next run takes it over.
pub async fn holder(pool: &Pool, topo: &Topology) -> Result<Option<Holder>> {
    let masters: Vec<Addr> =
        topo.masters().filter(|m| topo.is_reachable(&m.id) && !m.is_failed()).map(|m| m.addr.clone()).collect();
    for addr in &masters {
        let list: String = pool.read(addr, "CLIENT LIST", redis::cmd("CLIENT").arg("LIST")).await?;
        if let Some(o) = runs_in(&list, addr, &[]).into_iter().find(|o| o.held && o.idle <= STALE_AFTER_SECS) {
            return Ok(Some(o.holder));
        }
    }
    Ok(None)
}

fn held_by(holder: &Holder) -> Error {
    Error::refused(
        format!("another run is changing this cluster: {}", holder.describe()),
        Some(
            "wait for it to finish (its lease goes away when it ends or dies), or look at it and its progress with `runbook status`",
        ),
    )
}

async fn set_name(c: &mut MultiplexedConnection, addr: &Addr, name: &str) -> Result<()> {
    redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(name)
        .exec_async(c)
        .await
        .map_err(|e| super::pool::command_error(addr, "CLIENT SETNAME", &e))
}

/// Takes the lease, or refuses naming who has it.
///
/// A run first *asks* on every master (an asking name), then reads every master's clients:
/// a held lease refuses it; so does an earlier run still asking (by start time, then run id),
/// which goes first. A later run still asking may not have seen this one, so it is waited for:
/// it either backs off (it saw this run) or holds the lease (it did not), and this run refuses.
/// With nobody left, this run marks the lease held on every master. Of two runs that ask at
/// once, whichever lists last sees the other, so exactly one ends up holding it.
pub async fn acquire(pool: &Pool, topo: &Topology, me: &Holder) -> Result<Lease> {
    let mut conns = Vec::new();
    let masters: Vec<Addr> =
        topo.masters().filter(|m| topo.is_reachable(&m.id) && !m.is_failed()).map(|m| m.addr.clone()).collect();
    for addr in &masters {
        let mut c = pool.dedicated(addr).await?;
        set_name(&mut c, addr, &me.asking_name()).await?;
        conns.push(c);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(DECIDE_WITHIN_SECS);
    loop {
        let mut later: Option<Other> = None;
        for (c, addr) in conns.iter_mut().zip(&masters) {
            for other in others(c, addr, me).await? {
                if other.idle > STALE_AFTER_SECS {
                    pool.out().say(&format!(
                        "taking over a stale lease of {} (idle {} s on {})",
                        other.holder.describe(),
                        other.idle,
                        other.node
                    ));
                    let _ = redis::cmd("CLIENT").arg("KILL").arg("ID").arg(&other.client_id).exec_async(c).await;
                } else if other.held || (other.holder.started, &other.holder.run) <= (me.started, &me.run) {
                    return Err(held_by(&other.holder));
                } else {
                    later = Some(other);
                }
            }
        }
        match later {
            None => break,
            Some(other) if std::time::Instant::now() >= deadline => return Err(held_by(&other.holder)),
            Some(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    for (c, addr) in conns.iter_mut().zip(&masters) {
        set_name(c, addr, &me.client_name()).await?;
    }
    let alive = Arc::new(AtomicBool::new(true));
    let keep = alive.clone();
    let mut pings: Vec<MultiplexedConnection> = conns.clone();
    tokio::spawn(async move {
        while keep.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_secs(5)).await;
            for c in &mut pings {
                let _ = redis::cmd("PING").exec_async(c).await;
            }
        }
    });
    Ok(Lease { _conns: conns, alive })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let h = Holder {
            host: "ops-1".into(),
            pid: 42,
            runbook: "decom mission".into(),
            started: 1_795_600_000,
            run: "abc-42".into(),
        };
        let (parsed, held) = Holder::parse(&h.client_name()).unwrap();
        assert!(held);
        assert_eq!(parsed.runbook, "decom_mission");
        assert_eq!((parsed.pid, parsed.started), (42, 1_795_600_000));
        let (asking, held) = Holder::parse(&h.asking_name()).unwrap();
        assert!(!held);
        assert_eq!(asking, parsed);
        assert!(Holder::parse("some-app").is_none());
        assert_eq!(unix_time(0), "1970-01-01 00:00:00 UTC");
        let list = format!(
            "id=7 addr=127.0.0.1:5 name={} idle=2 cmd=ping\nid=8 addr=127.0.0.1:6 name=app idle=0\nid=9 addr=127.0.0.1:7 name={} idle=0\n",
            h.client_name(),
            h.asking_name()
        );
        let runs = runs_in(&list, &Addr::new("127.0.0.1", 6379), &[]);
        assert_eq!(runs.len(), 2);
        assert!(runs[0].held && !runs[1].held);
        assert_eq!((runs[0].client_id.as_str(), runs[0].idle), ("7", 2));
        assert!(runs_in(&list, &Addr::new("127.0.0.1", 6379), &[h.client_name(), h.asking_name()]).is_empty());
        assert_eq!(unix_time(1_795_600_000), "2026-11-25 09:46:40 UTC");
    }
}

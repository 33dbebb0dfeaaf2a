//! Transient or persistent: whether what the preflight gates see will settle by itself.
//!
//! A replica still syncing with a master that is up, nodes that have not yet heard of a change, a
//! node that answers again while the others still flag it, `cluster_state:fail` while a failed
//! master's replica is about to be promoted: these pass within seconds, so the gates wait for
//! them (up to `--settle`). A failed node that nobody can take over from, slots left open, slots
//! nobody serves: these stay until someone acts, so the gates refuse at once.
//!
//! `classify` is pure (a topology and per-node stats in, problems out); `wait` re-reads the
//! cluster until nothing transient is left, something persistent shows, or time runs out, and
//! never waits silently.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use super::check::{Findings, NodeStats, agreement};
use super::cluster::Cluster;
use crate::error::Result;
use crate::model::{NodeInfo, Topology};
use crate::output::Output;

/// One problem a gate sees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The gate that reports it: `cluster_state`, `coverage`, `agreement`, `open_slots`,
    /// `failed_nodes` or `replicas_in_sync`.
    pub gate: &'static str,
    /// One sentence naming nodes by address, as `runbook check` says it.
    pub text: String,
    /// Why it settles by itself, when it does; `None` when it stays until someone acts.
    pub settles: Option<String>,
}

impl Problem {
    pub fn is_transient(&self) -> bool {
        self.settles.is_some()
    }

    fn new(gate: &'static str, text: String, settles: Option<String>) -> Self {
        Self { gate, text, settles }
    }
}

/// Nodes known to be down: unreachable from here, or flagged `fail`/`fail?` by some node.
fn down(topo: &Topology) -> BTreeSet<String> {
    topo.unreachable().keys().cloned().chain(topo.failed().into_keys()).collect()
}

/// A replica of `master_id` that can still take over (not down, not `nofailover`); compare
/// `plan::reconcile::successor`, the master that already did.
fn taker<'a>(topo: &'a Topology, down: &BTreeSet<String>, master_id: &'a str) -> Option<&'a NodeInfo> {
    topo.replicas_of(master_id).find(|r| !down.contains(&r.id) && !r.flags.nofailover)
}

/// Why a node that is down (or flagged) comes back by itself, if it does.
fn node_settles(topo: &Topology, down: &BTreeSet<String>, id: &str) -> Option<String> {
    if topo.is_reachable(id) {
        // Flagged by some, but it answers: the flag is cleared as soon as they hear from it.
        return Some("it answers again; the others clear the flag when they hear from it".into());
    }
    let node = topo.node(id)?;
    if !node.is_master() || node.slots.is_empty() {
        return None;
    }
    taker(topo, down, id).map(|r| format!("a failover is under way: its replica {} takes over", r.addr))
}

/// Every problem the cluster-state gates see, each with whether it settles by itself.
pub fn classify(topo: &Topology, stats: &BTreeMap<String, NodeStats>) -> Vec<Problem> {
    let found = Findings::of(topo, stats);
    let down = down(topo);
    let mut out = Vec::new();

    // Slots nobody serves, or claimed twice, and slots left open: someone has to act.
    out.extend(found.coverage.iter().map(|t| Problem::new("coverage", t.clone(), None)));
    out.extend(found.open_slots.iter().map(|t| Problem::new("open_slots", t.clone(), None)));

    for (id, reason) in topo.unreachable() {
        let text = format!("{} cannot be reached: {reason}", topo.name(id));
        out.push(Problem::new("failed_nodes", text, node_settles(topo, &down, id)));
    }
    for (id, witnesses) in topo.failed() {
        let w: Vec<String> = witnesses.iter().map(|w| topo.name(w)).collect();
        let text = format!("{} is flagged as failing by {}", topo.name(&id), w.join(", "));
        out.push(Problem::new("failed_nodes", text, node_settles(topo, &down, &id)));
    }

    // Gossip carries a change to every node within seconds.
    for t in agreement(topo) {
        out.push(Problem::new("agreement", t, Some("gossip carries a change to every node within seconds".into())));
    }

    // A master that is down and owns slots makes `cluster_state:fail`: for a moment while its
    // replica is promoted, for good when it has none that can take over.
    let stranded: Vec<&NodeInfo> =
        topo.masters().filter(|m| down.contains(&m.id) && !m.slots.is_empty() && !topo.is_reachable(&m.id)).collect();
    let lost = stranded.iter().any(|m| taker(topo, &down, &m.id).is_none());
    let state_settles = if !found.coverage.is_empty() || lost {
        None
    } else if let Some(m) = stranded.first() {
        Some(format!("a failover is under way: {} is being replaced by its replica", m.addr))
    } else {
        Some("a node that just (re)joined reports ok once it has heard from the others".into())
    };
    for t in &found.cluster_state {
        out.push(Problem::new("cluster_state", t.clone(), state_settles.clone()));
    }

    for r in topo.nodes().iter().filter(|n| !n.is_master()) {
        // A reachable replica whose INFO is refused cannot be judged in sync: said, not passed.
        if let Some(why) = stats.get(&r.id).and_then(|s| s.unreadable.as_ref()) {
            let text = format!("cannot read {}'s replication link: {why}", r.addr);
            let settles = (crate::error::ServerKind::of(why) != crate::error::ServerKind::NoPerm)
                .then(|| "a node slow to answer answers again".to_string());
            out.push(Problem::new("replicas_in_sync", text, settles));
            continue;
        }
        if stats.get(&r.id).and_then(|s| s.master_link_up) != Some(false) {
            continue;
        }
        let text = format!("{} is not in sync with its master (master_link_status:down)", r.addr);
        let settles = r.master_id.as_deref().and_then(|m| {
            let master = topo.node(m)?;
            if down.contains(m) {
                node_settles(topo, &down, m)
            } else {
                Some(format!("it is syncing with {}, which is up", master.addr))
            }
        });
        out.push(Problem::new("replicas_in_sync", text, settles));
    }
    out
}

/// What `wait` ends with: the last reading and its problems (the gates' own, not skipped).
pub struct Settled {
    pub topo: Topology,
    pub stats: BTreeMap<String, NodeStats>,
    pub problems: Vec<Problem>,
    /// How long it waited; zero when it did not.
    pub waited: Duration,
}

/// Reads the cluster; while every problem (of the gates not in `skip`) is transient, waits and
/// reads it again, up to `settle`. Returns at once on a persistent problem or none, and in a dry
/// run (which cannot watch anything change). Says what it waits for: a countdown on a terminal,
/// a line every few seconds otherwise.
pub fn wait(c: &dyn Cluster, skip: &BTreeSet<String>, settle: Duration) -> Result<Settled> {
    let started = Instant::now();
    let mut countdown = Countdown::new(c.out());
    loop {
        let topo = c.topology()?;
        let stats = c.stats(&topo)?;
        let problems: Vec<Problem> = classify(&topo, &stats).into_iter().filter(|p| !skip.contains(p.gate)).collect();
        let waiting: Vec<&Problem> = problems.iter().filter(|p| p.is_transient()).collect();
        let left = settle.saturating_sub(started.elapsed());
        if waiting.is_empty() || waiting.len() < problems.len() || left.is_zero() || c.is_dry_run() {
            let waited = if countdown.shown { started.elapsed() } else { Duration::ZERO };
            countdown.finish(waited, &problems);
            return Ok(Settled { topo, stats, problems, waited });
        }
        countdown.show(left, &waiting);
        c.pause(Duration::from_millis(500))?;
    }
}

/// The wait's running commentary: a countdown redrawn in place on a terminal (cut to its
/// width), a line every few seconds otherwise.
struct Countdown<'a> {
    out: &'a Output,
    bar: Option<indicatif::ProgressBar>,
    shown: bool,
    last_line: Option<Instant>,
}

impl<'a> Countdown<'a> {
    fn new(out: &'a Output) -> Self {
        Self { out, bar: None, shown: false, last_line: None }
    }

    fn show(&mut self, left: Duration, waiting: &[&Problem]) {
        let first = waiting[0];
        let more = if waiting.len() > 1 { format!(" (and {} more)", waiting.len() - 1) } else { String::new() };
        let why = first.settles.as_deref().unwrap_or_default();
        let secs = left.as_secs_f64().ceil() as u64;
        let what = format!("{}{more}: {why}", first.text);
        let due = self.last_line.is_none_or(|t| t.elapsed() >= Duration::from_secs(LINE_EVERY_SECS));
        if due {
            self.out.emit(
                "settle",
                serde_json::json!({"seconds_left": secs, "waiting_for": waiting.iter().map(|p| &p.text).collect::<Vec<_>>()}),
            );
            self.last_line = Some(Instant::now());
        }
        self.shown = true;
        if self.out.quiet() {
            return;
        }
        if std::io::stderr().is_terminal() {
            let bar = self.bar.get_or_insert_with(|| {
                let b = indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
                b.set_style(
                    indicatif::ProgressStyle::with_template(
                        "==> {spinner} waiting up to {prefix} s for the cluster to settle: {wide_msg}",
                    )
                    .expect("a valid template"),
                );
                b.enable_steady_tick(Duration::from_millis(200));
                b
            });
            bar.set_prefix(secs.to_string());
            bar.set_message(what);
        } else if due {
            self.out.say(&format!("waiting up to {secs} s for the cluster to settle: {what}"));
        }
    }

    fn finish(&mut self, waited: Duration, problems: &[Problem]) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if !self.shown {
            return;
        }
        let secs = (waited.as_secs_f64() * 10.0).round() / 10.0;
        if problems.is_empty() {
            self.out.say(&format!("the cluster settled after {secs} s"));
        } else if problems.iter().all(Problem::is_transient) {
            self.out.say(&format!("the cluster did not settle in {secs} s"));
        } else {
            self.out.say(&format!("stopped waiting after {secs} s: a problem that does not settle by itself appeared"));
        }
    }
}

/// Without a terminal, a line at least this often while waiting.
const LINE_EVERY_SECS: u64 = 3;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::stats::info_fields;
    use crate::model::parse_nodes;

    const FAILOVER_MASTER: &str = include_str!("../../tests/fixtures/redis7-failover-under-way-from-master.txt");
    const FAILOVER_REPLICA: &str = include_str!("../../tests/fixtures/redis7-failover-under-way-from-replica.txt");
    const FAILOVER_REPLICA_INFO: &str = include_str!("../../tests/fixtures/redis7-failover-under-way-replica-info.txt");
    const FAILOVER_CLUSTER_INFO: &str = include_str!("../../tests/fixtures/redis7-failover-under-way-cluster-info.txt");
    const SYNCING_MASTER: &str = include_str!("../../tests/fixtures/redis7-replica-syncing-from-master.txt");
    const SYNCING_REPLICA: &str = include_str!("../../tests/fixtures/redis7-replica-syncing-from-replica.txt");
    const SYNCING_INFO: &str = include_str!("../../tests/fixtures/redis7-replica-syncing-info.txt");
    const NO_REPLICA: &str = include_str!("../../tests/fixtures/redis7-no-replica-master-failed.txt");
    const NO_REPLICA_INFO: &str = include_str!("../../tests/fixtures/redis7-no-replica-master-failed-cluster-info.txt");
    const HEALTHY: &str = include_str!("../../tests/fixtures/redis7-healthy-4m4r.txt");
    const OTHER: &str = include_str!("../../tests/fixtures/redis7-healthy-4m4r-from-another-node.txt");
    const AFTER_FAILOVER: &str = include_str!("../../tests/fixtures/redis7-master-failed-after-failover.txt");
    const REPLICA_FAILED: &str = include_str!("../../tests/fixtures/redis7-replica-failed.txt");
    const SRC: &str = include_str!("../../tests/fixtures/redis7-open-slot-source-view.txt");
    const DST: &str = include_str!("../../tests/fixtures/redis7-open-slot-target-view.txt");

    fn view(text: &str) -> (String, Vec<NodeInfo>) {
        let nodes = parse_nodes(text).unwrap();
        (nodes.iter().find(|n| n.flags.myself).unwrap().id.clone(), nodes)
    }

    /// The topology the live backend builds: a view per reachable node, and the nodes that did
    /// not answer (every node that some view lists as `disconnected`).
    fn topology(views: &[&str]) -> Topology {
        let views: BTreeMap<String, Vec<NodeInfo>> = views.iter().map(|v| view(v)).collect();
        let unreachable = views
            .values()
            .flatten()
            .filter(|n| !n.connected && !views.contains_key(&n.id))
            .map(|n| (n.id.clone(), "Connection refused (os error 111)".to_string()))
            .collect();
        Topology::new(views, unreachable)
    }

    /// Stats as gathered: `master_link_status` and `cluster_state` from the captured replies.
    fn stats(entries: &[(&Topology, u16, &str)]) -> BTreeMap<String, NodeStats> {
        entries
            .iter()
            .map(|(topo, port, info)| {
                let f = info_fields(info);
                let id = topo.nodes().iter().find(|n| n.addr.port == *port).unwrap().id.clone();
                let s = NodeStats {
                    cluster_state: f.get("cluster_state").map(|s| (*s).to_string()),
                    master_link_up: f.get("master_link_status").map(|s| *s == "up"),
                    ..NodeStats::default()
                };
                (id, s)
            })
            .collect()
    }

    fn gates(problems: &[Problem], transient: bool) -> Vec<&'static str> {
        let mut g: Vec<&str> = problems.iter().filter(|p| p.is_transient() == transient).map(|p| p.gate).collect();
        g.dedup();
        g
    }

    #[test]
    fn a_healthy_cluster_has_no_problem() {
        assert!(classify(&topology(&[HEALTHY, OTHER]), &BTreeMap::new()).is_empty());
    }

    #[test]
    fn a_failover_under_way_settles() {
        // Master 29103 was killed; every node flags it `fail`, it still owns 5461-10921, its
        // replica 29104 is not promoted yet: link down, cluster_state:fail.
        let t = topology(&[FAILOVER_MASTER, FAILOVER_REPLICA]);
        let s = stats(&[(&t, 29101, FAILOVER_CLUSTER_INFO), (&t, 29104, FAILOVER_REPLICA_INFO)]);
        let p = classify(&t, &s);
        assert!(p.iter().all(Problem::is_transient), "{p:#?}");
        assert_eq!(gates(&p, true), vec!["failed_nodes", "cluster_state", "replicas_in_sync"]);
        let failed = p.iter().find(|p| p.gate == "failed_nodes").unwrap();
        assert_eq!(failed.text, "127.0.0.1:29103 cannot be reached: Connection refused (os error 111)");
        assert_eq!(failed.settles.as_deref(), Some("a failover is under way: its replica 127.0.0.1:29104 takes over"));
        let sync = p.iter().find(|p| p.gate == "replicas_in_sync").unwrap();
        assert!(sync.text.starts_with("127.0.0.1:29104 is not in sync"), "{sync:?}");
    }

    #[test]
    fn a_master_without_replicas_does_not_come_back_by_itself() {
        let t = topology(&[NO_REPLICA]);
        let s = stats(&[(&t, 29201, NO_REPLICA_INFO)]);
        let p = classify(&t, &s);
        assert_eq!(gates(&p, true), Vec::<&str>::new(), "{p:#?}");
        assert_eq!(gates(&p, false), vec!["failed_nodes", "cluster_state"]);
        assert!(p.iter().any(|p| p.text == "127.0.0.1:29202 is flagged as failing by 127.0.0.1:29201"));
    }

    #[test]
    fn a_replica_syncing_with_a_master_that_is_up_settles() {
        // 29103 restarted as a replica of 29104: full sync under way; 29101 has not yet learned
        // that it is a replica now.
        let t = topology(&[SYNCING_MASTER, SYNCING_REPLICA]);
        let s = stats(&[(&t, 29103, SYNCING_INFO)]);
        let p = classify(&t, &s);
        let sync: Vec<&Problem> = p.iter().filter(|p| p.gate == "replicas_in_sync").collect();
        assert_eq!(sync.len(), 1, "{p:#?}");
        assert_eq!(sync[0].settles.as_deref(), Some("it is syncing with 127.0.0.1:29104, which is up"));
        assert!(p.iter().all(Problem::is_transient), "{p:#?}");
    }

    #[test]
    fn failed_nodes_with_nothing_pending_and_open_slots_stay() {
        // After the failover: the old master is `fail` with no slots, a replica is `fail`.
        let t = topology(&[AFTER_FAILOVER]);
        let p = classify(&t, &BTreeMap::new());
        assert_eq!(gates(&p, false), vec!["failed_nodes"], "{p:#?}");
        assert_eq!(p.iter().filter(|p| p.gate == "failed_nodes").count(), 4, "{p:#?}");
        let t = topology(&[REPLICA_FAILED]);
        assert!(classify(&t, &BTreeMap::new()).iter().all(|p| !p.is_transient()));
        let t = topology(&[SRC, DST]);
        let p = classify(&t, &BTreeMap::new());
        assert_eq!(gates(&p, false), vec!["open_slots"], "{p:#?}");
    }

    #[test]
    fn a_flagged_node_that_answers_and_disagreements_settle() {
        // 27905 is flagged `fail` by 27901, yet answers (its own view is here).
        let (a_id, a) = view(REPLICA_FAILED);
        let (b_id, mut b) = view(OTHER);
        b.retain(|n| n.addr.port != 27906);
        let mut own = view(HEALTHY).1;
        for n in &mut own {
            n.flags.myself = n.addr.port == 27905;
        }
        let t = Topology::new(
            BTreeMap::from([(a_id, a), (b_id, b), ("f5033253968f0241f3e823351efa3c4545c90841".into(), own)]),
            BTreeMap::new(),
        );
        let p = classify(&t, &BTreeMap::new());
        assert!(!p.is_empty() && p.iter().all(Problem::is_transient), "{p:#?}");
        assert_eq!(gates(&p, true), vec!["failed_nodes", "agreement"]);
    }
}

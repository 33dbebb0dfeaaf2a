//! `cargo bench --bench faults`: what a receiving master's death mid-drain costs a writing
//! client, with runbook and with redis-cli `--cluster`, on identical fresh clusters, alternating.
//!
//! Each round: 4 masters + 4 replicas (`cluster-node-timeout 2000`), RB_FAULT_KEYS sample keys
//! (200000), a cluster client writing throughout (a new key each time, every 7th an older one
//! again). The tool starts draining master 3; the moment master 0 shows a slot importing, it is
//! SIGKILLed and its replica is promoted. Then each tool does what it offers:
//!   runbook:   the decommission goes on by itself (one re-run if it stopped);
//!   redis-cli: its reshard fails; the operator waits for the failover and runs
//!              `redis-cli --cluster fix`, as its documentation says.
//! Reported per tool: acknowledged writes that cannot be read back afterwards (lost), writes the
//! client saw fail, slots left open, keys stranded in a slot their node does not own, and sample
//! keys missing. Asynchronous replication can lose writes in any failover; the question is
//! whether the tool adds to that.

#[path = "../tests/support/cluster.rs"]
#[allow(dead_code)]
mod cluster;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cluster::TestCluster;

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What a user counts after the dust settles.
#[derive(Clone, Copy, Debug, Default)]
struct Outcome {
    acked: usize,
    lost: usize,
    failed: u64,
    open: usize,
    stranded: u64,
    missing: u64,
    seconds: f64,
}

/// Kills master 0 as soon as its own view shows a slot importing: polled on its own connection
/// every few milliseconds, so a fast drain is caught too.
fn kill_receiver_when_importing(c: &mut TestCluster, deadline: Duration) -> bool {
    let mut con = c.conn(0);
    let start = Instant::now();
    while start.elapsed() < deadline {
        let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut con).unwrap_or_default();
        if nodes.lines().any(|l| l.contains("myself") && l.contains("-<-")) {
            c.kill(0);
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

/// Open slots in any running node's own view, and keys a running master holds in slots it does
/// not own.
fn leftovers(c: &TestCluster) -> (usize, u64) {
    let mut open = 0;
    let mut stranded = 0;
    let topo = c.topology();
    for i in c.running().collect::<Vec<_>>() {
        let nodes = c.cluster_nodes(i);
        let Some(me) = nodes.lines().find(|l| l.contains("myself")) else { continue };
        open += me.split(' ').filter(|f| f.contains("-<-") || f.contains("->-")).count();
        let Some(m) = topo.masters().find(|m| m.addr.port == c.port(i)) else { continue };
        let mut pipe = redis::pipe();
        let foreign: Vec<u16> = (0..16384u16).filter(|s| !m.slots.contains(*s)).collect();
        for s in &foreign {
            pipe.cmd("CLUSTER").arg("COUNTKEYSINSLOT").arg(*s);
        }
        let counts: Vec<u64> = pipe.query(&mut c.conn(i)).unwrap_or_default();
        stranded += counts.iter().sum::<u64>();
    }
    (open, stranded)
}

/// Sample keys (`key:<n>`, as `load_keys` writes them) that cannot be read through a cluster client.
fn missing_sample_keys(c: &TestCluster, n: u64) -> u64 {
    let mut con = c.client();
    let mut missing = 0;
    let all: Vec<u64> = (0..n).collect();
    for chunk in all.chunks(1000) {
        let mut pipe = redis::cluster::cluster_pipe();
        for k in chunk {
            pipe.exists(format!("key:{k}"));
        }
        // One slot that answers with an error fails the whole pipeline: then key by key.
        let found: Vec<bool> = pipe.query(&mut con).unwrap_or_else(|_| {
            chunk
                .iter()
                .map(|k| redis::cmd("EXISTS").arg(format!("key:{k}")).query(&mut con).unwrap_or(false))
                .collect()
        });
        missing += chunk.len() as u64 - found.iter().filter(|f| **f).count() as u64;
    }
    missing
}

fn runbook(c: &TestCluster, state: &std::path::Path, journal: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runbook"));
    cmd.args(["run", "decommission", "--node", &c.port(3).to_string(), "-c", &c.nodes[1].addr(), "--yes"])
        .args(["--journal", journal])
        .env("RUNBOOK_STATE_DIR", state)
        .stdin(Stdio::null());
    cmd
}

/// redis-cli's first reshard of the same drain: master 3's first 1366 slots to master 0.
fn reshard(c: &TestCluster) -> Command {
    let mut cmd = Command::new("redis-cli");
    cmd.args(["--cluster", "reshard", &c.nodes[1].addr(), "--cluster-from", &c.node_id(3)])
        .args(["--cluster-to", &c.node_id(0), "--cluster-slots", "1366", "--cluster-yes"])
        .stdin(Stdio::null());
    cmd
}

fn redis_cli(args: &[&str]) -> std::process::Output {
    Command::new("redis-cli").args(args).stdin(Stdio::null()).output().expect("redis-cli")
}

fn round(tool: &str, keys: u64) -> Outcome {
    let mut c = TestCluster::start_with(4, 1, &["--cluster-node-timeout", "2000"]);
    c.load_keys(keys);
    let writer = c.writer();
    let start = Instant::now();
    let state = tempfile::tempdir().unwrap();
    let journal = state.path().join("j.jsonl").display().to_string();
    let mut cmd = if tool == "runbook" { runbook(&c, state.path(), &journal) } else { reshard(&c) };
    let worker = std::thread::spawn(move || cmd.output().expect("the tool starts"));
    let killed = kill_receiver_when_importing(&mut c, Duration::from_secs(60));
    let first = worker.join().expect("the tool ran");
    assert!(killed, "{tool}: master 0 never imported a slot");
    c.wait_promoted(4);
    if tool == "runbook" {
        // Exit 1 with the decommission done is the final check naming the dead node; a run that
        // stopped earlier is run once more, as its hint says.
        let text = String::from_utf8_lossy(&first.stderr);
        if !text.contains("the decommission is done") && !first.status.success() {
            let again = runbook(&c, state.path(), &journal).output().expect("runbook");
            eprintln!("runbook re-run: exit {:?}", again.status.code());
        }
    } else {
        let fix = redis_cli(&["--cluster", "fix", &c.nodes[1].addr()]);
        eprintln!("redis-cli --cluster fix: exit {:?}", fix.status.code());
        if !fix.status.success() {
            let out = String::from_utf8_lossy(&fix.stdout);
            let tail: Vec<&str> =
                out.lines().filter(|l| l.contains("ERR") || l.contains("WARN") || l.contains(">>>")).collect();
            eprintln!("{}", tail.join("\n"));
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let written = writer.stop();
    let lost = c.lost_writes(&written.acked).len();
    let (open, stranded) = leftovers(&c);
    Outcome {
        acked: written.acked.len(),
        lost,
        failed: written.failed.values().sum(),
        open,
        stranded,
        missing: missing_sample_keys(&c, keys),
        seconds,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let keys: u64 = env_or("RB_FAULT_KEYS", 200_000);
    let rounds: usize = env_or("RB_BENCH_ROUNDS", 3);
    println!("a receiving master SIGKILLed mid-drain, {keys} keys, {rounds} round(s) per tool, alternating");
    let mut all: Vec<(&str, Outcome)> = Vec::new();
    for r in 0..rounds {
        let order = if r % 2 == 0 { ["runbook", "redis-cli"] } else { ["redis-cli", "runbook"] };
        for tool in order {
            let o = round(tool, keys);
            eprintln!("round {}: {tool}: {o:?}", r + 1);
            all.push((tool, o));
        }
    }
    println!(
        "| tool | rounds | acknowledged writes | lost | failed (seen by the client) | open slots left | stranded keys | sample keys missing | seconds to the end (median) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for tool in ["runbook", "redis-cli"] {
        let mine: Vec<&Outcome> = all.iter().filter(|(t, _)| *t == tool).map(|(_, o)| o).collect();
        let sum = |f: fn(&Outcome) -> u64| mine.iter().map(|o| f(o)).sum::<u64>();
        println!(
            "| {tool} | {} | {} | {} | {} | {} | {} | {} | {:.1} |",
            mine.len(),
            sum(|o| o.acked as u64),
            sum(|o| o.lost as u64),
            sum(|o| o.failed),
            sum(|o| o.open as u64),
            sum(|o| o.stranded),
            sum(|o| o.missing),
            median(mine.iter().map(|o| o.seconds).collect()),
        );
    }
}

//! `cargo bench --bench decommission`: runbook against redis-cli `--cluster`, side by side on
//! identical fresh clusters of real redis-server processes, alternating, several rounds.
//!
//! Scenario 1, the seed's scale-in: 4 masters + 4 replicas, remove one master and its replica.
//!   runbook:   `runbook run decommission --node <victim> --yes`
//!   redis-cli: 3 × `reshard` (one target each, a convergence wait between them), 2 × `del-node`,
//!              `rebalance`, at `--cluster-pipeline 10` (the default) and 1000.
//! Scenario 2, scale-out: 3 loaded masters + 2 empty ones, rebalance with empty masters.
//! Scenario 3, heavy slots: the same decommission where 64 of the victim's slots hold 4 MiB each
//!   (16 values of 256 KiB), as production slots do; what counts there is how long the source
//!   keeps its other clients waiting.
//! In every decommission a probe PINGs the source every millisecond on its own connection and
//! reports the longest and the 99th-percentile wait: speed must not come from stalling clients.
//!
//! Sizes from the environment: RB_BENCH_KEYS (1000000), RB_BENCH_VALUE (100 bytes),
//! RB_BENCH_ROUNDS (3), RB_BENCH_SCENARIOS ("decommission,scaleout,heavy"); RB_BENCH_RUNBOOK_ARGS
//! adds options to runbook's decommission (`--max-pause 0` for the budget's price).

#[path = "../tests/support/cluster.rs"]
#[allow(dead_code)]
mod cluster;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cluster::TestCluster;

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One measured run: total seconds, seconds spent moving slots, peak RSS in KiB (runbook only),
/// and the longest and 99th-percentile wait of a client of the source, in ms.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    total: f64,
    migration: f64,
    rss_kib: u64,
    worst_ms: f64,
    p99_ms: f64,
}

/// A client of the source: one PING a millisecond on its own connection, each wait recorded.
struct Probe {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Vec<f64>>,
}

impl Probe {
    fn start(c: &TestCluster, i: usize) -> Self {
        let mut con = c.conn(i);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut waits = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let t = Instant::now();
                if redis::cmd("PING").query::<String>(&mut con).is_err() {
                    break;
                }
                waits.push(t.elapsed().as_secs_f64() * 1000.0);
                std::thread::sleep(Duration::from_millis(1));
            }
            waits
        });
        Probe { stop, handle }
    }

    /// (longest wait, 99th percentile) in ms.
    fn finish(self) -> (f64, f64) {
        self.stop.store(true, Ordering::Relaxed);
        let mut waits = self.handle.join().unwrap_or_default();
        waits.sort_by(f64::total_cmp);
        let p99 = waits.get(waits.len() * 99 / 100).copied().unwrap_or(0.0);
        (waits.last().copied().unwrap_or(0.0), p99)
    }
}

/// What a decommission scenario starts from.
#[derive(Clone, Copy)]
enum Load {
    /// `keys` sample keys of `value` bytes over every master.
    Uniform { keys: u64, value: usize },
    /// 64 of the victim's slots with 16 values of 256 KiB each.
    HeavySlots,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

/// Runs `cmd`, sampling the child's peak RSS (VmHWM) while it runs.
fn run_measured(cmd: &mut Command) -> (std::process::Output, u64) {
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let pid = child.id();
    let sampler = std::thread::spawn(move || {
        let mut peak = 0;
        while let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(kib) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            {
                peak = peak.max(kib);
            }
            if s.contains("State:\tZ") {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        peak
    });
    let out = child.wait_with_output().expect("wait");
    (out, sampler.join().unwrap_or(0))
}

fn redis_cli(args: &[&str]) -> std::process::Output {
    Command::new("redis-cli").args(args).stdin(Stdio::null()).output().expect("redis-cli")
}

/// What an operator does by hand between redis-cli steps: poll `--cluster check` until it is clean.
fn wait_cli_converged(seed: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = redis_cli(&["--cluster", "check", seed]);
        let text = String::from_utf8_lossy(&out.stdout);
        if out.status.success() && !text.contains("[ERR]") && !text.contains("[WARNING]") {
            return;
        }
        assert!(Instant::now() < deadline, "redis-cli never saw the cluster converge:\n{text}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn check_cli(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn seeded_cluster(load: Load) -> TestCluster {
    let c = TestCluster::start(4, 1);
    match load {
        Load::Uniform { keys, value } => c.load_keys_sized(keys, value),
        Load::HeavySlots => load_heavy_slots(&c, 3, 64, 16, 256 << 10),
    }
    wait_synced(&c);
    c
}

/// `per_slot` values of `bytes` each in `slots` of node `i`'s slots (keys `{h<n>}:<j>`).
fn load_heavy_slots(c: &TestCluster, i: usize, slots: usize, per_slot: usize, bytes: usize) {
    let owned = c.topology().node(&c.node_id(i)).expect("the victim").slots.clone();
    let mut chosen = std::collections::BTreeSet::new();
    let tags: Vec<String> = (0..)
        .map(|n| format!("{{h{n}}}"))
        .filter(|t| {
            let slot = runbook::model::key_slot(t.as_bytes());
            owned.contains(slot) && chosen.insert(slot)
        })
        .take(slots)
        .collect();
    let value = vec![b'x'; bytes];
    let mut con = c.conn(i);
    for tag in &tags {
        let mut pipe = redis::pipe();
        for j in 0..per_slot {
            pipe.cmd("SET").arg(format!("{tag}:{j}")).arg(&value).ignore();
        }
        pipe.exec(&mut con).expect("load heavy slots");
    }
}

/// Loading a million keys can overflow a replica's output buffer and force a full resync: both
/// tools start only once every replica is in sync and no node is loading.
fn wait_synced(c: &TestCluster) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let synced = |i: usize| {
        redis::cmd("INFO").query::<String>(&mut c.conn(i)).is_ok_and(|info| {
            info.contains("loading:0")
                && (info.contains("role:master")
                    || (info.contains("master_link_status:up") && info.contains("master_sync_in_progress:0")))
        })
    };
    while !(0..c.nodes.len()).all(synced) {
        assert!(Instant::now() < deadline, "the replicas never caught up after loading");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn decommission_runbook(load: Load) -> Sample {
    let c = seeded_cluster(load);
    let keys = c.total_keys();
    let state = tempfile::tempdir().unwrap();
    let probe = Probe::start(&c, 3);
    let start = Instant::now();
    let (out, rss) = run_measured(
        Command::new(env!("CARGO_BIN_EXE_runbook"))
            .args(["run", "decommission", "--node", &c.port(3).to_string(), "-c", &c.seed(), "--yes"])
            .args(std::env::var("RB_BENCH_RUNBOOK_ARGS").unwrap_or_default().split_whitespace())
            .env("RUNBOOK_STATE_DIR", state.path()),
    );
    let total = start.elapsed().as_secs_f64();
    let (worst_ms, p99_ms) = probe.finish();
    check_cli(&out, "runbook decommission");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let migration = stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("==> moved ")
                .and_then(|r| r.rsplit_once(" in "))
                // `in 5.1s (at most 256 slots open at once)`
                .map(|(_, t)| t.split_whitespace().next().unwrap_or("").trim_end_matches('s').parse().unwrap_or(0.0))
        })
        .unwrap_or(0.0);
    assert_eq!(c.total_keys(), keys, "runbook kept every key");
    Sample { total, migration, rss_kib: rss, worst_ms, p99_ms }
}

fn decommission_redis_cli(load: Load, pipeline: u32) -> Sample {
    let c = seeded_cluster(load);
    let keys = c.total_keys();
    let seed = c.seed();
    let (victim, replica) = (c.node_id(3), c.node_id(7));
    let targets: Vec<String> = (0..3).map(|i| c.node_id(i)).collect();
    let pipeline = pipeline.to_string();
    let probe = Probe::start(&c, 3);
    let start = Instant::now();
    let mut migration = 0.0;
    for (i, t) in targets.iter().enumerate() {
        let slots = if i == 0 { "1366" } else { "1365" };
        let s = Instant::now();
        let out = redis_cli(&[
            "--cluster",
            "reshard",
            &seed,
            "--cluster-from",
            &victim,
            "--cluster-to",
            t,
            "--cluster-slots",
            slots,
            "--cluster-yes",
            "--cluster-pipeline",
            &pipeline,
        ]);
        migration += s.elapsed().as_secs_f64();
        check_cli(&out, "redis-cli reshard");
        wait_cli_converged(&seed);
    }
    check_cli(&redis_cli(&["--cluster", "del-node", &seed, &replica]), "redis-cli del-node replica");
    check_cli(&redis_cli(&["--cluster", "del-node", &seed, &victim]), "redis-cli del-node master");
    wait_cli_converged(&seed);
    check_cli(&redis_cli(&["--cluster", "rebalance", &seed, "--cluster-pipeline", &pipeline]), "redis-cli rebalance");
    let total = start.elapsed().as_secs_f64();
    let (worst_ms, p99_ms) = probe.finish();
    assert_eq!(c.total_keys(), keys, "redis-cli kept every key");
    Sample { total, migration, rss_kib: 0, worst_ms, p99_ms }
}

/// 3 loaded masters plus 2 empty masters that every node already knows.
fn scaleout_cluster(keys: u64, value: usize) -> (TestCluster, Vec<String>) {
    let mut c = TestCluster::start(3, 0);
    c.load_keys_sized(keys, value);
    let mut added = Vec::new();
    for _ in 0..2 {
        let i = c.add_server();
        redis::cmd("CLUSTER").arg("MEET").arg("127.0.0.1").arg(c.port(i)).exec(&mut c.conn(0)).unwrap();
        added.push(c.nodes[i].addr());
    }
    // Both tools start from a cluster where every node knows both new masters and reports
    // cluster_state:ok (`redis-cli --cluster check` only compares slots, not membership, and
    // its rebalance fails with "Unknown node" before that).
    let deadline = Instant::now() + Duration::from_secs(60);
    while !Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(["check", "-c", &c.seed()])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        assert!(Instant::now() < deadline, "the cluster never converged after adding two masters");
        std::thread::sleep(Duration::from_millis(100));
    }
    (c, added)
}

fn scaleout_runbook(keys: u64, value: usize) -> Sample {
    let (c, _) = scaleout_cluster(keys, value);
    wait_synced(&c);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scaleout.rhai");
    std::fs::write(&path, "let c = cluster();\nc.rebalance(#{ use_empty_masters: true });\n").unwrap();
    let start = Instant::now();
    let (out, rss) = run_measured(
        Command::new(env!("CARGO_BIN_EXE_runbook"))
            .args(["run", &path.display().to_string(), "-c", &c.seed()])
            .env("RUNBOOK_STATE_DIR", dir.path()),
    );
    let total = start.elapsed().as_secs_f64();
    check_cli(&out, "runbook rebalance");
    assert_eq!(c.total_keys(), keys);
    Sample { total, migration: total, rss_kib: rss, ..Sample::default() }
}

fn scaleout_redis_cli(keys: u64, value: usize) -> Sample {
    let (c, _) = scaleout_cluster(keys, value);
    wait_synced(&c);
    let start = Instant::now();
    check_cli(&redis_cli(&["--cluster", "rebalance", &c.seed(), "--cluster-use-empty-masters"]), "redis-cli rebalance");
    let total = start.elapsed().as_secs_f64();
    assert_eq!(c.total_keys(), keys);
    Sample { total, migration: total, ..Sample::default() }
}

fn report(title: &str, ours: &[Sample], theirs: &[(&str, Vec<Sample>)]) {
    let med = |v: &[Sample], f: fn(&Sample) -> f64| median(v.iter().map(f).collect());
    let (t, m) = (med(ours, |s| s.total), med(ours, |s| s.migration));
    let (w, p) = (med(ours, |s| s.worst_ms), med(ours, |s| s.p99_ms));
    let rss = ours.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    println!("\n{title}");
    println!("  {:<34} {:>9} {:>10} {:>15} {:>12}", "tool", "total s", "moving s", "source worst ms", "source p99");
    println!("  {:<34} {t:>9.2} {m:>10.2} {w:>15.1} {p:>12.1}   peak RSS {:.1} MiB", "runbook", rss as f64 / 1024.0);
    for (name, samples) in theirs {
        let (tt, mm) = (med(samples, |s| s.total), med(samples, |s| s.migration));
        let (ww, pp) = (med(samples, |s| s.worst_ms), med(samples, |s| s.p99_ms));
        println!(
            "  {name:<34} {tt:>9.2} {mm:>10.2} {ww:>15.1} {pp:>12.1}   runbook/redis-cli: total {:.2}, moving {:.2}, worst wait {:.2}",
            t / tt,
            m / mm,
            if ww > 0.0 { w / ww } else { 0.0 }
        );
    }
}

/// Rounds of runbook against redis-cli at pipeline 10 and 1000 on fresh clusters loaded alike.
fn decommission_rounds(title: &str, load: Load, rounds: usize) {
    let (mut ours, mut p10, mut p1000) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        // Alternate who goes first, so neither always gets the warmer machine.
        if round % 2 == 0 {
            ours.push(decommission_runbook(load));
            p10.push(decommission_redis_cli(load, 10));
            p1000.push(decommission_redis_cli(load, 1000));
        } else {
            p1000.push(decommission_redis_cli(load, 1000));
            p10.push(decommission_redis_cli(load, 10));
            ours.push(decommission_runbook(load));
        }
        eprintln!(
            "{title} round {}: runbook {:.2}s (worst wait {:.0} ms), redis-cli p10 {:.2}s ({:.0} ms), p1000 {:.2}s ({:.0} ms)",
            round + 1,
            ours[round].total,
            ours[round].worst_ms,
            p10[round].total,
            p10[round].worst_ms,
            p1000[round].total,
            p1000[round].worst_ms,
        );
    }
    report(title, &ours, &[("redis-cli --cluster-pipeline 10", p10), ("redis-cli --cluster-pipeline 1000", p1000)]);
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` probes harness=false benches; nothing to list.
    }
    let keys: u64 = env_or("RB_BENCH_KEYS", 1_000_000);
    let value: usize = env_or("RB_BENCH_VALUE", 100);
    let rounds: usize = env_or("RB_BENCH_ROUNDS", 3);
    let scenarios: String = env_or("RB_BENCH_SCENARIOS", "decommission,scaleout,heavy".to_string());
    println!("runbook vs redis-cli: {keys} keys of {value} bytes, {rounds} round(s), median of each");
    if scenarios.contains("decommission") {
        decommission_rounds(
            "decommission (4 masters + 4 replicas, remove one master and its replica)",
            Load::Uniform { keys, value },
            rounds,
        );
    }
    if scenarios.contains("heavy") {
        decommission_rounds(
            "heavy slots (the same decommission; 64 of the victim's slots hold 16 × 256 KiB)",
            Load::HeavySlots,
            rounds,
        );
    }
    if scenarios.contains("scaleout") {
        let (mut ours, mut cli) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            if round % 2 == 0 {
                ours.push(scaleout_runbook(keys, value));
                cli.push(scaleout_redis_cli(keys, value));
            } else {
                cli.push(scaleout_redis_cli(keys, value));
                ours.push(scaleout_runbook(keys, value));
            }
            eprintln!(
                "scale-out round {}: runbook {:.2}s, redis-cli {:.2}s",
                round + 1,
                ours[round].total,
                cli[round].total
            );
        }
        report(
            "scale-out (3 loaded masters + 2 empty, rebalance with empty masters)",
            &ours,
            &[("redis-cli (default pipeline 10)", cli)],
        );
    }
}

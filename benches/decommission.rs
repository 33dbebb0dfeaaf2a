//! `cargo bench --bench decommission`: runbook against redis-cli `--cluster`, side by side on
//! identical fresh clusters of real redis-server processes, alternating, several rounds.
//!
//! Scenarios (`RB_BENCH_SCENARIOS`, a comma list; "decommission,scaleout,heavy" by default):
//! - `decommission`, the seed's scale-in: 4 masters + 4 replicas, remove one master and its
//!   replica. runbook runs `runbook run decommission --node <victim> --yes`; redis-cli runs one
//!   `reshard` per remaining master (a convergence wait after each), `del-node` for the replica
//!   and the master, and `rebalance`, at `--cluster-pipeline 10` (the default) and 1000.
//! - `decommission-4m`: the same at four times the keys (`RB_BENCH_KEYS_4M`, 4,000,000 by default).
//! - `sixteen`: 16 masters, no replicas, remove one (redis-cli: 15 reshards, `del-node`, `rebalance`).
//! - `under-load`: the seed's decommission while a cluster client (4 connections) SETs random
//!   sample keys at a paced `RB_BENCH_WRITE_RATE` (5000 a second), timing each SET and counting
//!   errors.
//! - `heavy`: the seed's decommission where 64 of the victim's slots hold 4 MiB each (16 values
//!   of 256 KiB), as production slots do; what counts there is how long the source keeps its
//!   other clients waiting.
//! - `scaleout`: 3 loaded masters + 2 empty ones, rebalance with empty masters.
//!
//! In every decommission a probe PINGs the source every millisecond on its own connection and
//! reports the longest and the 99th-percentile wait: speed must not come from stalling clients.
//! The same clients watch the cluster for `REST` before each runbook run, nothing moving: the
//! table's "nothing moving" row is what they wait on this machine anyway.
//!
//! Sizes from the environment: RB_BENCH_KEYS (1000000), RB_BENCH_VALUE (100 bytes),
//! RB_BENCH_ROUNDS (3); RB_BENCH_RUNBOOK_ARGS adds options to runbook's decommission
//! (`--max-pause 0` for the budget's price).
//!
//! Each scenario's medians are printed as a markdown table and written to
//! `target/bench/<scenario>.md`, with the command that reproduces them, the machine and the date.
//! With RB_BENCH_WRITE_README=1 they go to `docs/bench/<scenario>.md` instead, and README.md's
//! block between `<!-- bench:begin -->` and `<!-- bench:end -->` is rebuilt from every file in
//! `docs/bench/`: the README's figures are generated, never typed.

#[path = "../tests/support/cluster.rs"]
#[allow(dead_code)]
mod cluster;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cluster::TestCluster;

/// Every scenario, in the order they run whatever the order of `RB_BENCH_SCENARIOS`.
const SCENARIOS: [&str; 6] = ["decommission", "decommission-4m", "sixteen", "under-load", "heavy", "scaleout"];
const DEFAULT_SCENARIOS: &str = "decommission,scaleout,heavy";
const DEFAULT_KEYS: u64 = 1_000_000;
const DEFAULT_ROUNDS: usize = 3;
const BEGIN: &str = "<!-- bench:begin -->";
const END: &str = "<!-- bench:end -->";

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// (99th percentile, longest) of `waits`.
fn p99_worst(mut waits: Vec<f64>) -> (f64, f64) {
    waits.sort_by(f64::total_cmp);
    (waits.get(waits.len() * 99 / 100).copied().unwrap_or(0.0), waits.last().copied().unwrap_or(0.0))
}

/// What the writing client of `under-load` felt during one run.
#[derive(Clone, Copy, Debug, Default)]
struct ClientStats {
    p99_ms: f64,
    worst_ms: f64,
    errors: u64,
    /// SETs a second actually issued: below the paced rate when the machine could not keep up.
    rate: f64,
}

/// One measured run: total seconds, seconds spent moving slots, peak RSS in KiB (runbook only),
/// the longest and 99th-percentile wait of a client of the source in ms, and what had to move.
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    total: f64,
    migration: f64,
    rss_kib: u64,
    worst_ms: f64,
    p99_ms: f64,
    moved_keys: u64,
    moved_slots: u64,
    client: Option<ClientStats>,
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
                waits.push(ms(t.elapsed()));
                std::thread::sleep(Duration::from_millis(1));
            }
            waits
        });
        Probe { stop, handle }
    }

    /// (99th percentile, longest wait) in ms.
    fn finish(self) -> (f64, f64) {
        self.stop.store(true, Ordering::Relaxed);
        p99_worst(self.handle.join().unwrap_or_default())
    }
}

/// An application writing through cluster clients (they follow MOVED and ASK) at a paced rate.
/// It overwrites random sample keys with values of their own shape, so the key count both tools
/// are checked against does not change, and keys are written while they move.
struct PacedWriter {
    stop: Arc<AtomicBool>,
    began: Instant,
    handles: Vec<std::thread::JoinHandle<Paced>>,
}

/// What one connection of a `PacedWriter` saw.
#[derive(Default)]
struct Paced {
    waits: Vec<f64>,
    errors: u64,
    first_error: Option<String>,
}

/// A paced writer spreads its rate over this many connections: one synchronous connection on the
/// 2-core project machine kept only about half of 5000 SETs a second, as it waits out each
/// round trip; an application's load comes over many connections anyway.
const WRITER_CONNECTIONS: u32 = 4;

impl PacedWriter {
    fn start(c: &TestCluster, keys: u64, value: usize, rate: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Vec<_> = (0..WRITER_CONNECTIONS).map(|_| c.client()).collect();
        let began = Instant::now();
        let interval = Duration::from_secs_f64(f64::from(WRITER_CONNECTIONS) / f64::from(rate.max(1)));
        let handles = (0..WRITER_CONNECTIONS)
            .zip(conns)
            .map(|(n, mut con)| {
                let flag = stop.clone();
                std::thread::spawn(move || {
                    let mut rng = 0x9E37_79B9_7F4A_7C15_u64 ^ u64::from(n + 1).wrapping_mul(0xA24B_AED4_963E_E407);
                    let mut paced = Paced::default();
                    let mut next = Instant::now() + interval.mul_f64(f64::from(n) / f64::from(WRITER_CONNECTIONS));
                    while !flag.load(Ordering::Relaxed) {
                        let now = Instant::now();
                        if next > now {
                            std::thread::sleep(next - now);
                        } else if now - next > Duration::from_millis(100) {
                            // After a long stall, resume the pace rather than burst to catch up:
                            // a burst would load the source in a way the other tool's run never
                            // sees. The rate kept is reported.
                            next = now;
                        }
                        next += interval;
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        let k = rng % keys.max(1);
                        let mut v = format!("value:{k}:").into_bytes();
                        v.resize(value.max(v.len()), b'x');
                        let t = Instant::now();
                        let res = redis::cmd("SET").arg(format!("key:{k}")).arg(v).query::<()>(&mut con);
                        paced.waits.push(ms(t.elapsed()));
                        if let Err(e) = res {
                            paced.errors += 1;
                            paced.first_error.get_or_insert_with(|| e.to_string());
                        }
                    }
                    paced
                })
            })
            .collect();
        PacedWriter { stop, began, handles }
    }

    fn finish(self) -> ClientStats {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Paced::default();
        for h in self.handles {
            let p = h.join().expect("a writing client's thread");
            all.waits.extend(p.waits);
            all.errors += p.errors;
            all.first_error = all.first_error.or(p.first_error);
        }
        if let Some(e) = &all.first_error {
            eprintln!("  the writing client saw {} error(s), the first: {e}", all.errors);
        }
        let rate = all.waits.len() as f64 / self.began.elapsed().as_secs_f64();
        let (p99_ms, worst_ms) = p99_worst(all.waits);
        ClientStats { p99_ms, worst_ms, errors: all.errors, rate }
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

/// A decommission: the cluster's shape, its data, and the paced writes of a client, if any. The
/// victim is the last master.
#[derive(Clone, Copy)]
struct Shape {
    masters: usize,
    replicas: usize,
    load: Load,
    write_rate: Option<u32>,
}

impl Shape {
    fn victim(self) -> usize {
        self.masters - 1
    }

    /// The victim's replicas, as `TestCluster::start` numbers them.
    fn victim_replicas(self) -> impl Iterator<Item = usize> {
        (0..self.replicas).map(move |k| self.masters + k * self.masters + self.victim())
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() { 0.0 } else { v[v.len() / 2] }
}

/// Runs `cmd`, sampling the child's peak RSS (VmHWM) while it runs: VmHWM only grows, so the
/// last sample before the process exits is its peak, give or take one 20 ms interval.
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

fn seeded_cluster(shape: Shape) -> TestCluster {
    let c = TestCluster::start(shape.masters, shape.replicas);
    match shape.load {
        Load::Uniform { keys, value } => c.load_keys_sized(keys, value),
        Load::HeavySlots => load_heavy_slots(&c, shape.victim(), 64, 16, 256 << 10),
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

/// The keys and slots node `i` holds: what a drain of it must move.
fn holdings(c: &TestCluster, i: usize) -> (u64, u64) {
    let slots = c.topology().node(&c.node_id(i)).map_or(0, |n| n.slots.len()) as u64;
    (redis::cmd("DBSIZE").query(&mut c.conn(i)).expect("DBSIZE"), slots)
}

/// The clients of a decommission run: the probe on the source, and the paced writer if any.
struct Watchers {
    probe: Probe,
    writer: Option<PacedWriter>,
}

impl Watchers {
    fn start(c: &TestCluster, shape: Shape) -> Self {
        let writer = match (shape.write_rate, shape.load) {
            (Some(rate), Load::Uniform { keys, value }) => Some(PacedWriter::start(c, keys, value, rate)),
            _ => None,
        };
        Watchers { probe: Probe::start(c, shape.victim()), writer }
    }

    fn finish(self, sample: &mut Sample) {
        (sample.p99_ms, sample.worst_ms) = self.probe.finish();
        sample.client = self.writer.map(PacedWriter::finish);
    }
}

/// How long the clients are watched with nothing moving, before each runbook run.
const REST: Duration = Duration::from_secs(3);

/// A runbook decommission, and what its clients waited in the `REST` before it.
fn decommission_runbook(shape: Shape) -> (Sample, Sample) {
    let c = seeded_cluster(shape);
    let keys = c.total_keys();
    let (moved_keys, moved_slots) = holdings(&c, shape.victim());
    let state = tempfile::tempdir().unwrap();
    let resting = Watchers::start(&c, shape);
    std::thread::sleep(REST);
    let mut rest = Sample::default();
    resting.finish(&mut rest);
    let watchers = Watchers::start(&c, shape);
    let start = Instant::now();
    let (out, rss) = run_measured(
        Command::new(env!("CARGO_BIN_EXE_runbook"))
            .args(["run", "decommission", "--node", &c.port(shape.victim()).to_string(), "-c", &c.seed(), "--yes"])
            .args(std::env::var("RB_BENCH_RUNBOOK_ARGS").unwrap_or_default().split_whitespace())
            .env("RUNBOOK_STATE_DIR", state.path()),
    );
    let total = start.elapsed().as_secs_f64();
    let mut sample = Sample { total, rss_kib: rss, moved_keys, moved_slots, ..Sample::default() };
    watchers.finish(&mut sample);
    check_cli(&out, "runbook decommission");
    let stderr = String::from_utf8_lossy(&out.stderr);
    sample.migration = stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("==> moved ")
                .and_then(|r| r.rsplit_once(" in "))
                // `in 5.1s (at most 256 slots open at once)`
                .map(|(_, t)| t.split_whitespace().next().unwrap_or("").trim_end_matches('s').parse().unwrap_or(0.0))
        })
        .unwrap_or(0.0);
    assert_eq!(c.total_keys(), keys, "runbook kept every key");
    (sample, rest)
}

/// The decommission as an operator drives redis-cli: the victim's slots split evenly over the
/// other masters, one reshard each with a convergence wait after it, del-node for its replicas
/// and for it, then a rebalance.
fn decommission_redis_cli(shape: Shape, pipeline: u32) -> Sample {
    let c = seeded_cluster(shape);
    let keys = c.total_keys();
    let (moved_keys, moved_slots) = holdings(&c, shape.victim());
    let seed = c.seed();
    let victim = c.node_id(shape.victim());
    let replicas: Vec<String> = shape.victim_replicas().map(|i| c.node_id(i)).collect();
    let targets: Vec<String> = (0..shape.victim()).map(|i| c.node_id(i)).collect();
    let pipeline = pipeline.to_string();
    let watchers = Watchers::start(&c, shape);
    let start = Instant::now();
    let mut migration = 0.0;
    let (share, rest) = (moved_slots / targets.len() as u64, moved_slots % targets.len() as u64);
    for (i, t) in (0u64..).zip(&targets) {
        let slots = (share + u64::from(i < rest)).to_string();
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
            &slots,
            "--cluster-yes",
            "--cluster-pipeline",
            &pipeline,
        ]);
        migration += s.elapsed().as_secs_f64();
        check_cli(&out, "redis-cli reshard");
        wait_cli_converged(&seed);
    }
    for r in &replicas {
        check_cli(&redis_cli(&["--cluster", "del-node", &seed, r]), "redis-cli del-node replica");
    }
    check_cli(&redis_cli(&["--cluster", "del-node", &seed, &victim]), "redis-cli del-node master");
    wait_cli_converged(&seed);
    check_cli(&redis_cli(&["--cluster", "rebalance", &seed, "--cluster-pipeline", &pipeline]), "redis-cli rebalance");
    let total = start.elapsed().as_secs_f64();
    let mut sample = Sample { total, migration, moved_keys, moved_slots, ..Sample::default() };
    watchers.finish(&mut sample);
    assert_eq!(c.total_keys(), keys, "redis-cli kept every key");
    sample
}

/// 3 loaded masters plus 2 empty masters that every node already knows.
fn scaleout_cluster(keys: u64, value: usize) -> (TestCluster, Vec<usize>) {
    let mut c = TestCluster::start(3, 0);
    c.load_keys_sized(keys, value);
    let mut added = Vec::new();
    for _ in 0..2 {
        let i = c.add_server();
        redis::cmd("CLUSTER").arg("MEET").arg("127.0.0.1").arg(c.port(i)).exec(&mut c.conn(0)).unwrap();
        added.push(i);
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

/// What a scale-out moved: everything the new masters hold afterwards.
fn moved_to(c: &TestCluster, added: &[usize], sample: &mut Sample) {
    for &i in added {
        let (k, s) = holdings(c, i);
        sample.moved_keys += k;
        sample.moved_slots += s;
    }
}

fn scaleout_runbook(keys: u64, value: usize) -> Sample {
    let (c, added) = scaleout_cluster(keys, value);
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
    let mut sample = Sample { total, migration: total, rss_kib: rss, ..Sample::default() };
    moved_to(&c, &added, &mut sample);
    sample
}

fn scaleout_redis_cli(keys: u64, value: usize) -> Sample {
    let (c, added) = scaleout_cluster(keys, value);
    wait_synced(&c);
    let start = Instant::now();
    check_cli(&redis_cli(&["--cluster", "rebalance", &c.seed(), "--cluster-use-empty-masters"]), "redis-cli rebalance");
    let total = start.elapsed().as_secs_f64();
    assert_eq!(c.total_keys(), keys);
    let mut sample = Sample { total, migration: total, ..Sample::default() };
    moved_to(&c, &added, &mut sample);
    sample
}

/// One scenario's rounds: runbook's samples first, then each redis-cli variant's.
struct Outcome {
    name: &'static str,
    title: &'static str,
    /// The scenario's data, e.g. "1,000,000 keys of 100 B".
    data: String,
    /// The environment that reproduces it, beyond RB_BENCH_SCENARIOS.
    env: Vec<(&'static str, String)>,
    rows: Vec<(&'static str, Vec<Sample>)>,
    probed: bool,
    /// Whether the sizes are below the defaults: a check that the bench runs, not figures of record.
    small: bool,
}

/// Medians of one tool's rounds.
struct Medians {
    total: f64,
    migration: f64,
    p99_ms: f64,
    worst_ms: f64,
    moved_keys: f64,
    moved_slots: f64,
    rss_kib: u64,
    client: Option<ClientStats>,
}

impl Medians {
    fn of(samples: &[Sample]) -> Self {
        let med = |f: fn(&Sample) -> f64| median(samples.iter().map(f).collect());
        let clients: Vec<ClientStats> = samples.iter().filter_map(|s| s.client).collect();
        let cmed = |f: fn(&ClientStats) -> f64| median(clients.iter().map(f).collect());
        Medians {
            total: med(|s| s.total),
            migration: med(|s| s.migration),
            p99_ms: med(|s| s.p99_ms),
            worst_ms: med(|s| s.worst_ms),
            moved_keys: med(|s| s.moved_keys as f64),
            moved_slots: med(|s| s.moved_slots as f64),
            rss_kib: samples.iter().map(|s| s.rss_kib).max().unwrap_or(0),
            client: (!clients.is_empty()).then(|| ClientStats {
                p99_ms: cmed(|c| c.p99_ms),
                worst_ms: cmed(|c| c.worst_ms),
                // Every error counts: one failed write is one an application saw.
                errors: clients.iter().map(|c| c.errors).sum(),
                rate: cmed(|c| c.rate),
            }),
        }
    }

    fn per_100k_keys(&self) -> f64 {
        if self.moved_keys > 0.0 { self.total / self.moved_keys * 100_000.0 } else { 0.0 }
    }

    fn ms_per_slot(&self) -> f64 {
        if self.moved_slots > 0.0 { self.total / self.moved_slots * 1000.0 } else { 0.0 }
    }
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// The first line of `program --version` without its build details (`Redis server v=7.0.15`),
/// or "" when it does not run.
fn version_of(program: &Path) -> String {
    Command::new(program)
        .arg("--version")
        .output()
        .map(|o| {
            let text = String::from_utf8_lossy(&o.stdout);
            let words: Vec<&str> = text.split_whitespace().take_while(|w| !w.starts_with("sha=")).collect();
            words.join(" ")
        })
        .unwrap_or_default()
}

/// Where and when the figures were measured, for the line under each table.
struct Machine {
    line: String,
}

impl Machine {
    fn probe() -> Self {
        let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
        let model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
            })
            .unwrap_or_default();
        let server = std::env::var_os("RUNBOOK_TEST_SERVER")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .or_else(|| runbook::sandbox::find_program("redis-server"))
            .map(|p| version_of(&p))
            .unwrap_or_default();
        let cli = version_of(Path::new("redis-cli"));
        let run = |cmd: &str, args: &[&str]| {
            Command::new(cmd)
                .args(args)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default()
        };
        let date = run("date", &["-u", "+%Y-%m-%d"]);
        let commit = run("git", &["rev-parse", "--short", "HEAD"]);
        let line = format!(
            "{date}, {cpus} CPUs ({model}), {server}, {cli}, runbook at {commit}{}",
            if run("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty() {
                ""
            } else {
                " with local changes"
            }
        );
        Machine { line }
    }
}

fn cell(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

impl Outcome {
    fn command(&self) -> String {
        let mut cmd = format!("RB_BENCH_SCENARIOS={}", self.name);
        for (k, v) in &self.env {
            if v.contains(' ') {
                let _ = write!(cmd, " {k}='{v}'");
            } else {
                let _ = write!(cmd, " {k}={v}");
            }
        }
        cmd + " cargo bench --bench decommission"
    }

    /// The scenario as markdown: a heading, what it moved, the table of medians, and where,
    /// when and how it was measured.
    fn markdown(&self, machine: &Machine) -> String {
        let rounds = self.rows.first().map_or(0, |(_, s)| s.len());
        let ours = Medians::of(self.rows.first().map_or(&[][..], |(_, s)| s));
        let client = ours.client.is_some();
        let mut md = format!("### {}: {}\n\n", self.name, self.title);
        if self.small {
            md += "**Verification-size run** (fewer keys or rounds than the defaults): it shows the bench \
                   works, not how the tools compare.\n\n";
        }
        let _ = writeln!(
            md,
            "{}; the tools move {} keys in {} slots. Medians of {rounds} round(s), the tools alternating; \
             ratio = runbook's total ÷ the tool's.\n",
            self.data,
            thousands(ours.moved_keys as u64),
            ours.moved_slots as u64
        );
        md += "| tool | total s | moving s | ratio | s per 100k keys | ms per slot |";
        if self.probed {
            md += " source p99 / worst ms |";
        }
        if client {
            md += " writer p99 / worst ms | writer errors (all rounds) | writer SET/s |";
        }
        md += " peak RSS MiB |\n|---|---|---|---|---|---|";
        md += &"---|".repeat(usize::from(self.probed) + 3 * usize::from(client) + 1);
        md.push('\n');
        for (i, (tool, samples)) in self.rows.iter().enumerate() {
            let m = Medians::of(samples);
            if *tool == NOTHING_MOVING {
                let _ = write!(md, "| {tool} | — | — | | — | — |");
            } else {
                let ratio =
                    if i == 0 || m.total == 0.0 { String::new() } else { format!("**{:.2}**", ours.total / m.total) };
                let _ = write!(
                    md,
                    "| {tool} | {} | {} | {ratio} | {} | {} |",
                    cell(m.total),
                    cell(m.migration),
                    cell(m.per_100k_keys()),
                    cell(m.ms_per_slot())
                );
            }
            if self.probed {
                let _ = write!(md, " {} / {} |", cell(m.p99_ms), cell(m.worst_ms));
            }
            if let Some(w) = m.client {
                let _ = write!(md, " {} / {} | {} | {:.0} |", cell(w.p99_ms), cell(w.worst_ms), w.errors, w.rate);
            }
            let rss = if m.rss_kib > 0 { format!("{:.1}", m.rss_kib as f64 / 1024.0) } else { "—".to_string() };
            let _ = writeln!(md, " {rss} |");
        }
        let _ = writeln!(md, "\n`{}`; {}.", self.command(), machine.line);
        md
    }
}

/// The row of what the clients waited with nothing moving: no tool, no time, no ratio.
const NOTHING_MOVING: &str = "nothing moving (3 s before each runbook run)";

/// A cost per unit of work, read off a tool's medians.
type Per = fn(&Medians) -> f64;

/// How runbook's and redis-cli's costs grow between two scenarios that both ran, as markdown.
fn growth(outcomes: &[Outcome], machine: &Machine) -> String {
    let find = |n: &str| outcomes.iter().find(|o| o.name == n);
    let mut md = String::new();
    let pairs: [(&str, &str, &str, Per, &str); 2] = [
        ("decommission", "decommission-4m", "seconds per 100k keys", Medians::per_100k_keys, "keys"),
        ("decommission", "sixteen", "ms per slot", Medians::ms_per_slot, "masters"),
    ];
    for (from, to, unit, f, what) in pairs {
        let (Some(a), Some(b)) = (find(from), find(to)) else { continue };
        let _ = writeln!(md, "| growth in {what}: {unit}, `{from}` → `{to}` | before | after | × |\n|---|---|---|---|");
        for ((tool, sa), (_, sb)) in a.rows.iter().zip(&b.rows).filter(|((tool, _), _)| *tool != NOTHING_MOVING) {
            let (x, y) = (f(&Medians::of(sa)), f(&Medians::of(sb)));
            let _ = writeln!(md, "| {tool} | {} | {} | {:.2} |", cell(x), cell(y), if x > 0.0 { y / x } else { 0.0 });
        }
        md.push('\n');
    }
    if !md.is_empty() {
        let small = if outcomes.iter().any(|o| o.small) { "**Verification-size run.** " } else { "" };
        md = format!("### growth\n\n{small}From scenarios measured in the same run; {}.\n\n{md}", machine.line);
    }
    md
}

/// Rounds of runbook against redis-cli at pipeline 10 and 1000 on fresh clusters alike.
fn decommission_rounds(name: &str, shape: Shape, rounds: usize) -> Vec<(&'static str, Vec<Sample>)> {
    let (mut ours, mut p10, mut p1000, mut rest) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut runbook = || {
        let (run, quiet) = decommission_runbook(shape);
        rest.push(quiet);
        run
    };
    for round in 0..rounds {
        // Alternate who goes first, so neither always gets the warmer machine.
        if round % 2 == 0 {
            ours.push(runbook());
            p10.push(decommission_redis_cli(shape, 10));
            p1000.push(decommission_redis_cli(shape, 1000));
        } else {
            p1000.push(decommission_redis_cli(shape, 1000));
            p10.push(decommission_redis_cli(shape, 10));
            ours.push(runbook());
        }
        let line = |s: &Sample| {
            let client = s.client.map(|c| format!(", writer p99 {:.1} ms", c.p99_ms)).unwrap_or_default();
            format!("{:.2}s (worst wait {:.0} ms{client})", s.total, s.worst_ms)
        };
        eprintln!(
            "{name} round {}: runbook {}, redis-cli p10 {}, p1000 {}",
            round + 1,
            line(&ours[round]),
            line(&p10[round]),
            line(&p1000[round]),
        );
    }
    vec![
        ("runbook", ours),
        ("redis-cli `--cluster-pipeline 10`", p10),
        ("redis-cli `--cluster-pipeline 1000`", p1000),
        (NOTHING_MOVING, rest),
    ]
}

fn scaleout_rounds(keys: u64, value: usize, rounds: usize) -> Vec<(&'static str, Vec<Sample>)> {
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
            "scaleout round {}: runbook {:.2}s, redis-cli {:.2}s",
            round + 1,
            ours[round].total,
            cli[round].total
        );
    }
    vec![("runbook", ours), ("redis-cli (default pipeline 10)", cli)]
}

/// Writes the last outcome's markdown (and the growth between those so far) as soon as it is
/// measured, so a long run that fails later keeps it; when asked, rebuilds README.md's generated
/// block from every file in `docs/bench/` (so a scenario measured alone keeps the others' figures).
fn write_results(outcomes: &[Outcome], machine: &Machine) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let to_readme = std::env::var("RB_BENCH_WRITE_README").is_ok_and(|v| v == "1");
    let dir = if to_readme { root.join("docs/bench") } else { root.join("target/bench") };
    std::fs::create_dir_all(&dir).expect("create the results directory");
    let mut files: Vec<(String, String)> =
        outcomes.last().map(|o| (o.name.to_string(), o.markdown(machine))).into_iter().collect();
    let grown = growth(outcomes, machine);
    if !grown.is_empty() {
        files.push(("growth".to_string(), grown));
    }
    for (name, md) in &files {
        let path = dir.join(format!("{name}.md"));
        std::fs::write(&path, md).expect("write the results");
        println!("\n{md}(written to {})", path.display());
    }
    if !to_readme {
        return;
    }
    let mut block = String::from(
        "\n<!-- Generated by `RB_BENCH_WRITE_README=1 cargo bench --bench decommission` from docs/bench/*.md: \
         do not edit by hand. -->\n\n",
    );
    for name in SCENARIOS.iter().copied().chain(["growth"]) {
        if let Ok(md) = std::fs::read_to_string(dir.join(format!("{name}.md"))) {
            block += &md;
            block.push('\n');
        }
    }
    let readme = root.join("README.md");
    let text = std::fs::read_to_string(&readme).expect("read README.md");
    let (head, rest) = text.split_once(BEGIN).expect("README.md has a `<!-- bench:begin -->` marker");
    let (_, tail) = rest.split_once(END).expect("README.md has a `<!-- bench:end -->` marker");
    std::fs::write(&readme, format!("{head}{BEGIN}\n{block}{END}{tail}")).expect("write README.md");
    println!("README.md's generated block rebuilt from {}", dir.display());
}

fn main() {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return; // `cargo test --benches` probes harness=false benches; nothing to list.
    }
    let keys: u64 = env_or("RB_BENCH_KEYS", DEFAULT_KEYS);
    let keys_4m: u64 = env_or("RB_BENCH_KEYS_4M", keys * 4);
    let value: usize = env_or("RB_BENCH_VALUE", 100);
    let rounds: usize = env_or("RB_BENCH_ROUNDS", DEFAULT_ROUNDS);
    let write_rate: u32 = env_or("RB_BENCH_WRITE_RATE", 5000);
    let scenarios: String = env_or("RB_BENCH_SCENARIOS", DEFAULT_SCENARIOS.to_string());
    let wanted: Vec<&str> = scenarios.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    for w in &wanted {
        assert!(SCENARIOS.contains(w), "unknown scenario `{w}` in RB_BENCH_SCENARIOS; known: {}", SCENARIOS.join(", "));
    }
    let runbook_args = std::env::var("RB_BENCH_RUNBOOK_ARGS").unwrap_or_default();
    println!("runbook vs redis-cli: {keys} keys of {value} bytes, {rounds} round(s), median of each");
    let machine = Machine::probe();
    let mut outcomes = Vec::new();
    for &name in SCENARIOS.iter().filter(|n| wanted.contains(n)) {
        let n = if name == "decommission-4m" { keys_4m } else { keys };
        let uniform = Load::Uniform { keys: n, value };
        let seed = Shape { masters: 4, replicas: 1, load: uniform, write_rate: None };
        let (title, shape) = match name {
            "decommission" => ("4 masters + 4 replicas, remove one master and its replica", Some(seed)),
            "decommission-4m" => ("the same decommission at four times the keys", Some(seed)),
            "sixteen" => ("16 masters, no replicas, remove one", Some(Shape { masters: 16, replicas: 0, ..seed })),
            "under-load" => (
                "the decommission while a cluster client SETs random keys at a paced rate",
                Some(Shape { write_rate: Some(write_rate), ..seed }),
            ),
            "heavy" => (
                "the decommission where 64 of the victim's slots hold 16 values of 256 KiB",
                Some(Shape { load: Load::HeavySlots, ..seed }),
            ),
            _ => ("3 loaded masters + 2 empty, rebalance with empty masters", None),
        };
        let mut env = vec![("RB_BENCH_KEYS", keys.to_string()), ("RB_BENCH_VALUE", value.to_string())];
        if name == "decommission-4m" {
            env.push(("RB_BENCH_KEYS_4M", keys_4m.to_string()));
        }
        if name == "under-load" {
            env.push(("RB_BENCH_WRITE_RATE", write_rate.to_string()));
        }
        env.push(("RB_BENCH_ROUNDS", rounds.to_string()));
        if shape.is_some() && !runbook_args.is_empty() {
            env.push(("RB_BENCH_RUNBOOK_ARGS", runbook_args.clone()));
        }
        if let Some(server) = std::env::var("RUNBOOK_TEST_SERVER").ok().filter(|s| !s.is_empty()) {
            env.push(("RUNBOOK_TEST_SERVER", server));
        }
        let full = if name == "decommission-4m" { 4 * DEFAULT_KEYS } else { DEFAULT_KEYS };
        let data = match shape.map(|s| s.load) {
            Some(Load::HeavySlots) => "1,024 values of 256 KiB in 64 slots of the victim".to_string(),
            _ => format!("{} keys of {value} B", thousands(n)),
        };
        let data = match shape.and_then(|s| s.write_rate) {
            Some(rate) => format!("{data}, a client writing {} SETs a second", thousands(rate.into())),
            None => data,
        };
        let rows = match shape {
            Some(shape) => decommission_rounds(name, shape, rounds),
            None => scaleout_rounds(keys, value, rounds),
        };
        outcomes.push(Outcome {
            name,
            title,
            data,
            env,
            rows,
            probed: shape.is_some(),
            small: rounds < DEFAULT_ROUNDS || (name != "heavy" && n < full),
        });
        write_results(&outcomes, &machine);
    }
}

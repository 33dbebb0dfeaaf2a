//! `TestCluster`: redis-server processes on free loopback ports in a temp dir, formed into a
//! cluster by the product's own code, and killed when dropped. At most `RUNBOOK_TEST_CLUSTERS`
//! (default 2) exist at once, which is what a 2-core machine carries.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use runbook::config::Credentials;
use runbook::model::{Addr, Topology};

static NEXT_PORT: AtomicU16 = AtomicU16::new(0);
static SLOTS_IN_USE: Mutex<usize> = Mutex::new(0);
static SLOT_FREED: Condvar = Condvar::new();

fn max_clusters() -> usize {
    std::env::var("RUNBOOK_TEST_CLUSTERS").ok().and_then(|v| v.parse().ok()).unwrap_or(2)
}

pub struct Permit;

impl Permit {
    pub fn acquire() -> Self {
        let mut n = SLOTS_IN_USE.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while *n >= max_clusters() {
            n = SLOT_FREED.wait(n).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        *n += 1;
        Permit
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        *SLOTS_IN_USE.lock().unwrap_or_else(std::sync::PoisonError::into_inner) -= 1;
        SLOT_FREED.notify_one();
    }
}

/// The first of `n` consecutive ports that are free, each with a free cluster bus port
/// (+10000). Ports are reserved with one atomic step, so parallel tests never share one; each
/// test process starts at its own offset so parallel runs on one machine rarely collide.
pub fn free_ports(n: u16) -> u16 {
    let _ = NEXT_PORT.compare_exchange(
        0,
        21000 + (std::process::id() % 400) as u16 * 20,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    let free =
        |q: u16| TcpListener::bind(("127.0.0.1", q)).is_ok() && TcpListener::bind(("127.0.0.1", q + 10000)).is_ok();
    loop {
        let p = NEXT_PORT.fetch_add(n, Ordering::SeqCst);
        if p > 55000 {
            NEXT_PORT.store(21000, Ordering::SeqCst);
            continue;
        }
        if (0..n).all(|i| free(p + i)) {
            return p;
        }
    }
}

pub fn free_port() -> u16 {
    free_ports(1)
}

pub struct Server {
    pub port: u16,
    child: Option<Child>,
}

impl Server {
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

pub struct TestCluster {
    pub nodes: Vec<Server>,
    pub masters: usize,
    /// Extra redis-server arguments for every node (ACL users, for instance).
    extra: Vec<String>,
    dir: tempfile::TempDir,
    _permit: Permit,
}

/// The server the tests run: `RUNBOOK_TEST_SERVER` (e.g. a `valkey-server`), else `redis-server`.
fn redis_server() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("RUNBOOK_TEST_SERVER").filter(|p| !p.is_empty()) {
        return p.into();
    }
    runbook::sandbox::find_program("redis-server")
        .expect("redis-server is not installed: `apt-get install -y redis-server` (.ci/run does this)")
}

impl TestCluster {
    /// `masters` masters with `replicas` replicas each; node i < masters is a master, and the
    /// replicas of master m are the nodes `masters + k*masters + m`.
    pub fn start(masters: usize, replicas: usize) -> Self {
        Self::start_with(masters, replicas, &[])
    }

    /// Like `start`, every node started with `extra` arguments too.
    pub fn start_with(masters: usize, replicas: usize, extra: &[&str]) -> Self {
        let permit = Permit::acquire();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut c = TestCluster {
            nodes: Vec::new(),
            masters,
            extra: extra.iter().map(|s| (*s).to_string()).collect(),
            dir,
            _permit: permit,
        };
        for _ in 0..masters * (replicas + 1) {
            c.add_server();
        }
        c.form();
        c
    }

    /// Started, empty, unformed nodes (for spares: call `form` or add them yourself).
    pub fn spawn(n: usize, masters: usize) -> Self {
        let permit = Permit::acquire();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut c = TestCluster { nodes: Vec::new(), masters, extra: Vec::new(), dir, _permit: permit };
        for _ in 0..n {
            c.add_server();
        }
        c
    }

    /// Starts one more empty node and returns its index.
    pub fn add_server(&mut self) -> usize {
        // A port found free can be taken before the server binds it (by some process's outgoing
        // connection: the test ports overlap the kernel's ephemeral range); the server then
        // exits at once, and another port is tried.
        for _ in 0..5 {
            let port = free_port();
            std::fs::create_dir_all(self.dir.path().join(port.to_string())).unwrap();
            let mut child = self.spawn_server(port);
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                let pong = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                    .and_then(|c| c.get_connection())
                    .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
                if pong.is_ok() {
                    self.nodes.push(Server { port, child: Some(child) });
                    return self.nodes.len() - 1;
                }
                assert!(Instant::now() < deadline, "redis-server on {port} did not answer");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        panic!("redis-server exited at start on 5 free ports in a row")
    }

    /// A server process on `port`, in that port's directory (where its `nodes.conf` lives).
    fn spawn_server(&self, port: u16) -> Child {
        Command::new(redis_server())
            .args(runbook::sandbox::server_args(port, &self.dir.path().join(port.to_string())))
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server")
    }

    fn wait_ping(&self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.try_conn(i).and_then(|mut c| redis::cmd("PING").query::<String>(&mut c).ok()).is_none() {
            assert!(Instant::now() < deadline, "redis-server on {} did not answer", self.nodes[i].port);
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn form(&mut self) -> Topology {
        let addrs: Vec<Addr> = self.nodes.iter().map(|s| Addr::new("127.0.0.1", s.port)).collect();
        runbook::sandbox::form_blocking(&addrs, self.masters, &Credentials::default()).expect("form cluster")
    }

    pub fn seed(&self) -> String {
        self.nodes[0].addr()
    }

    pub fn port(&self, i: usize) -> u16 {
        self.nodes[i].port
    }

    fn try_conn(&self, i: usize) -> Option<redis::Connection> {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.nodes[i].port)).ok()?.get_connection().ok()
    }

    /// A plain connection to node `i`, for assertions.
    pub fn conn(&self, i: usize) -> redis::Connection {
        self.try_conn(i).expect("connect to test node")
    }

    pub fn node_id(&self, i: usize) -> String {
        redis::cmd("CLUSTER").arg("MYID").query(&mut self.conn(i)).unwrap()
    }

    /// Node `i`'s CLUSTER NODES reply.
    pub fn cluster_nodes(&self, i: usize) -> String {
        redis::cmd("CLUSTER").arg("NODES").query(&mut self.conn(i)).unwrap()
    }

    /// Loads `n` sample keys (`key:<i>`) through the product's loader.
    pub fn load_keys(&self, n: u64) {
        let topo = self.topology();
        runbook::sandbox::load_keys(&topo, n, 16, &Credentials::default()).expect("load keys");
    }

    pub fn topology(&self) -> Topology {
        let views = self
            .running()
            .map(|i| {
                let nodes = runbook::model::parse_nodes(&self.cluster_nodes(i)).unwrap();
                (nodes.iter().find(|n| n.flags.myself).unwrap().id.clone(), nodes)
            })
            .collect();
        Topology::new(views, std::collections::BTreeMap::default())
    }

    /// Running nodes that belong to a cluster: not removed and reset (a reset node knows only
    /// itself), answering.
    pub fn members(&self) -> Vec<usize> {
        self.running().filter(|&k| self.try_conn(k).is_some() && self.cluster_nodes(k).lines().count() > 1).collect()
    }

    /// Indices of nodes still running.
    pub fn running(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].child.is_some())
    }

    /// Kills node `i` (SIGKILL) and waits for it to exit.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn signal(&self, i: usize, sig: &str) {
        let pid = self.nodes[i].child.as_ref().expect("node is running").id();
        let ok = Command::new("kill").args([sig, &pid.to_string()]).status().expect("run kill").success();
        assert!(ok, "kill {sig} {pid} failed");
    }

    /// Freezes node `i` (SIGSTOP): it keeps its sockets but answers nothing, as a node stuck in
    /// a long fork or a paused VM does.
    pub fn freeze(&self, i: usize) {
        self.signal(i, "-STOP");
    }

    /// Wakes a node frozen by `freeze` (SIGCONT).
    pub fn thaw(&self, i: usize) {
        self.signal(i, "-CONT");
    }

    /// Starts node `i` again after `kill`, on its port and directory: it reads its `nodes.conf`
    /// and rejoins with the same id (with no data: the test nodes persist nothing).
    pub fn restart(&mut self, i: usize) {
        assert!(self.nodes[i].child.is_none(), "node {} is still running", self.nodes[i].port);
        self.nodes[i].child = Some(self.spawn_server(self.nodes[i].port));
        self.wait_ping(i);
    }

    /// Like `restart`, with its data files gone too (a replica keeps the RDB of its last sync,
    /// and would resume from it with a partial sync): as after a disk replacement, a replica
    /// must then sync everything again.
    pub fn restart_wiped(&mut self, i: usize) {
        assert!(self.nodes[i].child.is_none(), "node {} is still running", self.nodes[i].port);
        let d = self.dir.path().join(self.nodes[i].port.to_string());
        for f in ["dump.rdb", "appendonly.aof"] {
            let _ = std::fs::remove_file(d.join(f));
        }
        self.restart(i);
    }

    /// Node `i`'s own view of itself: `master` or `replica`.
    pub fn role(&self, i: usize) -> &'static str {
        let nodes = self.cluster_nodes(i);
        let me = nodes.lines().find(|l| l.contains("myself")).expect("a myself line");
        if me.contains("master") || me.contains("primary") { "master" } else { "replica" }
    }

    /// `cluster_state` as node `i` reports it.
    pub fn cluster_state(&self, i: usize) -> String {
        let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut self.conn(i)).unwrap();
        info.lines().find_map(|l| l.strip_prefix("cluster_state:")).unwrap_or_default().trim().to_string()
    }

    /// Polls `done` every 50 ms until it holds; panics naming `what` after `timeout`. Fault
    /// tests wait on the cluster's state this way, never on a sleep.
    #[track_caller]
    pub fn wait_until(&self, what: &str, timeout: Duration, mut done: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + timeout;
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting until {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until no running node flags another as failing and each reports `cluster_state:ok`
    /// (a node that comes back is cleared of its FAIL flag by gossip, a little later).
    #[track_caller]
    pub fn wait_healthy(&self) {
        self.wait_until("no node is flagged as failing and every member reports ok", Duration::from_secs(60), |c| {
            c.members().iter().all(|&k| {
                c.cluster_state(k) == "ok"
                    && !c.cluster_nodes(k).lines().any(|l| l.split(' ').nth(2).is_some_and(|f| f.contains("fail")))
            })
        });
    }

    /// Waits until replica `i` has been promoted and every running node reports `cluster_state:ok`.
    #[track_caller]
    pub fn wait_promoted(&self, i: usize) {
        self.wait_until(&format!("{} is promoted", self.nodes[i].port), Duration::from_secs(60), |c| {
            c.role(i) == "master"
        });
        self.wait_until("every running member reports cluster_state:ok", Duration::from_secs(60), |c| {
            c.members().iter().all(|&k| c.cluster_state(k) == "ok")
        });
    }

    /// Sum of DBSIZE over the masters that are running.
    pub fn total_keys(&self) -> u64 {
        let topo = self.topology();
        topo.masters()
            .filter_map(|m| self.nodes.iter().position(|s| s.port == m.addr.port))
            .map(|i| redis::cmd("DBSIZE").query::<u64>(&mut self.conn(i)).unwrap())
            .sum()
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

impl TestCluster {
    /// A cluster client (follows MOVED/ASK) seeded with the masters that own slots (a node
    /// that was removed and reset knows only itself and must not be a seed).
    pub fn client(&self) -> redis::cluster::ClusterConnection {
        let urls: Vec<String> =
            self.topology().masters().filter(|m| !m.slots.is_empty()).map(|m| format!("redis://{}/", m.addr)).collect();
        // redis-rs's default retry policy backs off exponentially to 655 s a retry: a client whose
        // slot map still holds a node that was just removed and reset could sleep for minutes.
        // An application would bound it too; a failed write is simply not acknowledged.
        redis::cluster::ClusterClientBuilder::new(urls)
            .retries(6)
            .min_retry_wait(10)
            .max_retry_wait(500)
            .connection_timeout(std::time::Duration::from_secs(2))
            .response_timeout(std::time::Duration::from_secs(10))
            .build()
            .expect("cluster client")
            .get_connection()
            .expect("cluster connection")
    }

    /// Asserts that every sample key `key:0 … key:n-1` is readable with its value.
    #[track_caller]
    pub fn assert_sample_keys(&self, n: u64) {
        let mut con = self.client();
        for start in (0..n).step_by(1000) {
            let mut pipe = redis::cluster::cluster_pipe();
            for i in start..(start + 1000).min(n) {
                pipe.get(format!("key:{i}"));
            }
            let values: Vec<Option<Vec<u8>>> = pipe.query(&mut con).expect("read keys");
            for (i, v) in (start..).zip(values) {
                let v = v.unwrap_or_else(|| panic!("key:{i} is missing"));
                assert!(v.starts_with(format!("value:{i}:").as_bytes()), "key:{i} has a wrong value");
            }
        }
    }

    /// Whether node `i` still has `id` in its CLUSTER NODES.
    pub fn knows(&self, i: usize, id: &str) -> bool {
        self.cluster_nodes(i).lines().any(|l| l.starts_with(id))
    }

    /// Index of the node listening on `port`.
    pub fn index_of(&self, port: u16) -> usize {
        self.nodes.iter().position(|s| s.port == port).expect("a node of this cluster")
    }
}

/// A cluster client writing `w:<n>` keys in a thread until stopped, recording which writes the
/// cluster acknowledged: after a fault, the acknowledged writes that cannot be read back are the
/// writes lost.
pub struct Writer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<Written>>,
}

/// What a `Writer` did: the acknowledged write numbers, and the failed writes by error kind.
#[derive(Debug, Default)]
pub struct Written {
    pub acked: Vec<u64>,
    pub failed: std::collections::BTreeMap<String, u64>,
}

impl Writer {
    /// Stops writing and returns what was written.
    pub fn stop(mut self) -> Written {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.handle.take().expect("joined once").join().expect("writer thread")
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl TestCluster {
    /// Starts a `Writer` through a cluster client that follows MOVED and ASK as an application's
    /// would: a new key each time, and every 7th time an older one again, so keys are also
    /// written while they move.
    pub fn writer(&self) -> Writer {
        let mut con = self.client();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut w = Written::default();
            let mut set =
                |w: &mut Written, n: u64| match redis::cmd("SET").arg(format!("w:{n}")).arg(n).query::<()>(&mut con) {
                    Ok(()) => w.acked.push(n),
                    Err(e) => *w.failed.entry(format!("{:?}", e.kind())).or_default() += 1,
                };
            let mut i = 0u64;
            while !flag.load(std::sync::atomic::Ordering::SeqCst) {
                set(&mut w, i);
                if i.is_multiple_of(7) && i > 0 {
                    set(&mut w, i / 2);
                }
                i += 1;
                if i.is_multiple_of(20) {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            w
        });
        Writer { stop, handle: Some(handle) }
    }

    /// The acknowledged writes of a `Writer` that cannot be read back now.
    pub fn lost_writes(&self, acked: &[u64]) -> Vec<u64> {
        let mut con = self.client();
        let mut lost = Vec::new();
        for chunk in acked.chunks(1000) {
            let mut pipe = redis::cluster::cluster_pipe();
            for n in chunk {
                pipe.get(format!("w:{n}"));
            }
            let values: Vec<Option<u64>> = pipe.query(&mut con).expect("read the writer's keys");
            lost.extend(chunk.iter().zip(values).filter(|(n, v)| *v != Some(**n)).map(|(n, _)| *n));
        }
        lost
    }
}

impl TestCluster {
    /// Loads `n` sample keys with `value_size`-byte values.
    pub fn load_keys_sized(&self, n: u64, value_size: usize) {
        runbook::sandbox::load_keys(&self.topology(), n, value_size, &Credentials::default()).expect("load keys");
    }
}

//! `runbook sandbox`: a throwaway local cluster of real `redis-server` processes on loopback.
//! Its state (ports, pids, directories) lives in `<state dir>/sandbox/`; `down` stops exactly those.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::cli::{SandboxAction, SandboxUp};
use crate::config::Credentials;
use crate::error::{Error, Result, exit};
use crate::live::{self, Pool, Timeouts};
use crate::model::{Addr, Topology, key_slot};

#[derive(Serialize, Deserialize, Debug)]
struct State {
    masters: usize,
    replicas: usize,
    nodes: Vec<NodeState>,
}

#[derive(Serialize, Deserialize, Debug)]
struct NodeState {
    port: u16,
    pid: u32,
    dir: PathBuf,
}

fn sandbox_dir() -> PathBuf {
    crate::state_dir::state_dir().join("sandbox")
}

pub fn execute(action: SandboxAction) -> Result<u8> {
    match action {
        SandboxAction::Up(opts) => up(&opts),
        SandboxAction::Status => status(),
        SandboxAction::Down => down(),
    }
}

/// The full path of `program` on PATH.
pub fn find_program(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join(program)).find(|p| p.is_file()))
}

fn redis_server() -> Result<PathBuf> {
    find_program("redis-server")
        .ok_or_else(|| Error::MissingProgram { program: "redis-server".into(), package: "redis-server".into() })
}

fn port_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

fn read_state() -> Option<State> {
    serde_json::from_str(&std::fs::read_to_string(sandbox_dir().join("state.json")).ok()?).ok()
}

/// The arguments every sandbox and test node starts with: cluster mode, loopback, no persistence.
pub fn server_args(port: u16, dir: &Path) -> Vec<String> {
    [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        "5000",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        &dir.display().to_string(),
        "--logfile",
        "redis.log",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect()
}

fn up(opts: &SandboxUp) -> Result<u8> {
    if opts.masters == 0 || opts.masters > 100 || opts.replicas > 10 {
        return Err(Error::usage("--masters must be 1 to 100 and --replicas 0 to 10", None));
    }
    let server = redis_server()?;
    if let Some(state) = read_state()
        && state.nodes.iter().any(|n| pid_alive(n.pid))
    {
        return Err(Error::refused(
            format!(
                "a sandbox is already running on ports {}-{}",
                state.nodes[0].port,
                state.nodes.last().map_or(0, |n| n.port)
            ),
            Some("stop it first with `runbook sandbox down`"),
        ));
    }
    let total = opts.masters * (opts.replicas + 1);
    let ports: Vec<u16> = (0..total).map(|i| opts.base_port.saturating_add(i as u16)).collect();
    if usize::from(u16::MAX - opts.base_port) < total + 10000 {
        return Err(Error::usage(
            format!("--base-port {} leaves no room for {total} nodes and their bus ports (+10000)", opts.base_port),
            None,
        ));
    }
    for &p in &ports {
        if !port_free(p) || !port_free(p + 10000) {
            return Err(Error::refused(
                format!("port {p} (or its cluster bus port {}) is already in use", p + 10000),
                Some("choose other ports with --base-port"),
            ));
        }
    }
    let root = sandbox_dir();
    let _ = std::fs::remove_dir_all(&root);
    let mut state = State { masters: opts.masters, replicas: opts.replicas, nodes: Vec::new() };
    for &port in &ports {
        let dir = root.join(format!("node-{port}"));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating {}", dir.display()), &e))?;
        let mut args = server_args(port, &dir);
        args.extend(["--daemonize", "yes", "--pidfile"].map(String::from));
        args.push(dir.join("redis.pid").display().to_string());
        let status = Command::new(&server).args(&args).status().map_err(|e| Error::io("starting redis-server", &e))?;
        if !status.success() {
            return Err(Error::refused(
                format!("redis-server on port {port} did not start (see {})", dir.join("redis.log").display()),
                None,
            ));
        }
        let pid = wait_pidfile(&dir.join("redis.pid")).map_err(|_| {
            let log = std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default();
            let last: Vec<&str> = log.lines().rev().take(3).collect();
            Error::refused(
                format!(
                    "redis-server on port {port} did not start: {}",
                    last.into_iter().rev().collect::<Vec<_>>().join(" | ")
                ),
                Some("choose other ports with --base-port, or see the log in the state directory"),
            )
        })?;
        state.nodes.push(NodeState { port, pid, dir });
        write_state(&state)?;
    }
    // Each master is followed by its replicas, so the replicas of master i sit right after it.
    let stride = opts.replicas + 1;
    let mut addrs: Vec<Addr> = (0..opts.masters).map(|i| Addr::new("127.0.0.1", ports[i * stride])).collect();
    for j in 0..opts.replicas {
        for i in 0..opts.masters {
            addrs.push(Addr::new("127.0.0.1", ports[i * stride + 1 + j]));
        }
    }
    let topo = form_blocking(&addrs, opts.masters, &Credentials::default())?;
    if opts.keys > 0 {
        load_keys(&topo, opts.keys, opts.value_size, &Credentials::default())?;
    }
    eprintln!(
        "sandbox up: {} masters with {} replica(s) each, ports {}-{}, {} keys",
        opts.masters,
        opts.replicas,
        ports[0],
        ports[ports.len() - 1],
        opts.keys
    );
    println!("127.0.0.1:{}", ports[0]);
    eprintln!("try: runbook check --cluster 127.0.0.1:{}", ports[0]);
    Ok(exit::OK)
}

fn write_state(state: &State) -> Result<()> {
    let path = sandbox_dir().join("state.json");
    std::fs::write(&path, serde_json::to_vec_pretty(state).expect("state serializes"))
        .map_err(|e| Error::io(format!("writing {}", path.display()), &e))
}

fn wait_pidfile(path: &Path) -> Result<u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(pid) = std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse().ok()) {
            return Ok(pid);
        }
        if Instant::now() > deadline {
            return Err(Error::Timeout {
                what: "waiting for redis-server to start".into(),
                detail: format!("no {}", path.display()),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Forms a cluster from empty nodes and waits until it is healthy (blocking).
pub fn form_blocking(addrs: &[Addr], masters: usize, creds: &Credentials) -> Result<Topology> {
    let rt = live::runtime()?;
    let pool = Pool::new(creds.clone(), Timeouts::default());
    rt.block_on(async {
        // The servers may still be opening their ports.
        for a in addrs {
            live::form::wait_until(Instant::now() + Duration::from_secs(10), &format!("{a} to answer"), || async {
                Ok(pool.query::<String>(a, "PING", &redis::cmd("PING")).await.is_ok())
            })
            .await?;
        }
        live::form::form(&pool, addrs, masters, Duration::from_secs(60)).await
    })
}

/// Writes `n` keys `key:<i>` with `value_size`-byte values, each to its slot's owner, pipelined.
pub fn load_keys(topo: &Topology, n: u64, value_size: usize, creds: &Credentials) -> Result<()> {
    let rt = live::runtime()?;
    let pool = Pool::new(creds.clone(), Timeouts::default());
    let owners = topo.slot_map();
    let mut per_node: std::collections::BTreeMap<&str, Vec<u64>> = std::collections::BTreeMap::new();
    for i in 0..n {
        let slot = key_slot(format!("key:{i}").as_bytes());
        let owner =
            owners[usize::from(slot)].ok_or_else(|| Error::refused(format!("slot {slot} has no owner"), None))?;
        per_node.entry(owner).or_default().push(i);
    }
    rt.block_on(async {
        let jobs = per_node.iter().map(|(id, keys)| {
            let addr = topo.node(id).expect("owner is a node").addr.clone();
            let pool = &pool;
            async move {
                for chunk in keys.chunks(1000) {
                    let mut pipe = redis::pipe();
                    for i in chunk {
                        let mut v = format!("value:{i}:").into_bytes();
                        v.resize(value_size.max(v.len()), b'x');
                        pipe.cmd("SET").arg(format!("key:{i}")).arg(v).ignore();
                    }
                    pool.pipeline(&addr, "SET", &pipe).await?;
                }
                Ok::<(), Error>(())
            }
        });
        futures::future::join_all(jobs).await.into_iter().collect::<Result<Vec<()>>>()
    })?;
    Ok(())
}

/// What one running sandbox node says of itself.
struct NodeView {
    nodes: Vec<crate::model::NodeInfo>,
    state: String,
    keys: u64,
}

async fn view_of(pool: &Pool, addr: &Addr) -> Result<NodeView> {
    let text: String = pool.query(addr, "CLUSTER NODES", redis::cmd("CLUSTER").arg("NODES")).await?;
    let info: String = pool.query(addr, "CLUSTER INFO", redis::cmd("CLUSTER").arg("INFO")).await?;
    let keys: u64 = pool.query(addr, "DBSIZE", &redis::cmd("DBSIZE")).await?;
    let state = info.lines().find_map(|l| l.strip_prefix("cluster_state:")).unwrap_or("?").trim().to_string();
    let nodes =
        crate::model::parse_nodes(&text).map_err(|reason| Error::Protocol { node: addr.to_string(), reason })?;
    Ok(NodeView { nodes, state, keys })
}

/// Each node's role, slots, keys and `cluster_state` as it says them, and the nodes no longer in
/// the cluster (reset, or known by no other running node): after a decommission those are the
/// removed ones. Exit 3 when a member reports a cluster state other than ok, or none runs.
fn status() -> Result<u8> {
    let Some(state) = read_state() else {
        println!("no sandbox (start one with `runbook sandbox up`)");
        return Ok(exit::OK);
    };
    let rt = live::runtime()?;
    let pool = Pool::new(Credentials::default(), Timeouts::default());
    let views: Vec<Option<NodeView>> = rt.block_on(async {
        let mut out = Vec::new();
        for n in &state.nodes {
            let addr = Addr::new("127.0.0.1", n.port);
            out.push(if pid_alive(n.pid) { view_of(&pool, &addr).await.ok() } else { None });
        }
        out
    });
    let me = |v: &NodeView| v.nodes.iter().find(|x| x.flags.myself).cloned();
    // A node is a member when some other running node lists it; reset, it knows only itself.
    let listed_by_others = |id: &str, port: u16| {
        state.nodes.iter().zip(&views).any(|(o, v)| {
            o.port != port && v.as_ref().is_some_and(|v| v.nodes.iter().any(|x| x.id == id && !x.flags.myself))
        })
    };
    let (mut members, mut removed, mut stopped, mut unhealthy) = (0, 0, 0, 0);
    for (n, v) in state.nodes.iter().zip(&views) {
        let addr = format!("127.0.0.1:{}", n.port);
        let Some(v) = v else {
            stopped += 1;
            println!("{addr:<16} stopped");
            continue;
        };
        let Some(myself) = me(v) else { continue };
        if v.nodes.len() <= 1 || !listed_by_others(&myself.id, n.port) {
            removed += 1;
            println!(
                "{addr:<16} removed from the cluster (it knows {} other node(s)), {} keys",
                v.nodes.len() - 1,
                v.keys
            );
            continue;
        }
        members += 1;
        if v.state != "ok" {
            unhealthy += 1;
        }
        let role = if myself.is_master() {
            format!("master  {:>5} slots", myself.slots.len())
        } else {
            let of = myself
                .master_id
                .as_deref()
                .and_then(|m| v.nodes.iter().find(|x| x.id == m))
                .map_or_else(|| "?".to_string(), |m| m.addr.to_string());
            format!("replica of {of}")
        };
        println!("{addr:<16} {role:<28} {:>8} keys  cluster_state:{}", v.keys, v.state);
    }
    println!(
        "{} nodes: {members} in the cluster, {removed} removed, {stopped} stopped ({} masters with {} replica(s) each at start)",
        state.nodes.len(),
        state.masters,
        state.replicas
    );
    Ok(if members == 0 || unhealthy > 0 { exit::REFUSED } else { exit::OK })
}

fn down() -> Result<u8> {
    let Some(state) = read_state() else {
        println!("no sandbox to stop");
        return Ok(exit::OK);
    };
    for n in &state.nodes {
        if pid_alive(n.pid) && process_is_redis(n.pid) {
            let _ = Command::new("kill").arg("-TERM").arg(n.pid.to_string()).status();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for n in &state.nodes {
        while pid_alive(n.pid) && process_is_redis(n.pid) {
            if Instant::now() > deadline {
                let _ = Command::new("kill").arg("-KILL").arg(n.pid.to_string()).status();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let _ = std::fs::remove_dir_all(sandbox_dir());
    println!("sandbox stopped ({} nodes)", state.nodes.len());
    Ok(exit::OK)
}

/// Guards against a recycled pid: only signal a process that is still a redis-server.
fn process_is_redis(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.contains("redis-server"))
}

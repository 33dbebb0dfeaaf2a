//! The cluster's own faults in the middle of a decommission: a receiving master or the victim
//! killed (its replica promoted), under a client writing throughout. After at most one re-run the
//! cluster is clean: no slot open, no key stranded in a slot its node does not own, every sample
//! key readable, the removed nodes forgotten.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::cluster::Written;
use crate::support::command::Output;
use crate::support::{TestCluster, runbook};

/// Masters are nodes 0-3; node 4+m is the replica of master m. Failovers take ~2-4 s.
fn fault_cluster(keys: u64) -> TestCluster {
    let c = TestCluster::start_with(4, 1, &["--cluster-node-timeout", "2000"]);
    c.load_keys(keys);
    c
}

/// The decommission of node 3, seeded at node `seed`, as a child process paced so that a fault
/// lands mid-drain.
fn decommission_args_at(c: &TestCluster, journal: &str, seed: usize) -> Vec<String> {
    [
        "run",
        "decommission",
        "--node",
        &c.port(3).to_string(),
        "-c",
        &c.nodes[seed].addr(),
        "--yes",
        "--journal",
        journal,
    ]
    .map(String::from)
    .to_vec()
}

fn decommission_args(c: &TestCluster, journal: &str) -> Vec<String> {
    decommission_args_at(c, journal, 1)
}

fn spawn_runbook(args: &[String], extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(args)
        .args(extra)
        .env_remove("RUNBOOK_CLUSTER")
        .env("RUNBOOK_STATE_DIR", crate::support::command::state_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start runbook")
}

fn finish(child: Child) -> Output {
    let out = child.wait_with_output().expect("runbook ran");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Whether node `i` shows a slot importing from or migrating to another node.
fn has_open_slot(c: &TestCluster, i: usize) -> bool {
    c.cluster_nodes(i).lines().any(|l| l.contains("myself") && (l.contains("-<-") || l.contains("->-")))
}

/// Keys each running master holds in slots it does not own, by its own view: stranded keys that
/// no client can reach.
fn stranded_keys(c: &TestCluster) -> Vec<(u16, u16, u64)> {
    let topo = c.topology();
    let mut out = Vec::new();
    for m in topo.masters().filter(|m| topo.is_reachable(&m.id)) {
        let i = c.index_of(m.addr.port);
        let mut con = c.conn(i);
        let mut pipe = redis::pipe();
        let foreign: Vec<u16> = (0..16384u16).filter(|s| !m.slots.contains(*s)).collect();
        for s in &foreign {
            pipe.cmd("CLUSTER").arg("COUNTKEYSINSLOT").arg(*s);
        }
        let counts: Vec<u64> = pipe.query(&mut con).unwrap();
        out.extend(foreign.iter().zip(counts).filter(|(_, n)| *n > 0).map(|(s, n)| (m.addr.port, *s, n)));
    }
    out
}

/// What a user checks after the dust settles: a clean `runbook check` (or one whose only problems
/// are the nodes in `down`, still dead), no stranded key, every sample key readable, the removed
/// nodes forgotten by every running member.
#[track_caller]
fn assert_clean_but(c: &TestCluster, keys: u64, removed: &[&str], down: &[usize]) {
    let check = runbook(&["check", "-c", &c.nodes[1].addr()]).run();
    if down.is_empty() {
        check.expect_code(0);
    } else {
        check.expect_code(3);
        for line in check.stdout.lines().filter(|l| l.starts_with("[ERR]")) {
            assert!(down.iter().any(|&d| line.contains(&c.nodes[d].addr())), "a problem beside the dead node: {line}");
        }
    }
    assert_eq!(stranded_keys(c), Vec::new(), "keys stranded in slots their node does not own");
    c.assert_sample_keys(keys);
    for i in c.members() {
        for id in removed {
            if c.node_id(i) != *id {
                assert!(!c.knows(i, id), "node {} still knows removed node {id}", c.port(i));
            }
        }
    }
}

#[track_caller]
fn assert_clean(c: &TestCluster, keys: u64, removed: &[&str]) {
    assert_clean_but(c, keys, removed, &[]);
}

/// A paced decommission of node 3 under a writing client; `kill` is SIGKILLed once a slot is
/// open on node `open_on`. Returns the run's output, the writer's record, and the ids of the
/// victim and its replica.
fn drain_and_kill(c: &mut TestCluster, open_on: usize, kill: usize) -> (Output, Written, [String; 2]) {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.jsonl").display().to_string();
    let removed = [c.node_id(3), c.node_id(7)];
    let writer = c.writer();
    let run = spawn_runbook(&decommission_args(c, &journal), &["--rate-limit", "2000"]);
    c.wait_until("a slot is open", Duration::from_secs(30), |c| has_open_slot(c, open_on));
    c.kill(kill);
    let out = finish(run);
    println!("run: exit {}\n{}\n{}", out.code, out.stdout, out.stderr);
    let written = writer.stop();
    let lost = c.lost_writes(&written.acked);
    println!("writer: {} acknowledged, {} lost, failed by kind {:?}", written.acked.len(), lost.len(), written.failed);
    (out, written, removed)
}

#[test]
fn a_receiving_master_killed_mid_drain() {
    let mut c = fault_cluster(20_000);
    // The first receiver is node 0: kill it while it imports.
    let (first, _, [victim, replica]) = drain_and_kill(&mut c, 0, 0);
    // It goes on with the promoted replica, and its final check names the dead node: the
    // one problem left, which the decommission did not cause.
    first
        .expect_code(1)
        .stderr_has("failed over to")
        .stderr_has("died importing slots")
        .stderr_has("the decommission is done, but");
    c.wait_promoted(4);
    assert_clean_but(&c, 20_000, &[&victim, &replica], &[0]);
    // The operator restarts the dead receiver from its nodes.conf, which still records the slots
    // it was importing from the victim and both removed nodes. It rejoins as its successor's
    // replica without taking a slot back (the victim left with a new id, so nothing claims or
    // releases what it was importing), and the removed nodes it still knows are named by `check`
    // and forgotten by `fix`.
    c.restart(0);
    c.wait_until("the restarted receiver rejoins as a replica", Duration::from_secs(30), |c| c.role(0) == "replica");
    c.wait_healthy();
    // Redis keeps the old ids it pinged at their new owners as `noaddr`; Valkey drops them, and
    // with them the open slots that named them.
    if !valkey() {
        assert!(c.knows(0, &victim), "its nodes.conf lists the removed victim");
        runbook(&["check", "-c", &c.nodes[1].addr()]).run().expect_code(3).stdout_has("is known again by");
    }
    if c.knows(0, &victim) || c.knows(0, &replica) || has_open_slot(&c, 0) {
        runbook(&["fix", "-c", &c.nodes[1].addr()]).run().expect_code(0);
    }
    assert_clean(&c, 20_000, &[&victim, &replica]);
}

#[test]
fn the_victim_killed_mid_drain() {
    let mut c = fault_cluster(20_000);
    let (first, _, [victim, replica]) = drain_and_kill(&mut c, 3, 3);
    // It drains the promoted replica instead and removes both: the shard is gone, and the dead
    // victim with it, so nothing is left to report.
    first.expect_code(0).stderr_has("failed over to");
    assert_clean(&c, 20_000, &[&victim, &replica]);
}

/// Saves every running node's CLUSTER NODES and its keys per slot for the slots it does not own
/// (the keys a reconciliation has to place) under `RUNBOOK_CAPTURE_DIR/<name>/`, when that
/// variable is set: the node views met during a fault, kept as fixtures for the pure decision
/// code's unit tests (`tests/fixtures/failover/`).
fn capture(c: &TestCluster, name: &str) {
    let Some(dir) = std::env::var_os("RUNBOOK_CAPTURE_DIR") else { return };
    let dir = std::path::Path::new(&dir).join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for i in c.running().collect::<Vec<_>>() {
        std::fs::write(dir.join(format!("{}.nodes", c.port(i))), c.cluster_nodes(i)).unwrap();
        let nodes = runbook::model::parse_nodes(&c.cluster_nodes(i)).unwrap();
        let me = nodes.iter().find(|n| n.flags.myself).unwrap().clone();
        if !me.is_master() {
            continue;
        }
        let mut pipe = redis::pipe();
        for s in 0..16384u16 {
            pipe.cmd("CLUSTER").arg("COUNTKEYSINSLOT").arg(s);
        }
        let counts: Vec<u64> = pipe.query(&mut c.conn(i)).unwrap();
        let mut text = String::new();
        for (s, n) in counts.iter().enumerate().filter(|(s, n)| **n > 0 && !me.slots.contains(*s as u16)) {
            text.push_str(&format!("{s} {n}\n"));
        }
        std::fs::write(dir.join(format!("{}.keys", c.port(i))), text).unwrap();
    }
}

/// The tool and a node die together (no journal to go by): `runbook fix` repairs what is left.
fn fix_after(kill_node: usize, promoted: usize, name: &str) {
    let mut c = fault_cluster(20_000);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.jsonl").display().to_string();
    let mut run = spawn_runbook(&decommission_args(&c, &journal), &["--rate-limit", "2000"]);
    // Node 0 receives the first batch: wait until some keys have moved, so they are split.
    c.wait_until("keys have reached node 0", Duration::from_secs(30), |c| {
        let mut pipe = redis::pipe();
        for s in 12288..12544 {
            pipe.cmd("CLUSTER").arg("COUNTKEYSINSLOT").arg(s);
        }
        has_open_slot(c, kill_node) && pipe.query::<Vec<u64>>(&mut c.conn(0)).unwrap().iter().sum::<u64>() > 0
    });
    let _ = run.kill();
    c.kill(kill_node);
    let _ = run.wait();
    c.wait_until("the replica is promoted", Duration::from_secs(60), |c| c.role(promoted) == "master");
    c.wait_until("the promoted replica claims slots", Duration::from_secs(30), |c| {
        c.cluster_nodes(promoted).lines().any(|l| l.contains("myself") && l.split(' ').count() > 8)
    });
    capture(&c, name);
    let out = runbook(&["fix", "-c", &c.nodes[1].addr()]).run();
    println!("fix: exit {}\n{}\n{}", out.code, out.stdout, out.stderr);
    out.expect_code(0);
    // The operator brings the dead node back; it rejoins as a replica of its successor.
    c.restart(kill_node);
    c.wait_until("the restarted node rejoins as a replica", Duration::from_secs(30), |c| {
        c.role(kill_node) == "replica"
    });
    c.wait_healthy();
    // Valkey keeps a primary's open slots when it rejoins its shard as a replica (Redis closes
    // them): `check` names them, and one more `fix` closes them through its master.
    if valkey() {
        assert!(has_open_slot(&c, kill_node), "the restarted node keeps the open slots of its nodes.conf");
        runbook(&["check", "-c", &c.nodes[1].addr()]).run().expect_code(3).stdout_has("slots are open");
        let out = runbook(&["fix", "-c", &c.nodes[1].addr()]).run();
        println!("fix after the restart: exit {}\n{}\n{}", out.code, out.stdout, out.stderr);
        out.expect_code(0).stderr_has("which replicates it");
    }
    assert_clean(&c, 20_000, &[]);
}

fn valkey() -> bool {
    std::env::var("RUNBOOK_TEST_SERVER").is_ok_and(|s| s.contains("valkey"))
}

#[test]
fn fix_after_the_tool_and_a_receiver_died() {
    fix_after(0, 4, "receiver-died");
}

#[test]
fn fix_after_the_tool_and_the_victim_died() {
    fix_after(3, 7, "victim-died");
}

/// A replica of a receiving master freezes mid-drain. Redis does not wait for replicas; Valkey
/// carries out a primary's SETSLOT only once its replicas acknowledged it (NOREPLICAS after 2 s
/// otherwise), so there the drain retries, saying why, and goes on once the replica wakes.
#[test]
fn a_frozen_replica_of_a_receiver_holds_the_drain_only_while_frozen() {
    let c = fault_cluster(20_000);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.jsonl").display().to_string();
    let (victim, replica) = (c.node_id(3), c.node_id(7));
    let run = spawn_runbook(&decommission_args(&c, &journal), &["--rate-limit", "500"]);
    let frozen = c.node_id(4);
    c.wait_until("node 0 imports slots", Duration::from_secs(30), |c| has_open_slot(c, 0));
    c.freeze(4);
    c.wait_until("the others suspect the frozen replica", Duration::from_secs(30), |c| {
        c.cluster_nodes(1).lines().any(|l| l.starts_with(&frozen) && l.contains("fail"))
    });
    c.thaw(4);
    let out = finish(run);
    println!("run: exit {}\n{}\n{}", out.code, out.stdout, out.stderr);
    out.expect_code(0);
    if valkey() {
        out.stderr_has("does not acknowledge SETSLOT");
    }
    assert_clean(&c, 20_000, &[&victim, &replica]);
}

/// A master dies while the drain is busy elsewhere: every node reports `cluster_state:fail`
/// until its replica is promoted, and the victim refuses MIGRATE meanwhile (CLUSTERDOWN).
#[test]
fn a_later_receiver_killed_while_another_receives() {
    let mut c = fault_cluster(20_000);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.jsonl").display().to_string();
    // Seeded at the node that dies: the run reads the cluster from the nodes that still answer.
    let args = decommission_args_at(&c, &journal, 2);
    let (victim, replica) = (c.node_id(3), c.node_id(7));
    let writer = c.writer();
    let run = spawn_runbook(&args, &["--rate-limit", "2000"]);
    // Node 2 receives last; kill it while node 0 imports.
    c.wait_until("node 0 imports slots", Duration::from_secs(30), |c| has_open_slot(c, 0));
    c.kill(2);
    let out = finish(run);
    println!("run: exit {}\n{}\n{}", out.code, out.stdout, out.stderr);
    // The run waits for the failover, settles its batch and goes on, the dead receiver replaced
    // by its promoted replica. It ends with exit 1 only because its final check finds the dead
    // node, a problem the cluster did not have when the run started.
    out.expect_code(1)
        .stderr_has("settled; going on with the plan")
        .stderr_has("the decommission is done, but the cluster now reports what it did not before");
    let written = writer.stop();
    let lost = c.lost_writes(&written.acked);
    println!("writer: {} acknowledged, {} lost, failed by kind {:?}", written.acked.len(), lost.len(), written.failed);
    c.wait_promoted(6);
    assert_clean_but(&c, 20_000, &[&victim, &replica], &[2]);
}

/// A receiver frozen for less than the node timeout (a long fork, a paused VM): no failover
/// happens, its MIGRATEs wait and go through once it wakes, and the run finishes by itself.
#[test]
fn a_receiver_frozen_briefly_mid_drain() {
    let c = TestCluster::start_with(4, 1, &["--cluster-node-timeout", "5000"]);
    c.load_keys(20_000);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("j.jsonl").display().to_string();
    let args = decommission_args(&c, &journal);
    let (victim, replica) = (c.node_id(3), c.node_id(7));
    let writer = c.writer();
    let run = spawn_runbook(&args, &["--rate-limit", "2000"]);
    c.wait_until("node 0 imports slots", Duration::from_secs(30), |c| has_open_slot(c, 0));
    c.freeze(0);
    // Frozen while the cluster notices nothing: less than the node timeout, measured by the
    // other nodes' view of it (they flag it `fail?` only after the timeout).
    let frozen = std::time::Instant::now();
    while frozen.elapsed() < Duration::from_millis(2500) {
        assert!(!c.cluster_nodes(1).lines().any(|l| l.contains(&c.nodes[0].addr()) && l.contains("fail")));
        std::thread::sleep(Duration::from_millis(100));
    }
    c.thaw(0);
    let out = finish(run);
    println!("run: exit {}\n{}\n{}", out.code, out.stdout, out.stderr);
    out.expect_code(0);
    let written = writer.stop();
    assert_eq!(c.lost_writes(&written.acked), Vec::<u64>::new(), "no failover, so no acknowledged write may be lost");
    assert_clean(&c, 20_000, &[&victim, &replica]);
}

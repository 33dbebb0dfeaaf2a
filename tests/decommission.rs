//! The seed's scenario end to end: `runbook run decommission --node <master with a replica>`.

use crate::support::{TestCluster, runbook, script};

/// Masters are nodes 0-3; node 7 is the replica of master 3.
fn seed_cluster(keys: u64) -> TestCluster {
    let c = TestCluster::start(4, 1);
    c.load_keys(keys);
    c
}

#[track_caller]
fn assert_removed_and_balanced(c: &TestCluster, victim: &str, replica: &str) {
    for i in 0..7 {
        if i == 3 {
            continue;
        }
        assert!(!c.knows(i, victim), "node {} still knows the removed master", c.port(i));
        assert!(!c.knows(i, replica), "node {} still knows the removed replica", c.port(i));
    }
    // The removed nodes were reset: each knows only itself and holds nothing.
    for i in [3, 7] {
        assert_eq!(c.cluster_nodes(i).lines().count(), 1, "node {} was not reset", c.port(i));
    }
    let topo = c.topology();
    let counts: Vec<usize> = topo.masters().filter(|m| !m.slots.is_empty()).map(|m| m.slots.len()).collect();
    assert_eq!(counts.len(), 3);
    assert_eq!(counts.iter().sum::<usize>(), 16384);
    for n in &counts {
        let share = 16384.0 / 3.0;
        assert!((*n as f64 - share).abs() / share * 100.0 <= 2.0, "unbalanced: {counts:?}");
    }
    runbook(&["check", "-c", &c.seed()]).run().expect_code(0);
}

#[test]
fn seed_scenario_removes_master_and_replica_keeping_every_key() {
    let c = seed_cluster(100_000);
    let (victim, replica) = (c.node_id(3), c.node_id(7));
    let out =
        runbook(&["run", "decommission", "--node", &c.port(3).to_string(), "--cluster", &c.seed(), "--yes"]).run();
    out.expect_code(0)
        .stdout_has("drain plan: 4096 slots")
        .stdout_has(&format!("decommissioned {}", c.nodes[3].addr()))
        .stderr_has("making every node forget");
    assert_removed_and_balanced(&c, &victim, &replica);
    assert_eq!(c.total_keys(), 100_000);
    c.assert_sample_keys(100_000);
    // The same command again, as an operator unsure it went through: it says what happened.
    runbook(&["run", "decommission", "--node", &c.port(3).to_string(), "--cluster", &c.seed(), "--yes"])
        .run()
        .expect_code(2)
        .stderr_has(&format!("{} is no longer in the cluster: it was removed by run", c.nodes[3].addr()));
}

#[test]
fn decommission_under_write_load_loses_no_acknowledged_write() {
    let c = seed_cluster(20_000);
    let (victim, replica) = (c.node_id(3), c.node_id(7));
    let writer = c.writer();
    let out = runbook(&["run", "decommission", "--node", &c.nodes[3].addr(), "-c", &c.seed(), "-y"]).run();
    let written = writer.stop();
    out.expect_code(0);
    // Writes may fail while a slot changes hands (TRYAGAIN, a node being reset); none that was
    // acknowledged may be lost.
    println!("workload: {} writes acknowledged, failed by kind: {:?}", written.acked.len(), written.failed);
    assert!(
        written.acked.len() > 1000,
        "the workload ran ({} acked, failed: {:?})",
        written.acked.len(),
        written.failed
    );
    assert_eq!(c.lost_writes(&written.acked), Vec::<u64>::new(), "acknowledged writes were lost");
    assert_removed_and_balanced(&c, &victim, &replica);
    c.assert_sample_keys(20_000);
}

/// An operator who has judged a down replica elsewhere safe (`--skip-gates failed_nodes`) gets a
/// finished decommission and exit 0: the final check reports the problem the cluster already
/// had, and fails only on one the run would have caused.
#[test]
fn a_problem_accepted_at_preflight_does_not_fail_the_finished_run() {
    let mut c = seed_cluster(2000);
    let victim = c.node_id(3);
    c.kill(5); // a replica of master 1
    let down = c.nodes[5].addr();
    let (port, seed) = (c.port(3).to_string(), c.seed());
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "decommission", "--node", &port, "-c", &seed, "-y"];
        args.extend(extra);
        runbook(&args).run()
    };
    let before = c.topology().fingerprint();
    run(&[]).expect_code(3).stderr_has("[FAIL] failed_nodes").stderr_has("--skip-gates failed_nodes");
    assert_eq!(c.topology().fingerprint(), before, "a failed gate changed the cluster");

    run(&["--skip-gates", "failed_nodes"])
        .expect_code(0)
        .stdout_has(&format!("decommissioned {}", c.nodes[3].addr()))
        .stdout_has(&format!("still as before the run: {down} cannot be reached"));
    for i in [0, 1, 2, 4, 6] {
        assert!(!c.knows(i, &victim), "node {} still knows the removed master", c.port(i));
    }
    assert_eq!(c.total_keys(), 2000);

    // A runbook's own assert_healthy on the same cluster: before any change it refuses (exit 3,
    // "nothing was changed" holds); after a change it fails (exit 1) and says the changes stay.
    let (_d1, only_check) = script("let c = cluster();\nc.check().assert_healthy();\n");
    runbook(&["run", &only_check, "-c", &seed]).run().expect_code(3).stderr_has("the cluster is not healthy:");
    let (_d2, after_move) = script(
        "let c = cluster();\nlet m = c.masters();\nc.migrate_slot(c.slots_of(m[0])[0][0], m[1]);\nc.check().assert_healthy();\n",
    );
    runbook(&["run", &after_move, "-c", &seed])
        .run()
        .expect_code(1)
        .stderr_has("the cluster is not healthy after this run's changes:")
        .stderr_has("the changes this run made stay in place");
    assert_eq!(c.total_keys(), 2000);
}

/// Full resyncs wait `repl-diskless-sync-delay` (5 s) for more replicas before they start, on
/// Redis 7 and Valkey 8 alike: set it anyway, so a restarted replica stays out of sync that long.
fn slow_full_syncs(c: &TestCluster) {
    for i in 0..c.masters {
        for (k, v) in [("repl-diskless-sync", "yes"), ("repl-diskless-sync-delay", "5")] {
            redis::cmd("CONFIG").arg("SET").arg(k).arg(v).exec(&mut c.conn(i)).unwrap();
        }
    }
}

#[test]
fn a_replica_resyncing_after_a_restart_is_waited_for() {
    let mut c = seed_cluster(20_000);
    slow_full_syncs(&c);
    // The replica of master 0 restarts without its data and must sync everything again, just
    // before the decommission starts.
    c.kill(4);
    c.restart_wiped(4);
    let out = runbook(&["run", "decommission", "--node", &c.port(3).to_string(), "-c", &c.seed(), "-y"]).run();
    out.expect_code(0)
        .stderr_has("waiting up to ")
        .stderr_has(&format!("{} is not in sync with its master", c.nodes[4].addr()))
        .stderr_has("the cluster settled after ")
        .stderr_has("[ok  ] replicas_in_sync")
        .stdout_has(&format!("decommissioned {}", c.nodes[3].addr()));
    assert_eq!(c.total_keys(), 20_000);
    c.assert_sample_keys(20_000);
}

#[test]
fn a_failed_master_nobody_can_replace_refuses_at_once() {
    // Three masters, no replicas: a master that dies has no failover to wait for.
    let mut c = TestCluster::start(3, 0);
    c.load_keys(2000);
    c.kill(1);
    let fp = c.topology().fingerprint();
    let started = std::time::Instant::now();
    let out =
        runbook(&["run", "decommission", "--node", &c.port(2).to_string(), "-c", &c.seed(), "-y", "--settle", "2"])
            .run();
    out.expect_code(3)
        .stderr_has("[FAIL] failed_nodes")
        .stderr_has(&format!("{} cannot be reached", c.nodes[1].addr()));
    assert!(!out.stderr.contains("waiting up to"), "it waited:\n{}", out.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "{:?}", started.elapsed());
    assert_eq!(c.topology().fingerprint(), fp, "nothing was changed");
}

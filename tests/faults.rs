//! The cluster's own faults during a run: a node frozen while nodes are removed.

use std::time::{Duration, Instant};

use crate::support::{TestCluster, runbook};

/// A replica frozen (SIGSTOP) through a whole decommission misses the CLUSTER FORGET. Once it
/// wakes it still knows the removed nodes, and before this was fixed its gossip brought them
/// back into every node's table as soon as the others' 60 s FORGET ban ended. Now: the run costs
/// one bounded attempt per read of the frozen node, the removed nodes are retired so that the
/// stale gossip cannot bring them back, `check` names the node that still knows them and `fix`
/// finishes the forget.
///
/// Redis 7.0's case. Redis 7.2+ and Valkey also pass a FORGET on in their pings for the 60 s of
/// the ban (the forgotten-node extension), so there a node that wakes inside the ban forgets by
/// itself (seen on Valkey 8.1 with a plain `del_node`); one that wakes later is this case again.
/// On Valkey this drain does not get that far yet: a primary answers a replicated `SETSLOT` only
/// once its replicas acknowledge it, and a frozen replica of a receiver never does.
#[test]
fn a_replica_frozen_during_the_forget_does_not_bring_removed_nodes_back() {
    let c = TestCluster::start_with(4, 1, &["--cluster-node-timeout", "2000"]);
    c.load_keys(2000);
    // A state directory of its own: the registry of removed nodes and the journals of this test.
    let state = tempfile::tempdir().unwrap();
    let rb = |args: &[&str]| runbook(args).env("RUNBOOK_STATE_DIR", state.path());
    let decommission = |port: u16, extra: &[&str]| {
        let (port, seed) = (port.to_string(), c.seed());
        let mut args = vec!["run", "decommission", "--node", &port, "-c", &seed, "-y"];
        args.extend_from_slice(extra);
        let started = Instant::now();
        let out = rb(&args).run();
        (out, started.elapsed())
    };
    // A normal run first, on the same cluster, for the wall time to compare with.
    let (out, normal) = decommission(c.port(3), &[]);
    out.expect_code(0);

    // Node 4 is the replica of master 0: not involved in draining or removing master 2.
    let (frozen, victim, victim_replica) = (4, 2, 6);
    let removed = [(c.port(victim), c.node_id(victim)), (c.port(victim_replica), c.node_id(victim_replica))];
    c.freeze(frozen);
    let (out, slow) = decommission(c.port(victim), &["--skip-gates", "failed_nodes"]);
    c.thaw(frozen);
    eprintln!("decommission wall time: normal run {normal:.1?}, with a frozen replica {slow:.1?}");
    eprintln!("the run with a frozen replica said:\n{}", out.stderr);
    out.expect_code(0).stderr_has(&format!("{} missed the forget", c.nodes[frozen].addr()));

    // The node that slept through the forget still knows the removed nodes: nothing but a FORGET
    // of its own can change that. What must not happen is that its gossip teaches them to the
    // nodes that did forget them, which happens once their FORGET ban (60 s) ends: watch past it.
    // (Valkey may drop them by itself once their addresses answer with new ids; Redis keeps them,
    // `noaddr`.)
    let valkey = std::env::var("RUNBOOK_TEST_SERVER").is_ok_and(|s| s.contains("valkey"));
    if !valkey {
        assert!(removed.iter().all(|(_, id)| c.knows(frozen, id)), "the frozen node cannot have forgotten them");
    }
    let deadline = Instant::now() + Duration::from_secs(75);
    while Instant::now() < deadline {
        for i in c.running().filter(|&i| i != frozen && i != victim && i != victim_replica) {
            for (port, id) in &removed {
                assert!(!c.knows(i, id), "node {} knows the removed node {port} again", c.port(i));
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }

    // `check` names what came back, and who knows it; `fix` finishes the forget.
    let frozen_addr = c.nodes[frozen].addr();
    let known: Vec<&(u16, String)> = removed.iter().filter(|(_, id)| c.knows(frozen, id)).collect();
    if !known.is_empty() {
        let check = rb(&["check", "-c", &c.seed()]).run();
        check.expect_code(3);
        for (port, _) in &known {
            check
                .stdout_has(&format!("127.0.0.1:{port}, removed by run "))
                .stdout_has(&format!("is known again by {frozen_addr}"));
        }
        rb(&["check", "-c", &c.seed(), "--json"]).run().expect_code(3).stdout_has("\"known_again\"");
        rb(&["fix", "-c", &c.seed()]).run().expect_code(0).stderr_has(&format!("{frozen_addr} forgot"));
    }
    for i in c.running().filter(|&i| i != victim && i != victim_replica) {
        for (port, id) in &removed {
            assert!(!c.knows(i, id), "node {} still knows the removed node {port} after fix", c.port(i));
        }
    }
    rb(&["check", "-c", &c.seed()]).run().expect_code(0);
    c.assert_sample_keys(2000);

    // The run's journal says which forget was missed, and by whom.
    let journals: Vec<String> = std::fs::read_dir(state.path().join("journal"))
        .unwrap()
        .map(|e| rb(&["journal", &e.unwrap().path().display().to_string()]).run().stdout)
        .collect();
    let pending = format!("forget of 127.0.0.1:{} missed by {frozen_addr}", c.port(victim));
    assert!(journals.iter().any(|j| j.contains(&pending)), "no journal says {pending:?}:\n{}", journals.join("\n"));
}

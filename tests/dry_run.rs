//! A dry run is a rehearsal, not a guess: each shipped runbook runs as a dry run, then live, on
//! the same cluster, and both must take the same steps in the same order and end with the same
//! cluster (the `outcome` event of `--json`: each master's slots, the members, each replica's
//! master).

use serde_json::Value;

use crate::support::{TestCluster, runbook};

/// The steps started, in order (`del_node 127.0.0.1:…`), and the outcome, from a `--json` run.
fn steps_and_outcome(stdout: &str) -> (Vec<String>, Value) {
    let events: Vec<Value> = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let steps = events
        .iter()
        .filter(|e| e["event"] == "step" && e["phase"] == "started")
        .map(|e| format!("{} {}", e["step"].as_str().unwrap_or_default(), e["args"].as_str().unwrap_or_default()))
        .collect();
    let outcome = events.iter().rev().find(|e| e["event"] == "outcome").map(|e| e["topology"].clone());
    (steps, outcome.unwrap_or_else(|| panic!("no outcome event in\n{stdout}")))
}

/// Runs `args` as a dry run, then live, and holds the one against the other.
fn rehearse_then_run(c: &TestCluster, args: &[&str]) {
    let fingerprint = c.topology().fingerprint();
    let mut dry = args.to_vec();
    dry.extend(["--dry-run", "--json", "-y", "-c"]);
    let seed = c.seed();
    dry.push(&seed);
    let rehearsal = runbook(&dry).run();
    rehearsal.expect_code(0);
    assert_eq!(c.topology().fingerprint(), fingerprint, "the dry run changed nothing");
    let live: Vec<&str> = dry.iter().copied().filter(|a| *a != "--dry-run").collect();
    let real = runbook(&live).run();
    real.expect_code(0);
    let (predicted_steps, predicted) = steps_and_outcome(&rehearsal.stdout);
    let (steps, outcome) = steps_and_outcome(&real.stdout);
    assert_eq!(predicted_steps, steps, "{args:?}: the dry run's steps are the live run's");
    assert_eq!(
        predicted, outcome,
        "{args:?}: the dry run predicted\n{predicted:#}\nthe live run made\n{outcome:#}\n--- dry run\n{}",
        rehearsal.stderr
    );
    // The cluster as a member sees it (the harness's own topology also lists removed and spare
    // servers, which are no members), once gossip has carried the last change to it.
    let seen = |c: &TestCluster| {
        let view = runbook::model::parse_nodes(&c.cluster_nodes(1)).unwrap();
        runbook::model::Topology::from_single_view(view).outcome()
    };
    c.wait_until("a member sees the outcome the run reported", std::time::Duration::from_secs(30), |c| {
        seen(c) == outcome
    });
}

#[test]
fn decommission_and_rebalance_as_rehearsed() {
    let c = TestCluster::start(4, 1);
    c.load_keys(4000);
    rehearse_then_run(&c, &["run", "decommission", "--node", &c.port(3).to_string()]);
    c.assert_sample_keys(4000);
    let weights = format!("{}=2", c.port(0));
    rehearse_then_run(&c, &["run", "rebalance", "--weights", &weights]);
    c.assert_sample_keys(4000);
}

#[test]
fn scale_out_and_replace_node_as_rehearsed() {
    let mut c = TestCluster::start(3, 0);
    c.load_keys(3000);
    let (one, two, spare) = (c.add_server(), c.add_server(), c.add_server());
    let nodes = format!("{},{}", c.port(one), c.port(two));
    let replica_of = format!("{}={}", c.port(two), c.port(one));
    rehearse_then_run(&c, &["run", "scale-out", "--nodes", &nodes, "--replica-of", &replica_of]);
    c.assert_sample_keys(3000);
    rehearse_then_run(
        &c,
        &["run", "replace-node", "--node", &c.port(0).to_string(), "--replacement", &c.nodes[spare].addr()],
    );
    c.assert_sample_keys(3000);
}

#[test]
fn fix_as_rehearsed() {
    let c = TestCluster::start(3, 0);
    c.load_keys(2000);
    let target = c.node_id(1);
    for slot in [5, 6, 7] {
        redis::cmd("CLUSTER").arg("SETSLOT").arg(slot).arg("MIGRATING").arg(&target).exec(&mut c.conn(0)).unwrap();
    }
    rehearse_then_run(&c, &["run", "fix"]);
    c.assert_sample_keys(2000);
}

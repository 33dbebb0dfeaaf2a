//! A dry run is a rehearsal, not a guess: each shipped runbook runs as a dry run, then live, on
//! the same cluster, and both must take the same steps in the same order, each with the same
//! actions (every slot batch, SETSLOT, forget, replicate, reset), and end with the same
//! cluster (the `outcome` event of `--json`: each master's slots, the members, each replica's
//! master).

use serde_json::Value;

use crate::support::{TestCluster, runbook};

/// Each step started, in order (`del_node 127.0.0.1:…`), with the actions it took (`move 0-255
/// … -> …`, `forget 1a2b3c4d`), and the outcome, from a `--json` run. A step's actions are
/// sorted (batches of one wave run at once, in either order) and a repeated one counted once (a
/// live forget takes another round when gossip brings the node back).
fn steps_and_outcome(stdout: &str) -> (Vec<(String, Vec<String>)>, Value) {
    let events: Vec<Value> = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let mut steps: Vec<(String, Vec<String>)> = vec![("(before any step)".into(), Vec::new())];
    for e in &events {
        if e["event"] == "step" && e["phase"] == "started" {
            let label =
                format!("{} {}", e["step"].as_str().unwrap_or_default(), e["args"].as_str().unwrap_or_default());
            steps.push((label, Vec::new()));
        } else if e["event"] == "action" {
            steps.last_mut().unwrap().1.push(e["action"].as_str().unwrap_or_default().to_string());
        }
    }
    for (_, actions) in &mut steps {
        actions.sort();
        actions.dedup();
    }
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
    assert!(steps.iter().any(|(_, a)| !a.is_empty()), "{args:?}: the run reported its actions");
    assert_eq!(predicted_steps, steps, "{args:?}: the dry run's steps and actions are the live run's");
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
    // Paced by a pause budget: the same actions, every key kept.
    rehearse_then_run(&c, &["run", "rebalance", "--weights", &weights, "--max-pause", "1"]);
    c.assert_sample_keys(4000);
}

/// With `cluster-allow-replica-migration no` a master emptied of slots stays a master: the
/// simulation reads the setting, as the servers do.
#[test]
fn a_decommission_without_replica_migration_as_rehearsed() {
    let c = TestCluster::start(3, 1);
    c.load_keys(2000);
    for k in c.members() {
        redis::cmd("CONFIG").arg("SET").arg("cluster-allow-replica-migration").arg("no").exec(&mut c.conn(k)).unwrap();
    }
    // Drained, not removed: the emptied master stays one (with replica migration it would
    // follow a receiver as its replica, and the outcome would say so).
    let (_d, path) = crate::support::script(&format!(
        "let c = cluster();\nc.apply(c.plan_drain(c.node({})));\nc.wait_converged(30);\n",
        c.port(2)
    ));
    rehearse_then_run(&c, &["run", &path]);
    let emptied = c.nodes[2].addr();
    let view = runbook::model::parse_nodes(&c.cluster_nodes(0)).unwrap();
    let node = view.iter().find(|n| n.addr.to_string() == emptied).expect("still a member");
    assert!(node.is_master() && node.slots.is_empty(), "{emptied} is an empty master");
    c.assert_sample_keys(2000);
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

/// `--dry-run --save-plan` writes what the rehearsal decided; `plan show` prints it; `--plan`
/// applies exactly it, with no prompt, and refuses (exit 3, nothing changed) once the cluster
/// is no longer the one the plan was made for.
#[test]
fn a_reviewed_plan_is_applied_exactly_and_a_stale_one_refused() {
    let c = TestCluster::start(4, 1);
    c.load_keys(3000);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.json").display().to_string();
    let (seed, victim) = (c.seed(), c.port(3).to_string());
    let fingerprint = c.topology().fingerprint();
    runbook(&["run", "decommission", "--node", &victim, "-c", &seed, "--dry-run", "--save-plan", &file])
        .run()
        .expect_code(0)
        .stderr_has("plan saved to");
    assert_eq!(c.topology().fingerprint(), fingerprint, "saving a plan changes nothing");
    runbook(&["plan", "show", &file])
        .run()
        .expect_code(0)
        .stdout_has(&format!("plan: runbook decommission --node {victim} on {seed}"))
        .stdout_has(&format!("plan_drain {}", c.nodes[3].addr()))
        .stdout_has(&format!("{} leaves the cluster", c.nodes[3].addr()))
        .stdout_has("plan_rebalance")
        .stdout_has_victim_drained_in_the_map(&c.nodes[3].addr())
        .stdout_has(&format!("runbook run --plan {file}"));
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();

    // Misuse is refused before anything connects.
    runbook(&["run", "--plan", &file, "--node", "6391"]).run().expect_code(2).stderr_has("carries its own parameters");
    runbook(&["run", "decommission", "--node", &victim, "-c", &seed, "--save-plan", &file])
        .run()
        .expect_code(2)
        .stderr_has("add --dry-run");
    runbook(&["plan", "show", "/etc/hostname"]).run().expect_code(2).stderr_has("is not a runbook plan");

    // The cluster changes: the plan is stale, refused, naming the change.
    let move_slot = |to: usize| {
        let (_d, path) =
            crate::support::script(&format!("let c = cluster();\nc.migrate_slot(0, c.node({}));\n", c.port(to)));
        runbook(&["run", &path, "-c", &seed]).run().expect_code(0);
    };
    move_slot(1);
    let changed = c.topology().fingerprint();
    runbook(&["run", "--plan", &file])
        .run()
        .expect_code(3)
        .stderr_has("the cluster changed since the plan was made")
        .stderr_has(&format!("{} slots: 0-4095 → 1-4095", c.nodes[0].addr()))
        .stderr_has("make a new plan");
    assert_eq!(c.topology().fingerprint(), changed, "a stale plan changes nothing");

    // Back as it was, but for a slot left open by hand: stale too, and named.
    move_slot(0);
    let setslot = |how: &[&str]| {
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("SETSLOT").arg(5).arg(how);
        cmd.exec(&mut c.conn(0)).unwrap();
    };
    setslot(&["MIGRATING", &c.node_id(1)]);
    runbook(&["run", "--plan", &file])
        .run()
        .expect_code(3)
        .stderr_has(&format!("{} open slots: (none) → migrating 5 to {}", c.nodes[0].addr(), c.nodes[1].addr()))
        .stderr_has("make a new plan");
    setslot(&["STABLE"]);

    // As it was: the plan applies, without a prompt, to exactly the predicted outcome.
    let applied = runbook(&["run", "--plan", &file, "--json"]).run();
    applied.expect_code(0);
    let outcome = applied
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["event"] == "outcome")
        .expect("an outcome event");
    assert_eq!(outcome["topology"], saved["after"], "the live run made what the plan predicted");
    c.assert_sample_keys(3000);
}

//! What a user sees when a runbook or its input is wrong: message, position, exit code, and the
//! cluster untouched.

use crate::support::{TestCluster, runbook, script};

#[test]
fn missing_and_unknown_parameters_fail_before_connecting() {
    // No cluster is given at all: the parameter error must come first.
    runbook(&["run", "decommission"])
        .run()
        .expect_code(2)
        .stderr_has("missing required parameter --node")
        .stderr_has("--rebalance");
    runbook(&["run", "decommission", "--node", "1", "--nod", "2"])
        .run()
        .expect_code(2)
        .stderr_has("unknown parameter --nod");
    runbook(&["run", "decommission", "--node", "1", "--rebalance", "maybe"])
        .run()
        .expect_code(2)
        .stderr_has("--rebalance takes true or false");
    runbook(&["run", "decomission"])
        .run()
        .expect_code(2)
        .stderr_has("no runbook named `decomission`")
        .stderr_has("decommission");
    runbook(&["run", "decommission", "--help"]).run().expect_code(0).stdout_has("--node").stdout_has("(required)");
}

#[test]
fn syntax_error_reports_its_position() {
    let (_d, path) = script("let c = cluster();\nlet x = ;\n");
    runbook(&["run", &path, "-c", "127.0.0.1:1"])
        .run()
        .expect_code(2)
        .stderr_has("syntax error")
        .stderr_has(&format!("--> {path}:2:9"))
        .stderr_has("2 | let x = ;");
}

#[test]
fn unknown_node_lists_the_candidates_and_changes_nothing() {
    let c = TestCluster::start(3, 0);
    let fp = c.topology().fingerprint();
    runbook(&["run", "decommission", "--node", "6397", "-c", &c.seed(), "--yes"])
        .run()
        .expect_code(2)
        .stderr_has("no node matches `6397`")
        .stderr_has("runbooks/decommission.rhai:")
        .stderr_has(&format!("{} (master,", c.nodes[0].addr()));
    assert_eq!(c.topology().fingerprint(), fp);
    // An option out of its range is refused, not clamped, before the move starts.
    for (opt, says) in [
        ("batch: 0", "batch 0 is out of range: slots open at once, 1 to 16384"),
        ("rate_limit: 0", "rate_limit 0 is out of range: keys per second, at least 1"),
        ("pipeline: 200000", "pipeline 200000 is out of range: keys per MIGRATE, 1 to 100000"),
        ("max_pause: 20000", "max_pause 20000 is out of range: milliseconds, 0 (no budget) to 10000"),
    ] {
        let (_d, path) =
            script(&format!("let c = cluster();\nc.migrate_slot(0, c.node({}), #{{{opt}}});\n", c.port(1)));
        runbook(&["run", &path, "-c", &c.seed()])
            .run()
            .expect_code(2)
            .stderr_has(says)
            .stderr_has("nothing was changed");
    }
    assert_eq!(c.topology().fingerprint(), fp);
}

#[test]
fn no_terminal_and_no_yes_refuses_before_changing_anything() {
    let c = TestCluster::start(3, 0);
    let fp = c.topology().fingerprint();
    runbook(&["run", "decommission", "--node", &c.port(2).to_string(), "-c", &c.seed()])
        .run()
        .expect_code(5)
        .stderr_has("no terminal")
        .stderr_has("--yes");
    assert_eq!(c.topology().fingerprint(), fp);
}

#[test]
fn removing_a_replica_or_the_last_master_is_refused() {
    let c = TestCluster::start(1, 1);
    let fp = c.topology().fingerprint();
    runbook(&["run", "decommission", "--node", &c.port(1).to_string(), "-c", &c.seed(), "-y"])
        .run()
        .expect_code(2)
        .stderr_has("is a replica");
    runbook(&["run", "decommission", "--node", &c.port(0).to_string(), "-c", &c.seed(), "-y"])
        .run()
        .expect_code(3)
        .stderr_has("a cluster needs at least one master");
    assert_eq!(c.topology().fingerprint(), fp);
}

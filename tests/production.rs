//! Production readiness: preflight gates, and a least-privilege ACL user end to end.

use crate::support::{TestCluster, runbook};

#[test]
fn a_receiver_without_memory_headroom_stops_the_decommission() {
    let c = TestCluster::start(3, 0);
    c.load_keys(3000);
    let used: String = redis::cmd("INFO").arg("memory").query(&mut c.conn(1)).unwrap();
    let used: u64 = used.lines().find_map(|l| l.strip_prefix("used_memory:")).unwrap().trim().parse().unwrap();
    redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(used + 100_000).exec(&mut c.conn(1)).unwrap();
    let fp = c.topology().fingerprint();
    let args = ["run", "decommission", "--node", &c.port(0).to_string(), "-c", &c.seed(), "-y"].map(String::from);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    runbook(&args)
        .run()
        .expect_code(3)
        .stderr_has("[FAIL] memory_headroom")
        .stderr_has(&format!("{} would hold", c.nodes[1].addr()))
        .stderr_has("--skip-gates memory_headroom")
        .stderr_has("[ok  ] canary");
    assert_eq!(c.topology().fingerprint(), fp, "a failing gate changes nothing");
    // Skipping it is an explicit decision, and is reported as such.
    let mut skipped = args.clone();
    skipped.extend(["--skip-gates", "memory_headroom", "--dry-run"]);
    runbook(&skipped).run().expect_code(0).stderr_has("[skip] memory_headroom");
    let mut wrong = args.clone();
    wrong.extend(["--skip-gates", "memory"]);
    runbook(&wrong).run().expect_code(2).stderr_has("no gate named `memory`");
}

#[test]
fn a_failed_node_stops_the_decommission() {
    let mut c = TestCluster::start(3, 1);
    c.kill(4);
    let fp_before = c.topology().fingerprint();
    runbook(&["run", "decommission", "--node", &c.port(0).to_string(), "-c", &c.seed(), "-y"])
        .run()
        .expect_code(3)
        .stderr_has("[FAIL] failed_nodes")
        .stderr_has(&format!("{} cannot be reached", c.nodes[4].addr()));
    assert_eq!(c.topology().fingerprint(), fp_before);
}

/// Only what runbook needs: no `@dangerous` beyond CLUSTER, no FLUSHALL, no SHUTDOWN, no KEYS.
const OPERATOR: &[&str] = &[
    "--user",
    "operator",
    "on",
    ">opsecret",
    "~*",
    "&*",
    "-@all",
    "+cluster",
    "+migrate",
    "+restore",
    "+restore-asking",
    "+asking",
    "+select",
    "+info",
    "+dbsize",
    "+ping",
    "+memory|usage",
    "+config|get",
    "+client|setname",
    "+client|list",
    "+client|kill",
    "+set",
    "+del",
    "+exists",
    // The default user may not RESTORE: a MIGRATE that failed to send AUTH2 would be refused.
    "--user",
    "default",
    "on",
    "nopass",
    "~*",
    "&*",
    "+@all",
    "-restore",
    "-restore-asking",
];

#[test]
fn a_least_privilege_acl_user_decommissions_with_auth2() {
    let c = TestCluster::start_with(3, 1, OPERATOR);
    c.load_keys(5000);
    let out = runbook(&[
        "run",
        "decommission",
        "--node",
        &c.port(0).to_string(),
        "-c",
        &c.nodes[1].addr(),
        "-y",
        "--user",
        "operator",
    ])
    .env("REDISCLI_AUTH", "opsecret")
    .run();
    out.expect_code(0).stderr_has("[ok  ] canary").stdout_has("decommissioned");
    assert!(!out.stderr.contains("opsecret") && !out.stdout.contains("opsecret"), "the password never shows");
    c.assert_sample_keys(5000);
    runbook(&["check", "-c", &c.nodes[1].addr(), "--user", "operator"])
        .env("REDISCLI_AUTH", "opsecret")
        .run()
        .expect_code(0);
    // The same user with a wrong password is refused before anything happens.
    runbook(&["check", "-c", &c.nodes[1].addr(), "--user", "operator"])
        .env("REDISCLI_AUTH", "nope")
        .run()
        .expect_code(4)
        .stderr_has("authentication failed");
}

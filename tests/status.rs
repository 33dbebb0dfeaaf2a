//! `runbook status`, and `runbook check` while a run holds the lease.

use crate::support::{TestCluster, runbook};

#[test]
fn no_run_and_nothing_open_is_exit_0_and_open_slots_without_a_run_are_3() {
    let c = TestCluster::start(3, 0);
    let out = runbook(&["status", "-c", &c.seed()]).run();
    out.expect_code(0).stdout_has("no run holds this cluster's lease").stdout_has("no open slots");
    let (src, dst) = (c.node_id(0), c.node_id(1));
    redis::cmd("CLUSTER").arg("SETSLOT").arg(42).arg("IMPORTING").arg(&src).exec(&mut c.conn(1)).unwrap();
    redis::cmd("CLUSTER").arg("SETSLOT").arg(42).arg("MIGRATING").arg(&dst).exec(&mut c.conn(0)).unwrap();
    let out = runbook(&["status", "-c", &c.seed()]).run();
    out.expect_code(3)
        .stdout_has("no run holds this cluster's lease")
        .stdout_has(&format!("  migrating 42 {} → {}", c.nodes[0].addr(), c.nodes[1].addr()))
        .stdout_has("runbook fix");
    let json = runbook(&["status", "--json", "-c", &c.seed()]).run();
    json.expect_code(3);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert!(v["run"].is_null());
    assert_eq!(v["open"][0]["slots"], "42");
}

#[test]
fn check_and_status_name_the_run_that_holds_the_lease() {
    let c = TestCluster::start(3, 0);
    c.load_keys(60_000);
    let state = tempfile::tempdir().unwrap();
    let (mut child, stderr, _dir) = crate::safety::start_slow_drain(&c, state.path());
    let pid = format!("(pid {} on ", child.id());
    let in_state = |args: &[&str]| runbook(args).env("RUNBOOK_STATE_DIR", state.path()).run();
    // Between two batches no slot is open: look again until one is (the drain has hundreds).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let check = loop {
        let check = in_state(&["check", "-c", &c.seed()]);
        check.expect_code(1).stdout_has("[RUN] ").stdout_has(&pid).stdout_has("test.rhai`");
        assert!(!check.stdout.contains("[ERR]"), "{}", check.stdout);
        if check.stdout.contains("are open by run") || std::time::Instant::now() > deadline {
            break check;
        }
    };
    // "moving A → B", or per range ("moving 10922 A → B, 10923-10924 A → B") when the check
    // lands while a batch's slots are opened one side after the other.
    check.stdout_has("[RUN] slots ").stdout_has("moving ").stdout_has(&format!("{} → ", c.nodes[2].addr()));
    let check_json = in_state(&["check", "--json", "-c", &c.seed()]);
    let status = in_state(&["status", "-c", &c.seed()]);
    let json = in_state(&["status", "--json", "-c", &c.seed()]);
    let done = child.wait().unwrap();
    assert!(done.success(), "{}", stderr.join().unwrap());
    status
        .expect_code(1)
        .stdout_has("holds this cluster's lease, for ")
        .stdout_has(&pid)
        .stdout_has("  progress: ")
        .stdout_has(" slots moved (")
        .stdout_has("  step: apply(drain plan: ")
        .stdout_has("  journal: ");
    check_json.expect_code(1);
    let v: serde_json::Value = serde_json::from_str(&check_json.stdout).unwrap();
    assert_eq!((v["healthy"].as_bool(), v["run"]["pid"].as_u64()), (Some(false), Some(u64::from(child.id()))));
    assert_eq!(v["problems"].as_array().map(Vec::len), Some(0), "{v:#}");
    json.expect_code(1);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["run"]["pid"], child.id());
    assert!(v["progress"]["planned"].as_u64().unwrap() > 0, "{v}");
    // The run is over: no lease, nothing open.
    in_state(&["status", "-c", &c.seed()])
        .expect_code(0)
        .stdout_has("no run holds this cluster's lease")
        .stdout_has("no open slots");
}

/// A monitoring user that may read the cluster but not list its clients.
const WATCHER: &[&str] = &[
    "--user",
    "watcher",
    "on",
    ">watch",
    "~*",
    "&*",
    "-@all",
    "+cluster|nodes",
    "+cluster|info",
    "+cluster|myid",
    "+info",
    "+dbsize",
    "+ping",
    "+config|get",
];

#[test]
fn a_user_that_may_not_list_clients_gets_its_check_and_status_says_it_cannot_tell() {
    let c = TestCluster::start_with(3, 0, WATCHER);
    let as_watcher = |args: &[&str]| runbook(args).env("REDISCLI_AUTH", "watch").run();
    as_watcher(&["check", "-c", &c.seed(), "--user", "watcher"]).expect_code(0).stdout_has("[OK]");
    let status = as_watcher(&["status", "-c", &c.seed(), "--user", "watcher"]);
    assert_ne!(status.code, 0, "no answer is not `no run`: {status:?}");
    status.stderr_has("CLIENT LIST");
}

//! `runbook sandbox up|status|down`, as a new user would run it.

use crate::support::{cluster::free_ports, runbook};

#[test]
fn up_status_down() {
    let state = tempfile::tempdir().unwrap();
    // Four consecutive free ports, each with a free bus port.
    let base = free_ports(3);
    let sb = |args: &[&str]| runbook(args).env("RUNBOOK_STATE_DIR", state.path()).run();
    let up =
        sb(&["sandbox", "up", "--masters", "3", "--replicas", "0", "--base-port", &base.to_string(), "--keys", "500"]);
    up.expect_code(0).stdout_has(&format!("127.0.0.1:{base}"));
    let again = sb(&["sandbox", "up", "--masters", "3", "--replicas", "0", "--base-port", &base.to_string()]);
    again.expect_code(3).stderr_has("already running").stderr_has("sandbox down");

    let check = runbook(&["check", "--json", "-c", &base.to_string()]).run();
    check.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&check.stdout).unwrap();
    let keys: u64 = v["masters"].as_array().unwrap().iter().map(|m| m["keys"].as_u64().unwrap()).sum();
    assert_eq!(keys, 500);

    sb(&["sandbox", "status"])
        .expect_code(0)
        .stdout_has(&format!("127.0.0.1:{base}"))
        .stdout_has("cluster_state:ok")
        .stdout_has("3 nodes: 3 in the cluster, 0 removed, 0 stopped");
    // A decommissioned node keeps running, reset: status tells it from the members.
    let victim = (base + 2).to_string();
    runbook(&["run", "decommission", "--node", &victim, "-c", &base.to_string(), "--yes"])
        .env("RUNBOOK_STATE_DIR", state.path())
        .run()
        .expect_code(0);
    let status = sb(&["sandbox", "status"]);
    status.expect_code(0).stdout_has("3 nodes: 2 in the cluster, 1 removed, 0 stopped");
    let line = status.stdout.lines().find(|l| l.starts_with(&format!("127.0.0.1:{victim} "))).unwrap();
    assert!(line.contains("removed from the cluster"), "{line}");
    let masters: Vec<&str> = status.stdout.lines().filter(|l| l.contains(" master ")).collect();
    assert_eq!(masters.len(), 2, "{}", status.stdout);
    for l in masters {
        assert!(l.contains("8192 slots") && l.contains("cluster_state:ok"), "{l}");
    }
    sb(&["sandbox", "down"]).expect_code(0).stdout_has("sandbox stopped (3 nodes)");
    // Exactly what `up` started is gone: the ports answer no more.
    for p in base..base + 3 {
        assert!(std::net::TcpStream::connect(("127.0.0.1", p)).is_err(), "port {p} still open");
    }
    sb(&["sandbox", "status"]).expect_code(0).stdout_has("no sandbox");
}

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

#[test]
fn json_events_on_stdout_human_output_on_stderr() {
    let c = TestCluster::start(4, 1);
    c.load_keys(4000);
    let out =
        runbook(&["run", "decommission", "--node", &c.port(3).to_string(), "-c", &c.seed(), "-y", "--json"]).run();
    out.expect_code(0).stderr_has("drain plan: 4096 slots").stderr_has("decommissioned");
    let events: Vec<serde_json::Value> =
        out.stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    let of = |kind: &str| events.iter().filter(|e| e["event"] == kind).collect::<Vec<_>>();
    assert_eq!(of("gate").len(), 10, "every gate is reported");
    assert!(of("gate").iter().all(|g| g["outcome"] == "pass"), "{:?}", of("gate"));
    let moved: u64 = of("moved").iter().map(|m| m["keys"].as_u64().unwrap()).sum();
    let slots: u64 = of("moved").iter().map(|m| m["slots"].as_u64().unwrap()).sum();
    assert_eq!(slots, 4096);
    assert!(moved > 0);
    let forgotten: Vec<&str> = of("forgotten").iter().map(|f| f["addr"].as_str().unwrap()).collect();
    assert!(
        forgotten.contains(&c.nodes[3].addr().as_str()) && forgotten.contains(&c.nodes[7].addr().as_str()),
        "{forgotten:?}"
    );
    assert_eq!(of("removed").len(), 2);
    assert!(of("step").iter().any(|s| s["step"] == "apply" && s["phase"] == "finished" && s["ok"] == true));
    assert_eq!(events.last().unwrap()["event"], "done");
    assert_eq!(events.last().unwrap()["code"], 0);

    let bad = runbook(&["run", "decommission", "--node", "6397", "-c", &c.seed(), "-y", "--json"]).run();
    bad.expect_code(2).stderr_has("no node matches");
    let last: Vec<serde_json::Value> = bad.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let error = last.iter().find(|e| e["event"] == "error").expect("an error event");
    assert_eq!(error["code"], 2);
    assert!(error["message"].as_str().unwrap().contains("no node matches `6397`"));
    assert_eq!(last.last().unwrap()["code"], 2);
}

#[test]
fn nodes_that_announce_hostnames() {
    let c = TestCluster::start_with(4, 1, &["--cluster-announce-hostname", "localhost"]);
    c.load_keys(2000);
    assert!(c.cluster_nodes(0).contains(",localhost"), "the nodes announce a hostname");
    runbook(&["run", "decommission", "--node", &format!("localhost:{}", c.port(3)), "-c", &c.seed(), "-y"])
        .run()
        .expect_code(0)
        .stdout_has("decommissioned");
    c.assert_sample_keys(2000);
    runbook(&["check", "-c", &c.seed()]).run().expect_code(0);
}

/// A user the ACL denies one command the run needs is refused at the preflight, before the
/// confirmation (no `--yes`, no terminal: reaching `confirm` would exit 5), with exit 4 naming
/// the command and the grant; a gate that cannot read what it judges fails instead of passing.
#[test]
fn a_missing_permission_is_named_before_the_confirmation() {
    let c = TestCluster::start_with(3, 1, OPERATOR);
    c.load_keys(3000);
    // The operator's own rules (after its name, `on` and password), each user one fewer.
    let operator: Vec<&str> = OPERATOR[4..].iter().take_while(|a| **a != "--user").copied().collect();
    let users = [
        (
            "nosetslot",
            "-cluster|setslot",
            vec!["[FAIL] permissions", "CLUSTER SETSLOT on every node", "+cluster|setslot"],
        ),
        // The lease is taken first, by CLIENT SETNAME, so this one is refused before any gate.
        ("nosetname", "-client|setname", vec!["may not run CLIENT SETNAME on", "+client|setname"]),
        (
            "noinfo",
            "-info",
            vec!["[FAIL] permissions", "INFO on every node", "[FAIL] memory_headroom", "cannot judge without memory"],
        ),
        ("nomemory", "-memory|usage", vec!["MEMORY USAGE on every node", "[FAIL] big_keys", "cannot size the keys"]),
    ];
    for k in c.members() {
        for (user, minus, _) in &users {
            let mut cmd = redis::cmd("ACL");
            cmd.arg("SETUSER").arg(*user).arg("reset").arg("on").arg(">pw");
            for rule in &operator {
                cmd.arg(*rule);
            }
            cmd.arg(*minus).exec(&mut c.conn(k)).unwrap();
        }
    }
    let fp = c.topology().fingerprint();
    for (user, _, says) in &users {
        let out = runbook(&["run", "decommission", "--node", &c.port(0).to_string(), "-c", &c.seed(), "--user", user])
            .env("REDISCLI_AUTH", "pw")
            .run();
        out.expect_code(4).stderr_has("the refused command was not run").stderr_has("ACL SETUSER <user>");
        for s in says {
            out.stderr_has(s);
        }
        assert_eq!(c.topology().fingerprint(), fp, "{user}: the cluster is untouched");
    }
    c.assert_sample_keys(3000);
}

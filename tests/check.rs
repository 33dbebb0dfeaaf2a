//! `runbook check` against real clusters: healthy, an open slot, a stopped node, bad input.

use crate::support::{TestCluster, runbook};

#[test]
fn healthy_cluster_passes() {
    let c = TestCluster::start(3, 1);
    c.load_keys(3000);
    let out = runbook(&["check", "--cluster", &c.seed()]).run();
    out.expect_code(0).stdout_has("16384/16384 slots covered").stdout_has("[OK]").stdout_has("slot map: 64 cells");
    assert!(!out.stdout.contains('\x1b'), "no colour when stdout is no terminal:\n{}", out.stdout);
    for i in 0..3 {
        out.stdout_has(&c.nodes[i].addr());
    }
    let json = runbook(&["check", "--json", "-c", &c.seed()]).run();
    json.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["healthy"], true);
    assert_eq!(v["masters"].as_array().unwrap().len(), 3);
    let keys: u64 = v["masters"].as_array().unwrap().iter().map(|m| m["keys"].as_u64().unwrap()).sum();
    assert_eq!(keys, 3000);
}

#[test]
fn open_slot_is_named_and_fails() {
    let c = TestCluster::start(3, 0);
    let (src, dst) = (c.node_id(0), c.node_id(1));
    redis::cmd("CLUSTER").arg("SETSLOT").arg(42).arg("IMPORTING").arg(&src).exec(&mut c.conn(1)).unwrap();
    redis::cmd("CLUSTER").arg("SETSLOT").arg(42).arg("MIGRATING").arg(&dst).exec(&mut c.conn(0)).unwrap();
    let out = runbook(&["check", "-c", &c.seed()]).run();
    out.expect_code(3)
        .stdout_has(&format!("slot 42 is open: migrating on {} to {}", c.nodes[0].addr(), c.nodes[1].addr()))
        .stdout_has(&format!("slot 42 is open: importing on {} from {}", c.nodes[1].addr(), c.nodes[0].addr()));
}

#[test]
fn stopped_node_is_reported() {
    let mut c = TestCluster::start(3, 1);
    let gone = c.nodes[4].addr();
    c.kill(4);
    let out = runbook(&["check", "-c", &c.seed()]).run();
    out.expect_code(3).stdout_has(&format!("{gone} cannot be reached"));
    // The stopped node as the seed: a clear connection error, exit 4.
    runbook(&["check", "-c", &gone])
        .run()
        .expect_code(4)
        .stderr_has(&format!("cannot connect to {gone}"))
        .stderr_has("hint:");
}

#[test]
fn bad_input_is_explained() {
    runbook(&["check"]).run().expect_code(2).stderr_has("no cluster given").stderr_has("RUNBOOK_CLUSTER");
    runbook(&["check", "-c", "nowhere"]).run().expect_code(2).stderr_has("`nowhere` is not a node address");
    let plain = crate::support::cluster::free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new("redis-server")
        .args(["--port", &plain.to_string(), "--bind", "127.0.0.1", "--save", "", "--dir"])
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let out = loop {
        let out = runbook(&["check", "-c", &plain.to_string()]).run();
        if out.code != 4 || out.stderr.contains("not a cluster node") || std::time::Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    out.expect_code(4).stderr_has("is not a cluster node").stderr_has("cluster-enabled yes");
}

#[test]
fn a_node_still_in_handshake_is_not_healthy() {
    let mut c = TestCluster::start(3, 0);
    let i = c.add_server();
    // Make the handshake last: the new node is frozen before the MEET, so it never answers it
    // (killed right after the MEET, it could still finish the handshake on a loaded machine).
    c.freeze(i);
    redis::cmd("CLUSTER").arg("MEET").arg("127.0.0.1").arg(c.port(i)).exec(&mut c.conn(0)).unwrap();
    let addr = c.nodes[i].addr();
    let out = runbook(&["check", "-c", &c.seed()]).run();
    c.kill(i);
    out.expect_code(3).stdout_has(&format!("is still in handshake with {addr}"));
}

#[test]
fn the_slot_map_is_coloured_on_a_terminal_unless_no_color_is_set() {
    let c = TestCluster::start(3, 0);
    let cmd = format!("{} check -c {}", env!("CARGO_BIN_EXE_runbook"), c.seed());
    let on_a_terminal = |no_color: Option<&str>| {
        let mut script = std::process::Command::new("script");
        script
            .args(["-qec", &cmd, "/dev/null"])
            .env_remove("NO_COLOR")
            .env("RUNBOOK_STATE_DIR", crate::support::command::state_dir())
            .stdin(std::process::Stdio::null());
        if let Some(v) = no_color {
            script.env("NO_COLOR", v);
        }
        String::from_utf8_lossy(&script.output().unwrap().stdout).into_owned()
    };
    let coloured = on_a_terminal(None);
    assert!(coloured.contains("\x1b[32m█"), "{coloured}");
    let plain = on_a_terminal(Some("1"));
    assert!(plain.contains("slot map: 64 cells") && plain.contains('█'), "{plain}");
    assert!(!plain.contains('\x1b'), "{plain}");
}

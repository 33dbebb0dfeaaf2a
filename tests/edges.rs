//! The edges of the script API on a real cluster: the raw command in both its forms and its
//! guard, `sleep` on any number, Ctrl-C before and after connecting, rhai's limits, `import`.

use crate::support::{TestCluster, runbook, script};

fn config_get(c: &TestCluster, i: usize, name: &str) -> String {
    let v: Vec<String> = redis::cmd("CONFIG").arg("GET").arg(name).query(&mut c.conn(i)).unwrap();
    v[1].clone()
}

#[test]
fn raw_command_in_both_forms_and_destructive_ones_guarded() {
    let c = TestCluster::start(3, 0);
    let seed = c.seed();
    let port = c.port(1);
    let (_d1, reads) = script(&format!(
        "let c = cluster();\nlet n = c.node({port});\n\
         let info = c.command(n, \"CLUSTER INFO\");\n\
         print(`state ok: ${{info.contains(\"cluster_state:ok\")}}`);\n\
         let mm = c.command({port}, [\"CONFIG\", \"GET\", \"maxmemory-samples\"]);\n\
         print(`samples: ${{mm[1]}}`);\n"
    ));
    for dry in [false, true] {
        let mut args = vec!["run", reads.as_str(), "-c", seed.as_str()];
        if dry {
            args.push("--dry-run");
        }
        runbook(&args).run().expect_code(0).stdout_has("state ok: true").stdout_has("samples: 5");
    }
    runbook(&["lint", &reads]).run().expect_code(0);

    // A write is sent by a real run, only recorded by a dry run.
    let (_d2, write) = script(&format!("let c = cluster();\nc.command({port}, \"CONFIG REWRITE\");\n"));
    runbook(&["run", &write, "-c", &seed, "--dry-run"]).run().expect_code(0).stdout_has("CONFIG REWRITE");

    // A destructive one needs a confirmation: refused with nothing sent, then sent once confirmed.
    let (_d3, unconfirmed) = script(&format!(
        "let c = cluster();\nc.command({port}, [\"CONFIG\", \"SET\", \"maxmemory-samples\", \"7\"]);\n"
    ));
    runbook(&["run", &unconfirmed, "-c", &seed])
        .run()
        .expect_code(3)
        .stderr_has("CONFIG SET is destructive")
        .stderr_has("confirm(");
    assert_eq!(config_get(&c, 1, "maxmemory-samples"), "5");
    let (_d4, confirmed) = script(&format!(
        "let c = cluster();\nconfirm(\"Go on?\");\n\
         c.command({port}, [\"CONFIG\", \"SET\", \"maxmemory-samples\", \"7\"]);\n"
    ));
    runbook(&["run", &confirmed, "-c", &seed, "--dry-run"]).run().expect_code(0).stdout_has("CONFIG SET");
    assert_eq!(config_get(&c, 1, "maxmemory-samples"), "5", "a dry run sends no write");
    let state = tempfile::tempdir().unwrap();
    runbook(&["run", &confirmed, "-c", &seed, "--yes"]).env("RUNBOOK_STATE_DIR", state.path()).run().expect_code(0);
    assert_eq!(config_get(&c, 1, "maxmemory-samples"), "7");
    // Journaled under its name, without its arguments.
    let journal = runbook(&["journal"]).env("RUNBOOK_STATE_DIR", state.path()).run();
    let name = journal.stdout.split_whitespace().find(|w| w.starts_with("test-")).map(str::to_string);
    let shown = runbook(&["journal", &name.unwrap_or_default()]).env("RUNBOOK_STATE_DIR", state.path()).run();
    shown.expect_code(0).stdout_has("command(").stdout_has("CONFIG SET");
    assert!(!shown.stdout.contains("maxmemory-samples"), "{}", shown.stdout);
}

/// Starts `runbook run path args…`, waits for its first line on stdout, sends SIGINT, and
/// returns (exit code, stderr). A runbook that ignored Ctrl-C fails the test after 20 s.
fn interrupted(path: &str, args: &[&str]) -> (Option<i32>, String) {
    use std::io::{BufRead, BufReader, Read};
    let state = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(["run", path])
        .args(args)
        .env("RUNBOOK_STATE_DIR", state.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert_eq!(first.trim(), "started");
    std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("{path} ignored Ctrl-C for 20 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    (status.code(), stderr)
}

#[test]
fn ctrl_c_stops_a_runbook_at_any_point() {
    let c = TestCluster::start(3, 0);
    let seed = c.seed();
    for (what, src) in [
        ("a loop before connecting", "print(\"started\");\nloop {}\n"),
        ("a sleep before connecting", "print(\"started\");\nsleep(3600);\n"),
        ("a loop after connecting", "let c = cluster();\nprint(\"started\");\nloop { c.masters(); }\n"),
        ("a sleep after connecting", "let c = cluster();\nprint(\"started\");\nsleep(3600);\n"),
    ] {
        let (_d, path) = script(src);
        let (code, stderr) = interrupted(&path, &["-c", &seed]);
        assert_eq!(code, Some(130), "{what}: exit {code:?}\n{stderr}");
        assert!(stderr.contains("error: cancelled"), "{what}\n{stderr}");
        // `catch` cannot swallow it either.
        let (_d, path) = script(&format!("try {{\n{src}}} catch (e) {{ print(`caught ${{e}}`); loop {{}} }}\n"));
        let (code, stderr) = interrupted(&path, &["-c", &seed]);
        assert_eq!(code, Some(130), "{what} inside try: exit {code:?}\n{stderr}");
    }
}

/// Peak resident memory of a finished child, sampled while it runs.
fn run_sampling_memory(path: &str) -> (i32, String, u64) {
    use std::io::Read;
    let state = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(["run", path])
        .env("RUNBOOK_STATE_DIR", state.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0;
    let status = loop {
        if let Ok(s) = std::fs::read_to_string(&status_file)
            && let Some(kb) = s.lines().find_map(|l| l.strip_prefix("VmHWM:"))
        {
            peak_kb = peak_kb.max(kb.trim().trim_end_matches("kB").trim().parse().unwrap_or(0));
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    (status.code().unwrap_or(-1), stderr, peak_kb << 10)
}

#[test]
fn a_map_grown_in_a_loop_stops_at_the_limit_not_the_machines_memory() {
    let (_d, path) = script(
        "let m = #{};\nlet i = 0;\nloop {\n    m[`key-number-${i}-with-a-long-enough-name`] = `value ${i}`;\n    i += 1;\n}\n",
    );
    let (code, stderr, peak) = run_sampling_memory(&path);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("maps are limited to 65536 entries"), "{stderr}");
    assert!(stderr.contains(":4:5"), "points at the line: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(peak < 128 << 20, "peak resident memory {} MiB", peak >> 20);
}

#[test]
fn scale_out_takes_a_port_and_a_list_of_ports() {
    let mut c = TestCluster::start(3, 0);
    c.load_keys(2000);
    let (one, two, rep) = (c.add_server(), c.add_server(), c.add_server());
    // One port alone arrives as a number; it used to fail with `Function not found: split (i64, …)`.
    runbook(&["run", "scale-out", "--nodes", &c.port(one).to_string(), "--rebalance", "false", "-c", &c.seed(), "-y"])
        .run()
        .expect_code(0)
        .stdout_has("scaled out");
    let list = format!("{}, {}", c.port(two), c.port(rep));
    let replica_of = format!("{}={}", c.port(rep), c.port(two));
    runbook(&["run", "scale-out", "--nodes", &list, "--replica-of", &replica_of, "-c", &c.seed(), "-y"])
        .run()
        .expect_code(0)
        .stdout_has("scaled out");
    let topo = c.topology();
    for i in [one, two] {
        let node = topo.node(&c.node_id(i)).expect("a member");
        assert!(node.is_master() && !node.slots.is_empty(), "{} got no slots", c.port(i));
    }
    assert_eq!(topo.node(&c.node_id(rep)).unwrap().master_id.as_deref(), Some(c.node_id(two).as_str()));
    c.assert_sample_keys(2000);
    runbook(&["check", "-c", &c.seed()]).run().expect_code(0);
}

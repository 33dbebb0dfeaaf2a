//! Dry run, Ctrl-C, the lease, confirmation on a terminal, `fix` and the journal.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::support::{TestCluster, runbook, script};

/// CLUSTER NODES without the ping/pong fields, which change by themselves.
fn stable_nodes(c: &TestCluster, i: usize) -> Vec<String> {
    let mut lines: Vec<String> = c
        .cluster_nodes(i)
        .lines()
        .map(|l| {
            l.split(' ').enumerate().filter(|(k, _)| *k != 4 && *k != 5).map(|(_, f)| f).collect::<Vec<_>>().join(" ")
        })
        .collect();
    lines.sort();
    lines
}

/// Per command, the calls that the server carried out: its error replies (`failed_calls`) are
/// left out, so the preflight's permission probes (a SETSLOT of slot 16384, a FORGET of an
/// unknown node: refused after the ACL check) do not count as changes; a SETSLOT that ran does.
fn commandstats(c: &TestCluster, i: usize) -> std::collections::BTreeMap<String, u64> {
    let info: String = redis::cmd("INFO").arg("commandstats").query(&mut c.conn(i)).unwrap();
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let field = |k: &str| rest.split(',').find_map(|f| f.strip_prefix(k)).and_then(|v| v.parse::<u64>().ok());
            Some((name.to_string(), field("calls=")?.saturating_sub(field("failed_calls=").unwrap_or(0))))
        })
        .collect()
}

/// Commands a dry run may send: reads only.
const READ_ONLY: &[&str] = &[
    "cluster|nodes",
    "cluster|info",
    "cluster|countkeysinslot",
    "cluster|myid",
    "dbsize",
    "info",
    "ping",
    "command|docs",
    // The preflight gates read key sizes and cluster-node-timeout.
    "config|get",
    "memory|usage",
    "cluster|getkeysinslot",
    // The permission probes that succeed: a look at no client, and a name for runbook's own
    // connection.
    "client|list",
    "client|setname",
    // The client library names itself on connecting (counted by Valkey).
    "client|setinfo",
    // Replication between the servers themselves (a replica that reconnects on a loaded machine).
    "replconf",
    "psync",
];

#[test]
fn dry_run_shows_every_step_and_changes_nothing() {
    let c = TestCluster::start(4, 1);
    c.load_keys(5000);
    let before: Vec<_> = (0..8).map(|i| (stable_nodes(&c, i), commandstats(&c, i))).collect();
    let out = runbook(&["run", "decommission", "--node", &c.port(3).to_string(), "-c", &c.seed(), "--dry-run"]).run();
    out.expect_code(0)
        .stdout_has("dry run: the cluster was not changed")
        .stdout_has("] apply drain plan: 4096 slots")
        .stdout_has(&format!("] del_node {}", c.nodes[7].addr()))
        .stdout_has(&format!("CLUSTER FORGET {}", c.nodes[3].addr()))
        .stdout_has(&format!("CLUSTER RESET SOFT on {}", c.nodes[3].addr()))
        // The slot map before and after: the victim's quarter, then nothing (no master).
        .stdout_has_victim_drained_in_the_map(&c.nodes[3].addr())
        .stderr_has("(dry run)")
        // The canary writes a key: a dry run says it did not try it rather than claim it passed.
        .stderr_has("[skip] canary")
        .stderr_has("not tried in a dry run");
    // The same membership and slots everywhere, the same keys, and no command that writes.
    for (i, (nodes, stats)) in before.iter().enumerate() {
        assert_eq!(&stable_nodes(&c, i), nodes, "node {} changed", c.port(i));
        for (cmd, calls) in commandstats(&c, i) {
            if calls > stats.get(&cmd).copied().unwrap_or(0) {
                assert!(READ_ONLY.contains(&cmd.as_str()), "node {} ran `{cmd}` during a dry run", c.port(i));
            }
        }
    }
    assert_eq!(c.total_keys(), 5000);
}

/// Starts a long drain in a child process and returns it once it has started moving slots.
pub(crate) fn start_slow_drain(
    c: &TestCluster,
    state: &std::path::Path,
) -> (std::process::Child, std::thread::JoinHandle<String>, tempfile::TempDir) {
    let (dir, path) = script(&format!(
        "let c = cluster();\nlet plan = c.plan_drain(c.node({}));\nc.apply(plan, #{{ batch: 4 }});\nprint(\"drained\");\n",
        c.port(2)
    ));
    let mut child = Command::new(env!("CARGO_BIN_EXE_runbook"))
        .args(["run", &path, "-c", &c.seed()])
        .env("RUNBOOK_STATE_DIR", state)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("==> moving") {
            break;
        }
    }
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));
    (child, rest, dir)
}

#[test]
fn ctrl_c_stops_after_the_batch_and_the_same_command_finishes() {
    let c = TestCluster::start(3, 0);
    c.load_keys(60_000);
    let state = tempfile::tempdir().unwrap();
    let (mut child, stderr, dir) = start_slow_drain(&c, state.path());
    Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    let stderr = stderr.join().unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("stopping after the current batch"), "{stderr}");
    assert!(stderr.contains("run the same command again"), "{stderr}");
    // No slot left open: check passes although the drain is only part-way.
    runbook(&["check", "-c", &c.seed()]).run().expect_code(0);
    assert!(!c.topology().node(&c.node_id(2)).unwrap().slots.is_empty(), "stopped part-way");

    let path = dir.path().join("test.rhai").display().to_string();
    let again = runbook(&["run", &path, "-c", &c.seed()]).env("RUNBOOK_STATE_DIR", state.path()).run();
    again.expect_code(0).stdout_has("drained").stderr_has("resuming");
    let owned = c.topology().node(&c.node_id(2)).map_or(0, |n| if n.is_master() { n.slots.len() } else { 0 });
    assert_eq!(owned, 0, "the drain finished");
    c.assert_sample_keys(60_000);
}

#[test]
fn a_second_run_is_refused_while_the_first_holds_the_lease() {
    let c = TestCluster::start(3, 0);
    c.load_keys(60_000);
    let state = tempfile::tempdir().unwrap();
    let (mut child, stderr, _dir) = start_slow_drain(&c, state.path());
    let (_d, other) = script(&format!("let c = cluster();\nc.migrate_slot(0, c.node({}));\n", c.port(1)));
    let second = runbook(&["run", &other, "-c", &c.seed()]).env("RUNBOOK_STATE_DIR", state.path()).run();
    second
        .expect_code(3)
        .stderr_has("another run is changing this cluster: runbook `")
        .stderr_has(&format!("(pid {} on ", child.id()))
        .stderr_has("started 20");
    // `runbook fix` takes the lease before it judges any slot: the drain's open slots are not
    // its business.
    runbook(&["fix", "-c", &c.seed()])
        .run()
        .expect_code(3)
        .stderr_has("another run is changing this cluster: runbook `")
        .stderr_has(&format!("test.rhai` (pid {} on ", child.id()));
    // A runbook that only reads takes no lease: it runs beside the drain.
    let (_r, reader) = script("let c = cluster();\nprint(`${c.masters().len()} masters`);\n");
    runbook(&["run", &reader, "-c", &c.seed()])
        .env("RUNBOOK_STATE_DIR", state.path())
        .run()
        .expect_code(0)
        .stdout_has("3 masters");
    let status = child.wait().unwrap();
    assert!(status.success(), "{}", stderr.join().unwrap());
    // Once the holder is gone, the lease is free.
    runbook(&["run", &other, "-c", &c.seed()]).env("RUNBOOK_STATE_DIR", state.path()).run().expect_code(0);
}

#[test]
fn confirmation_on_a_terminal() {
    let c = TestCluster::start(3, 0);
    let fp = c.topology().fingerprint();
    let cmd = format!("{} run decommission --node {} -c {}", env!("CARGO_BIN_EXE_runbook"), c.port(2), c.seed());
    let answer = |text: &str| {
        let mut child = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env("RUNBOOK_STATE_DIR", tempfile::tempdir().unwrap().path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, out) = answer("n\n");
    assert_eq!(code, Some(5), "{out}");
    assert!(out.contains("[y/N]") && out.contains("not confirmed"), "{out}");
    assert_eq!(c.topology().fingerprint(), fp, "declining changed nothing");
    let (code, out) = answer("y\n");
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("decommissioned"), "{out}");
}

#[test]
fn fix_closes_open_slots_explaining_each() {
    let c = TestCluster::start(3, 0);
    c.load_keys(2000);
    let (a, b) = (c.node_id(0), c.node_id(1));
    // Slot 10: both ends set, as a reshard that died after SETSLOT; slot 20: importing only.
    redis::cmd("CLUSTER").arg("SETSLOT").arg(10).arg("IMPORTING").arg(&a).exec(&mut c.conn(1)).unwrap();
    redis::cmd("CLUSTER").arg("SETSLOT").arg(10).arg("MIGRATING").arg(&b).exec(&mut c.conn(0)).unwrap();
    redis::cmd("CLUSTER").arg("SETSLOT").arg(20).arg("IMPORTING").arg(&a).exec(&mut c.conn(1)).unwrap();
    runbook(&["check", "-c", &c.seed()]).run().expect_code(3);
    let out = runbook(&["fix", "-c", &c.seed()]).run();
    out.expect_code(0)
        .stderr_has("slot 10: MIGRATING on")
        .stderr_has(&format!("the move was finished to {}", c.nodes[1].addr()))
        .stderr_has("slot 20: IMPORTING on");
    runbook(&["check", "-c", &c.seed()]).run().expect_code(0);
    assert_eq!(c.topology().owner(10).unwrap().id, b);
    assert_eq!(c.topology().owner(20).unwrap().id, a);
    c.assert_sample_keys(2000);
    runbook(&["fix", "-c", &c.seed()]).run().expect_code(0).stderr_has("nothing to fix");
}

#[test]
fn passwords_never_reach_the_journal_or_the_terminal() {
    let c = TestCluster::start(3, 0);
    let state = tempfile::tempdir().unwrap();
    let out = runbook(&["run", "decommission", "--node", "1", "-c", &c.seed(), "--password", "s3cret-Pw"])
        .env("RUNBOOK_STATE_DIR", state.path())
        .run();
    out.expect_code(4).stderr_has("authentication failed");
    assert!(!out.stderr.contains("s3cret-Pw") && !out.stdout.contains("s3cret-Pw"));
    for entry in std::fs::read_dir(state.path().join("journal")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains("s3cret-Pw"), "{text}");
    }
}

/// Starts `runbook run ARGS` in a child process at once, with the tests' clean environment.
fn spawn_run(args: &[&str], state: &std::path::Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_runbook"))
        .arg("run")
        .args(args)
        .env_remove("RUNBOOK_CLUSTER")
        .env_remove("REDISCLI_AUTH")
        .env_remove("RUNBOOK_USER")
        .env("RUNBOOK_STATE_DIR", state)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// (pid, exit code, stdout, stderr) of each child, in order.
fn finish(children: Vec<std::process::Child>) -> Vec<(u32, i32, String, String)> {
    let waits: Vec<_> = children
        .into_iter()
        .map(|child| {
            let pid = child.id();
            std::thread::spawn(move || {
                let out = child.wait_with_output().unwrap();
                let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                (pid, out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
            })
        })
        .collect();
    waits.into_iter().map(|w| w.join().unwrap()).collect()
}

fn journal_files(state: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<serde_json::Value>)> {
    let mut files: Vec<_> = std::fs::read_dir(state.join("journal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let records =
                std::fs::read_to_string(&p).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            (p, records)
        })
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

#[test]
fn two_identical_commands_at_once_one_runs_the_other_is_refused_naming_it() {
    let c = TestCluster::start(3, 0);
    c.load_keys(20_000);
    let state = tempfile::tempdir().unwrap();
    let (port, seed) = (c.port(2).to_string(), c.seed());
    // Started together, as an operator double-clicking a job or two cron hosts would; the
    // rate limit keeps the winner busy for a few seconds.
    let args = ["decommission", "--node", &port, "-c", &seed, "-y", "--rate-limit", "3000"];
    let runs = finish(vec![spawn_run(&args, state.path()), spawn_run(&args, state.path())]);
    let winner = runs.iter().find(|r| r.1 == 0).unwrap_or_else(|| panic!("nobody finished: {runs:#?}"));
    let loser = runs.iter().find(|r| r.0 != winner.0).unwrap();
    assert_eq!(loser.1, 3, "{runs:#?}");
    assert!(
        loser.3.contains(&format!(
            "another run of this command is under way: runbook `decommission` (pid {} on ",
            winner.0
        )),
        "{runs:#?}"
    );
    // The loser neither resumed nor finished anything of the winner's.
    assert!(!loser.3.contains("resuming") && !loser.3.contains("finishing"), "{runs:#?}");
    assert!(winner.2.contains(&format!("decommissioned {}", c.nodes[2].addr())), "{runs:#?}");
    // One journal, holding the winner's run only.
    let files = journal_files(state.path());
    assert_eq!(files.len(), 1, "{files:#?}");
    let records = &files[0].1;
    let starts: Vec<&serde_json::Value> = records.iter().filter(|r| r["t"] == "run").collect();
    assert_eq!(starts.len(), 1, "{records:#?}");
    assert_eq!(starts[0]["pid"], serde_json::json!(winner.0));
    assert_eq!(records.last().unwrap()["status"], "finished");
    runbook(&["check", "-c", &c.seed()]).run().expect_code(0);
    c.assert_sample_keys(20_000);
}

#[test]
fn two_different_runbooks_at_once_the_loser_is_refused_by_the_lease() {
    let c = TestCluster::start(3, 0);
    c.load_keys(20_000);
    let state = tempfile::tempdir().unwrap();
    let (port, seed, weights) = (c.port(2).to_string(), c.seed(), format!("{}=2", c.port(0)));
    let decommission = ["decommission", "--node", &port, "-c", &seed, "-y", "--rate-limit", "3000"];
    let rebalance = ["rebalance", "--weights", &weights, "-c", &seed, "-y", "--rate-limit", "3000"];
    let runs = finish(vec![spawn_run(&decommission, state.path()), spawn_run(&rebalance, state.path())]);
    let names = ["decommission", "rebalance"];
    let won = runs.iter().position(|r| r.1 == 0).unwrap_or_else(|| panic!("nobody finished: {runs:#?}"));
    let (winner, loser) = (&runs[won], &runs[1 - won]);
    // Refused by the lease, naming the holder: never by an open slot or a gate that the
    // winner's work tripped.
    assert_eq!(loser.1, 3, "{runs:#?}");
    assert!(
        loser
            .3
            .contains(&format!("another run is changing this cluster: runbook `{}` (pid {} on ", names[won], winner.0)),
        "{runs:#?}"
    );
    assert!(!loser.3.contains("preflight") && !loser.3.contains("is open"), "{runs:#?}");
    // Refused before it began, the loser left no journal: only the winner's is there.
    let files = journal_files(state.path());
    assert_eq!(files.len(), 1, "{files:#?}");
    assert!(files[0].0.file_name().unwrap().to_string_lossy().starts_with(names[won]), "{files:#?}");
    assert!(!files[0].1.is_empty(), "{files:#?}");
    runbook(&["check", "-c", &c.seed()]).run().expect_code(0);
    c.assert_sample_keys(20_000);
}

//! A run that dies anywhere is finished by running the same command again: crashes at several
//! points of a decommission (via `RUNBOOK_FAILPOINT`, which aborts like SIGKILL), then a re-run.

use crate::support::{TestCluster, runbook, script};

/// With `damage`, a line of garbage is appended to the journal before the re-run, which must
/// say so (naming the line) and still finish from the records around it.
fn crash_then_resume(failpoint: &str, damage: bool) {
    let c = TestCluster::start(4, 1);
    c.load_keys(20_000);
    let state = tempfile::tempdir().unwrap();
    let (victim, replica) = (c.node_id(3), c.node_id(7));
    let args = ["run", "decommission", "--node", &c.port(3).to_string(), "-c", &c.seed(), "--yes"].map(String::from);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let crashed = runbook(&args).env("RUNBOOK_STATE_DIR", state.path()).env("RUNBOOK_FAILPOINT", failpoint).run();
    assert_ne!(crashed.code, 0, "the failpoint {failpoint} fired");
    crashed.stderr_has(&format!("failpoint {}", failpoint.split(':').next().unwrap()));

    if damage {
        let journal = std::fs::read_dir(state.path().join("journal")).unwrap().next().unwrap().unwrap().path();
        let mut f = std::fs::OpenOptions::new().append(true).open(&journal).unwrap();
        std::io::Write::write_all(&mut f, b"\ngarbage that is no record\n").unwrap();
    }
    let resumed = runbook(&args).env("RUNBOOK_STATE_DIR", state.path()).run();
    resumed.expect_code(0).stderr_has("resuming the run started").stdout_has("decommissioned");
    if damage {
        resumed
            .stderr_has("is damaged: line")
            .stderr_has("is not a journal record: `garbage that is no record`")
            .stderr_has("this run resumes from them");
    }
    for i in [0, 1, 2, 4, 5, 6] {
        assert!(!c.knows(i, &victim) && !c.knows(i, &replica), "node {} still knows a removed node", c.port(i));
    }
    assert_eq!(c.total_keys(), 20_000);
    c.assert_sample_keys(20_000);
    // No slot stays open, every node agrees.
    runbook(&["check", "-c", &c.seed()]).run().expect_code(0);

    let journal = runbook(&["journal"]).env("RUNBOOK_STATE_DIR", state.path()).run();
    journal.expect_code(0).stdout_has("decommission").stdout_has("finished");
}

#[test]
fn killed_while_a_slot_with_keys_is_migrating() {
    crash_then_resume("after-migrate:40", false);
}

#[test]
fn killed_between_setslot_node_on_target_and_source() {
    crash_then_resume("between-node:3", false);
}

#[test]
fn killed_during_forget() {
    crash_then_resume("after-forget:1", true);
}

/// The journal belongs to one cluster: a run interrupted on one cluster is not resumed on
/// another (here: the same command and journal, a fresh cluster). Replaying would report the
/// first cluster's slot move as done without making it.
#[test]
fn an_unfinished_run_on_another_cluster_is_not_resumed() {
    let state = tempfile::tempdir().unwrap();
    let journal = state.path().join("moves.jsonl").display().to_string();
    // Moves the first slot of the first master to the second master, then fails: a failed run
    // that changed something is what a re-run resumes.
    let (_dir, path) = script(
        "let c = cluster();\nlet m = c.masters();\nlet slot = c.slots_of(m[0])[0][0];\n\
         let moved = c.migrate_slot(slot, m[1]);\nprint(`moved slot ${slot}: ${moved.slots}`);\nthrow \"stopped\";\n",
    );
    {
        let a = TestCluster::start(3, 0);
        let out = runbook(&["run", &path, "-c", &a.seed(), "--journal", &journal]).run();
        out.expect_code(1).stdout_has("moved slot 0: 1");
    }
    let b = TestCluster::start(3, 0);
    let owner_before = b.topology().owner(0).unwrap().id.clone();
    let out = runbook(&["run", &path, "-c", &b.seed(), "--journal", &journal]).run();
    out.expect_code(1)
        .stderr_has("was on another cluster at this address (none of its nodes is here); starting a new run")
        .stdout_has("moved slot 0: 1");
    let topo = b.topology();
    assert_ne!(topo.owner(0).unwrap().id, owner_before, "slot 0 was really moved on the second cluster");
}

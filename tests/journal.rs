//! Journal housekeeping: a run that changed nothing leaves no journal.

use std::path::{Path, PathBuf};

use crate::support::{TestCluster, runbook, script};

fn journals(state: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(state.join("journal")).map(|rd| rd.map(|e| e.unwrap().path()).collect()).unwrap_or_default();
    files.sort();
    files
}

#[test]
fn only_a_run_that_changed_the_cluster_leaves_a_journal() {
    let c = TestCluster::start(3, 0);
    let state = tempfile::tempdir().unwrap();
    let rb = |args: &[&str]| runbook(args).env("RUNBOOK_STATE_DIR", state.path());
    let seed = c.seed();

    let (_d1, look) = script("let c = cluster();\nprint(`healthy: ${c.check().healthy}`);\n");
    rb(&["run", &look, "-c", &seed]).run().expect_code(0).stdout_has("healthy: true");
    assert_eq!(journals(state.path()), Vec::<PathBuf>::new(), "a read-only script");

    let port = c.port(2).to_string();
    rb(&["run", "decommission", "--node", &port, "-c", &seed, "--dry-run"]).run().expect_code(0);
    assert_eq!(journals(state.path()), Vec::<PathBuf>::new(), "a dry run");

    // Failing, it points at no journal either: there is none to look at.
    let (_d2, stops) = script("let c = cluster();\nc.check();\nthrow \"stopped\";\n");
    let out = rb(&["run", &stops, "-c", &seed]).run();
    out.expect_code(2).stderr_has("stopped");
    assert!(!out.stderr.contains("journal:"), "{}", out.stderr);
    assert_eq!(journals(state.path()), Vec::<PathBuf>::new(), "a read-only script that failed");

    let (_d3, moves) = script(
        "let c = cluster();\nlet m = c.masters();\nlet slot = c.slots_of(m[0])[0][0];\nc.migrate_slot(slot, m[1]);\n",
    );
    rb(&["run", &moves, "-c", &seed]).run().expect_code(0);
    let kept = journals(state.path());
    assert_eq!(kept.len(), 1, "{kept:?}");
    rb(&["journal"]).run().expect_code(0).stdout_has("finished");
    rb(&["journal", &kept[0].display().to_string()]).run().expect_code(0).stdout_has("migrate_slot(");

    // A look after it leaves that journal alone.
    rb(&["run", &look, "-c", &seed]).run().expect_code(0);
    assert_eq!(journals(state.path()), kept);
    runbook(&["check", "-c", &seed]).run().expect_code(0);
}

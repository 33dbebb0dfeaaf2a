//! Journal housekeeping: a run that changed nothing leaves no journal, `runbook journal prune`
//! removes those of runs that are over, and a file that is no journal is said to be none.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

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

    // The same command again, once it has done its work, is refused and adds nothing to the
    // journal of the run that did it: that run stays its last, finished.
    let decommission = ["run", "decommission", "--node", &port, "-c", &seed, "--yes"];
    rb(&decommission).run().expect_code(0);
    let kept = journals(state.path());
    assert_eq!(kept.len(), 2, "{kept:?}");
    let before: Vec<Vec<u8>> = kept.iter().map(|p| std::fs::read(p).unwrap()).collect();
    rb(&decommission).run().expect_code(2).stderr_has("is no longer in the cluster");
    let after: Vec<Vec<u8>> = kept.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(before == after, "a refused run wrote to a journal");
    let listing = rb(&["journal"]).run();
    assert!(!listing.stdout.contains("failed"), "{}", listing.stdout);
    runbook(&["check", "-c", &seed]).run().expect_code(0);
}

/// JSON lines of a run of `decommission`: ended with `end`, or cut off before it.
fn run_records(end: Option<&str>, changes: bool) -> String {
    let mut lines = vec![
        r#"{"t":"run","run":"6650a-41","runbook":"decommission","params":{"node":6397},"cluster":"127.0.0.1:6391","host":"h","pid":41,"ts":1700000000.0}"#.to_string(),
        format!(r#"{{"t":"call","seq":0,"fn":"del_node","args":"6397","changes":{changes},"ts":1700000001.0}}"#),
        r#"{"t":"done","seq":0,"result":{},"ts":1700000002.0}"#.to_string(),
    ];
    if let Some(status) = end {
        lines.push(format!(r#"{{"t":"end","status":"{status}","error":null,"ts":1700000003.0}}"#));
    }
    lines.join("\n") + "\n"
}

fn write_aged(dir: &Path, name: &str, text: &str, age: Duration) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::File::options().write(true).open(&path).unwrap().set_modified(SystemTime::now() - age).unwrap();
    path
}

#[test]
fn prune_removes_old_journals_of_runs_that_are_over_and_keeps_the_rest() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("journal");
    std::fs::create_dir_all(&dir).unwrap();
    let rb = |args: &[&str]| runbook(args).env("RUNBOOK_STATE_DIR", state.path());
    let old = Duration::from_secs(40 * 86400);
    let finished = run_records(Some("finished"), true);
    let old_finished = write_aged(&dir, "decommission-00000001.jsonl", &finished, old);
    // Failed before changing anything: a re-run starts afresh, so nothing is lost.
    write_aged(&dir, "decommission-00000002.jsonl", &run_records(Some("failed"), false), old);
    let unfinished = write_aged(&dir, "decommission-00000003.jsonl", &run_records(None, true), old);
    let failed_after_change = write_aged(&dir, "decommission-00000004.jsonl", &run_records(Some("failed"), true), old);
    let recent = write_aged(&dir, "decommission-00000005.jsonl", &finished, Duration::from_secs(60));
    let empty = write_aged(&dir, "old-00000006.jsonl", "", old);
    let other = write_aged(&dir, "other.jsonl", "{\"a\":1}\n", old);
    let notes = write_aged(&dir, "notes.txt", "mine", old);
    let held = write_aged(&dir, "held-00000007.jsonl", &finished, old);
    let lock = std::fs::File::open(&held).unwrap();
    lock.lock().unwrap();

    let out = rb(&["journal", "prune", "--dry-run"]).run();
    let size = finished.len();
    let failed_size = run_records(Some("failed"), false).len();
    out.expect_code(0)
        .stdout_has(&format!("would remove decommission-00000001.jsonl ({size} bytes, last written "))
        .stdout_has(&format!("would remove decommission-00000002.jsonl ({failed_size} bytes"))
        .stdout_has("would remove old-00000006.jsonl (0 bytes")
        .stdout_has(
            "kept decommission-00000003.jsonl: its last run did not finish; running the same command again resumes it",
        )
        .stdout_has("kept decommission-00000004.jsonl: its last run did not finish")
        .stdout_has("kept held-00000007.jsonl: a run under way holds it")
        .stdout_has("kept other.jsonl: not a runbook journal")
        .stdout_has(&format!("would remove 3 journal(s) older than 30d, {} bytes", size + failed_size));
    assert!(!out.stdout.contains("00000005") && !out.stdout.contains("notes.txt"), "{}", out.stdout);
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 9, "a dry run removes nothing");

    rb(&["journal", "prune"])
        .run()
        .expect_code(0)
        .stdout_has("removed decommission-00000001.jsonl")
        .stdout_has(&format!("removed 3 journal(s) older than 30d, {} bytes", size + failed_size));
    for gone in [&old_finished, &empty] {
        assert!(!gone.exists(), "{} was pruned", gone.display());
    }
    for stays in [&unfinished, &failed_after_change, &recent, &other, &notes, &held] {
        assert!(stays.exists(), "{} stays", stays.display());
    }
    drop(lock);

    rb(&["journal", "prune", "--older-than", "1h"])
        .run()
        .expect_code(0)
        .stdout_has("removed 1 journal(s) older than 1h");
    assert!(recent.exists() && !held.exists());
    rb(&["journal", "prune", "--older-than", "0s"])
        .run()
        .expect_code(0)
        .stdout_has("removed decommission-00000005.jsonl");
    assert!(!recent.exists() && unfinished.exists() && failed_after_change.exists());

    rb(&["journal", "prune", "--older-than", "30"])
        .run()
        .expect_code(2)
        .stderr_has("--older-than takes a number and s, m, h or d (`90m`, `30d`), not `30`");
}

#[test]
fn a_file_that_is_no_journal_is_bad_input() {
    let state = tempfile::tempdir().unwrap();
    let rb = |args: &[&str]| runbook(args).env("RUNBOOK_STATE_DIR", state.path());
    let dir = state.path().join("journal");
    std::fs::create_dir_all(&dir).unwrap();
    let expected = "a journal is JSON lines, the first a run record";
    rb(&["journal", "/etc/passwd"])
        .run()
        .expect_code(2)
        .stderr_has("error: /etc/passwd is not a runbook journal: line 1 is not a journal record")
        .stderr_has(expected);
    let other = write_aged(&dir, "other.jsonl", "{\"a\":1}\n{\"b\":2}\n", Duration::ZERO);
    rb(&["journal", &other.display().to_string()])
        .run()
        .expect_code(2)
        .stderr_has(&format!("{} is not a runbook journal: its first record is not a run's start", other.display()))
        .stderr_has(expected);
    let empty = write_aged(&dir, "empty.jsonl", "", Duration::ZERO);
    rb(&["journal", "empty"])
        .run()
        .expect_code(2)
        .stderr_has(&format!("{} is not a runbook journal: it is empty", empty.display()));
    rb(&["journal", "/nonexistent/run.jsonl"])
        .run()
        .expect_code(2)
        .stderr_has("no journal `/nonexistent/run.jsonl`: no such file, nor a journal of that name in");

    // A journal beside them is shown, and listed; the others are named as no journals.
    write_aged(&dir, "decommission-00000001.jsonl", &run_records(Some("finished"), true), Duration::ZERO);
    rb(&["journal", "decommission-00000001"])
        .run()
        .expect_code(0)
        .stdout_has("run 6650a-41 of `decommission` {\"node\":6397} on 127.0.0.1:6391: finished")
        .stdout_has("#0 del_node(6397)");
    let list = rb(&["journal"]).run();
    list.expect_code(0).stdout_has("decommission-00000001").stderr_has("other.jsonl is not a runbook journal");
    assert!(!list.stdout.contains("other"), "{}", list.stdout);
}

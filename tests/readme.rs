//! What the README tells a new user to run: the quick start, and its runbook examples.

use crate::support::{TestCluster, cluster::free_ports, runbook};

/// The README's first command, with a debug binary, free ports and fewer keys.
#[test]
fn quickstart_script_decommissions_on_a_sandbox() {
    let state = tempfile::tempdir().unwrap();
    let base = free_ports(8);
    let _permit = crate::support::cluster::Permit::acquire();
    let out = std::process::Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/quickstart.sh"))
        .env("RUNBOOK", env!("CARGO_BIN_EXE_runbook"))
        .env("RUNBOOK_BASE_PORT", base.to_string())
        .env("RUNBOOK_KEYS", "5000")
        .env("RUNBOOK_STATE_DIR", state.path())
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let down = runbook(&["sandbox", "down"]).env("RUNBOOK_STATE_DIR", state.path()).run();
    assert!(out.status.success(), "quickstart failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}");
    assert!(stdout.contains(&format!("decommissioned 127.0.0.1:{}", base + 6)), "{stdout}");
    assert!(stdout.contains("[OK]"), "{stdout}");
    down.expect_code(0).stdout_has("sandbox stopped (8 nodes)");
}

/// Runs every ```rhai block of a document against one real cluster, in order, each as a file in
/// one directory. A block whose first line is `// module: PATH` is a module for the blocks after
/// it to import: written to PATH in that directory, not run.
fn run_blocks(doc: &str, what: &str) {
    let blocks: Vec<&str> = doc.split("```rhai\n").skip(1).map(|b| b.split("```").next().unwrap()).collect();
    assert!(!blocks.is_empty(), "{what} has runbook examples");
    let c = TestCluster::start(3, 1);
    c.load_keys(1000);
    let dir = tempfile::tempdir().unwrap();
    for (i, block) in blocks.iter().enumerate() {
        if let Some(module) = block.lines().next().and_then(|l| l.strip_prefix("// module: ")) {
            let file = dir.path().join(module.trim());
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, block).unwrap();
            continue;
        }
        let path = dir.path().join(format!("block-{}.rhai", i + 1)).display().to_string();
        std::fs::write(&path, block).unwrap();
        let out = runbook(&["run", &path, "-c", &c.seed(), "--yes"]).run();
        assert_eq!(out.code, 0, "{what} block {} failed:\n{block}\n--- stderr\n{}", i + 1, out.stderr);
        runbook(&["lint", &path]).run().expect_code(0);
    }
    c.assert_sample_keys(1000);
    runbook(&["check", "-c", &c.seed()]).run().expect_code(0);
}

#[test]
fn readme_runbook_examples_run() {
    run_blocks(include_str!("../README.md"), "README.md");
}

#[test]
fn guide_runbook_examples_run() {
    run_blocks(include_str!("../docs/GUIDE.md"), "docs/GUIDE.md");
}

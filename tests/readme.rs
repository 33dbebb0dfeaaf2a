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
    // Its last step shows the two removed nodes for what they are.
    assert!(stdout.contains("8 nodes: 6 in the cluster, 2 removed, 0 stopped"), "{stdout}");
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

/// Every command line the README shows (`runbook …` in its code blocks: the command table, the
/// install steps, the examples) names commands the parser knows: its command words with `--help`
/// exit 0, so a renamed or removed command cannot linger in the README.
#[test]
fn readme_command_lines_name_known_commands() {
    let mut checked = Vec::new();
    for block in include_str!("../README.md").split("```").skip(1).step_by(2) {
        for line in block.lines().map(|l| l.trim_start_matches("$ ")) {
            let Some(rest) = line.strip_prefix("runbook ") else { continue };
            // In the command table, two spaces start the description.
            let mut args: Vec<&str> = rest
                .split("  ")
                .next()
                .unwrap_or_default()
                .split_whitespace()
                .take_while(|w| !w.starts_with('-') && w.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
                .collect();
            args.push("--help");
            let out = runbook(&args).run();
            assert_eq!(out.code, 0, "README: `{line}` ({args:?})\n{}", out.stderr);
            checked.push(args.join(" "));
        }
    }
    for shown in ["completions --help", "man --help", "journal prune --help", "sandbox up --help", "profiles --help"] {
        assert!(checked.iter().any(|c| c == shown), "README shows no `runbook {shown}`: {checked:?}");
    }
}

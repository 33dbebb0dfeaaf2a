//! What runbook gives an operator's shell: completion scripts and the man page. No cluster.

use crate::support::{runbook, script};

/// Every command, as `runbook man` and the completions must name it.
const COMMANDS: [&str; 13] = [
    "check",
    "run",
    "list",
    "describe",
    "functions",
    "lint",
    "repl",
    "journal",
    "fix",
    "plan",
    "sandbox",
    "completions",
    "man",
];

const SHIPPED: [&str; 5] = ["decommission", "scale-out", "replace-node", "rebalance", "fix"];

/// What bash's completion offers for `words` (the last one being completed), with the script
/// `runbook completions bash` printed loaded as bash-completion would load it.
fn bash_completes(script_path: &str, words: &[&str]) -> Vec<String> {
    let words_array: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source {script_path}\nCOMP_WORDS=({})\nCOMP_CWORD={}\n_runbook runbook '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        words_array.join(" "),
        words.len() - 1,
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = std::process::Command::new("bash").arg("-c").arg(program).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()).map(str::to_string).collect()
}

#[test]
fn bash_completion_offers_the_commands_and_the_shipped_runbooks() {
    let out = runbook(&["completions", "bash"]).run();
    out.expect_code(0);
    for word in COMMANDS.iter().chain(&SHIPPED).chain(&["prune", "--older-than", "--dry-run"]) {
        out.stdout_has(word);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runbook.bash");
    std::fs::write(&path, &out.stdout).unwrap();
    let path = path.display().to_string();
    let syntax = std::process::Command::new("bash").args(["-n", &path]).output().unwrap();
    assert!(syntax.status.success(), "bash -n: {}", String::from_utf8_lossy(&syntax.stderr));

    let commands = bash_completes(&path, &["runbook", ""]);
    for c in COMMANDS {
        assert!(commands.iter().any(|w| w == c), "`runbook <TAB>` lacks {c}: {commands:?}");
    }
    assert_eq!(bash_completes(&path, &["runbook", "run", "re"]), ["replace-node", "rebalance"]);
    assert!(bash_completes(&path, &["runbook", "lint", ""]).iter().any(|w| w == "decommission"));
    // A path is left to bash's own file completion (`complete -o default`): nothing offered here.
    assert!(bash_completes(&path, &["runbook", "run", "./my"]).is_empty());
    assert_eq!(bash_completes(&path, &["runbook", "journal", "pr"]), ["prune"]);
}

#[test]
fn zsh_and_fish_completions_name_the_shipped_runbooks() {
    for shell in ["zsh", "fish"] {
        let out = runbook(&["completions", shell]).run();
        out.expect_code(0).stdout_has("completions").stdout_has("prune");
        for name in SHIPPED {
            out.stdout_has(name);
        }
    }
    // fish completes positional arguments only from these lines.
    runbook(&["completions", "fish"])
        .run()
        .stdout_has("complete -c runbook -n \"__fish_runbook_using_subcommand run\" -a \"decommission\"");
}

#[test]
fn an_unknown_shell_is_refused_by_clap() {
    let out = runbook(&["completions", "tcsh"]).run();
    out.expect_code(2).stderr_has("invalid value 'tcsh' for '<SHELL>'").stderr_has("[possible values: bash,");
    assert!(out.stdout.is_empty(), "{}", out.stdout);
}

#[test]
fn the_man_page_is_roff_naming_every_command_and_the_exit_codes() {
    let out = runbook(&["man"]).run();
    out.expect_code(0);
    assert!(out.stdout.starts_with(".TH runbook 1"), "{}", &out.stdout[..out.stdout.len().min(200)]);
    for c in COMMANDS {
        out.stdout_has(&format!(".SS \"runbook {c}"));
    }
    for leaf in ["plan show", "sandbox up", "sandbox status", "sandbox down", "journal prune"] {
        out.stdout_has(&format!(".SS \"runbook {leaf}\""));
    }
    out.stdout_has(".SH \"EXIT STATUS\"").stdout_has("\\-\\-older\\-than").stdout_has("RUNBOOK_CLUSTER");
    // `man` renders it when it is installed (not on every CI image).
    if std::process::Command::new("man").arg("--version").output().is_ok_and(|o| o.status.success()) {
        let dir = tempfile::tempdir().unwrap();
        let page = dir.path().join("runbook.1");
        std::fs::write(&page, &out.stdout).unwrap();
        let shown = std::process::Command::new("man").arg("-l").arg(&page).env("MANWIDTH", "100").output().unwrap();
        let text = String::from_utf8_lossy(&shown.stdout);
        assert!(shown.status.success() && text.contains("runbook journal prune"), "{text}");
    }
}

/// The shipped names are offered, not imposed: a path still works wherever a runbook is taken.
#[test]
fn a_runbook_path_is_still_accepted_where_names_are_completed() {
    let (_dir, path) = script("//! A runbook of one line.\nprint(\"hello\");\n");
    runbook(&["lint", &path]).run().expect_code(0);
    runbook(&["describe", &path]).run().expect_code(0).stdout_has("A runbook of one line.");
    runbook(&["run", &path]).run().expect_code(0).stdout_has("hello");
    runbook(&["run", "nope"]).run().expect_code(2).stderr_has("no runbook named `nope`");
}

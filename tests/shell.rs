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
/// `runbook completions bash` printed loaded as bash-completion would load it: the function
/// `complete -p runbook` names, with this build first on PATH for the words only it knows.
fn bash_completes(script_path: &str, words: &[&str]) -> Vec<String> {
    let words_array: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source {script_path}\nCOMP_WORDS=({})\nCOMP_CWORD={}\nf=$(complete -p runbook | sed 's/.*-F \\([^ ]*\\).*/\\1/')\n$f runbook '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        words_array.join(" "),
        words.len() - 1,
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = shell_with_this_build("bash").arg("-c").arg(program).output().unwrap();
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

/// `shell` with this build of runbook first on PATH and a profile file naming two clusters.
fn shell_with_this_build(shell: &str) -> std::process::Command {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_runbook")).parent().unwrap().to_path_buf();
    let path =
        std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())));
    let config = std::env::temp_dir().join(format!("runbook-shell-test-{}.toml", std::process::id()));
    std::fs::write(
        &config,
        "[clusters.prod]\nseeds = [\"10.0.0.5:6379\"]\n[clusters.staging]\nseeds = [\"127.0.0.1:7000\"]\n",
    )
    .unwrap();
    std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let mut cmd = std::process::Command::new(shell);
    cmd.env("PATH", path.unwrap()).env("RUNBOOK_CONFIG", config).env_remove("RUNBOOK_CLUSTER");
    cmd
}

/// Whether `shell` is installed here (CI installs zsh and fish; a bare machine may lack them).
fn installed(shell: &str) -> bool {
    let found = std::process::Command::new(shell).arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("{shell} is not installed: its completion is checked by CI only");
    }
    found
}

/// What only the binary knows, asked by every script: a runbook's parameters after `run NAME`
/// (not those already typed), a choice's values after it, and the profiles after `--cluster`.
#[test]
fn bash_completion_asks_the_binary_for_parameters_values_and_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runbook.bash");
    std::fs::write(&path, runbook(&["completions", "bash"]).run().expect_code(0).stdout.as_bytes()).unwrap();
    let path = path.display().to_string();
    assert_eq!(bash_completes(&path, &["runbook", "run", "decommission", "--no"]), ["--node"]);
    assert_eq!(
        bash_completes(&path, &["runbook", "run", "decommission", "--node", "6397", "--re"]),
        ["--replicas", "--rebalance"]
    );
    // run's own options still complete beside the runbook's parameters.
    let both = bash_completes(&path, &["runbook", "run", "-y", "decommission", "--node", "1", "--"]);
    for word in ["--dry-run", "--max-pause", "--replicas", "--skip-gates"] {
        assert!(both.contains(&word.to_string()), "{word} missing: {both:?}");
    }
    assert!(!both.contains(&"--node".to_string()), "--node was typed already: {both:?}");
    assert_eq!(bash_completes(&path, &["runbook", "run", "decommission", "--replicas", ""]), ["remove", "rehome"]);
    assert_eq!(bash_completes(&path, &["runbook", "run", "decommission", "--shutdown", "t"]), ["true"]);
    assert_eq!(bash_completes(&path, &["runbook", "check", "--cluster", ""]), ["prod", "staging"]);
    assert_eq!(bash_completes(&path, &["runbook", "run", "-c", "st"]), ["staging"]);
    // The hidden helper is never offered as a command.
    assert!(!bash_completes(&path, &["runbook", ""]).iter().any(|w| w.contains("complete") && w != "completions"));
}

#[test]
fn fish_completion_asks_the_binary_for_parameters_values_and_profiles() {
    if !installed("fish") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("runbook.fish");
    std::fs::write(&path, runbook(&["completions", "fish"]).run().expect_code(0).stdout.as_bytes()).unwrap();
    let completes = |line: &str| -> Vec<String> {
        let program = format!("source {}; complete -C '{line}'", path.display());
        let out = shell_with_this_build("fish").arg("-c").arg(program).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(|l| l.split('\t').next().unwrap().to_string()).collect()
    };
    assert_eq!(completes("runbook run decommission --no"), ["--node"]);
    // The values only: no runbook name, no file.
    assert_eq!(completes("runbook run decommission --replicas "), ["rehome", "remove"]);
    let profiles = completes("runbook status --cluster ");
    assert!(profiles.contains(&"prod".to_string()) && profiles.contains(&"staging".to_string()), "{profiles:?}");
}

/// zsh completes only inside its line editor: a zsh in a pseudo-terminal (zpty) is given the
/// words and a TAB, and what it lists or inserts is read back.
#[test]
fn zsh_completion_asks_the_binary_for_parameters_values_and_profiles() {
    if !installed("zsh") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("_runbook"),
        runbook(&["completions", "zsh"]).run().expect_code(0).stdout.as_bytes(),
    )
    .unwrap();
    let completes = |line: &str| -> String {
        let program = format!(
            r#"zmodload zsh/zpty
zpty z 'zsh -f -i'
zpty -w z 'PROMPT="%% "; fpath=({} $fpath); autoload -Uz compinit; compinit -u -D; zstyle ":completion:*" menu no; unsetopt beep'
zpty -w -n z '{line}'$'\t'
sleep 1.5
zpty -w z $'\C-c'
sleep 0.3
out=
while zpty -r -t z chunk; do out+=$chunk; done
zpty -d z
print -r -- $out"#,
            dir.path().display()
        );
        let out = shell_with_this_build("zsh").arg("-f").arg("-c").arg(program).output().unwrap();
        without_escapes(&String::from_utf8_lossy(&out.stdout))
    };
    let listed = completes("runbook run decommission --re");
    assert!(listed.contains("--rebalance") && listed.contains("--replicas"), "{listed}");
    assert!(completes("runbook run decommission --no").contains("--node "), "--node not inserted");
    assert!(completes("runbook run decommission --replicas re").contains("rehome"));
    assert!(completes("runbook check -c st").contains("staging "), "the profile not inserted");
}

/// The terminal's text without its control sequences (`ESC [ … letter`) and carriage returns.
fn without_escapes(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' if chars.peek() == Some(&'[') => {
                chars.next();
                while chars.next().is_some_and(|c| !c.is_ascii_alphabetic()) {}
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out
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
        .stdout_has("complete -c runbook -n \"__fish_runbook_using_subcommand run; and not __fish_runbook_wants_value\" -a \"decommission\"");
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

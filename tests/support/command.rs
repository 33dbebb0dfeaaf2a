//! Running the real `runbook` binary and looking at what a user would see.

use std::process::{Command, Stdio};

#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Panics with both streams shown unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }

    #[track_caller]
    pub fn stdout_has(&self, text: &str) -> &Self {
        assert!(
            self.stdout.contains(text),
            "stdout lacks {text:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// The before → after slot map of a 4-master test cluster's decommission: `victim` owns the
    /// last quarter (8 of 32 cells of 512 slots), then nothing, as it is no master any more.
    pub fn stdout_has_victim_drained_in_the_map(&self, victim: &str) -> &Self {
        self.stdout_has("slot map before → after: 32 cells of 512 slots").stdout_has(&format!(
            "{victim} {}{}  4096 → {}     -",
            "·".repeat(24),
            "█".repeat(8),
            "·".repeat(32)
        ))
    }

    #[track_caller]
    pub fn stderr_has(&self, text: &str) -> &Self {
        assert!(
            self.stderr.contains(text),
            "stderr lacks {text:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// A state directory for this test process, so journals and history never land in $HOME.
pub fn state_dir() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir")).path()
}

/// The `runbook` binary with a clean environment: no cluster, no password, a private state dir,
/// and no profile file (never the developer's own).
pub fn runbook(args: &[&str]) -> Runbook {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runbook"));
    cmd.args(args)
        .env_remove("RUNBOOK_CLUSTER")
        .env_remove("REDISCLI_AUTH")
        .env_remove("RUNBOOK_USER")
        .env("RUNBOOK_STATE_DIR", state_dir())
        .env("RUNBOOK_CONFIG", state_dir().join("no-profiles.toml"))
        .stdin(Stdio::null());
    Runbook { cmd }
}

pub struct Runbook {
    cmd: Command,
}

impl Runbook {
    pub fn env(mut self, k: &str, v: impl AsRef<std::ffi::OsStr>) -> Self {
        self.cmd.env(k, v);
        self
    }

    pub fn run(mut self) -> Output {
        let out = self.cmd.output().expect("run runbook");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Writes a runbook to a temp file; the file lives as long as the returned guard.
pub fn script(source: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.rhai");
    std::fs::write(&path, source).unwrap();
    let p = path.display().to_string();
    (dir, p)
}

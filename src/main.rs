//! The `runbook` binary: all the work is in the library's `run`.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(runbook::run(std::env::args_os()))
}

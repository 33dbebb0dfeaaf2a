//! The `runbook` binary: all the work is in the library's `run`.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so printing into a closed pipe (`runbook journal x | head`) panics.
    // The Unix convention is to stop quietly: the reader has all it wanted.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info.payload().downcast_ref::<String>().map(String::as_str).unwrap_or_default();
        if msg.contains("Broken pipe") {
            std::process::exit(0);
        }
        default_hook(info);
    }));
    ExitCode::from(runbook::run(std::env::args_os()))
}

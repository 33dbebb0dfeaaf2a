//! Ctrl-C: the first sets a run's cancel flag (it stops after the current batch, leaving no slot
//! open); a second exits at once, except in the REPL, where each one cancels what is running.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::exit;

/// Sets `flag` on Ctrl-C. With `exit_on_second`, a second Ctrl-C exits at once; otherwise (the
/// REPL, which clears the flag after each input) every Ctrl-C just cancels what is running.
pub fn cancel_on_ctrl_c(rt: &tokio::runtime::Runtime, flag: Arc<AtomicBool>, exit_on_second: bool) {
    let f = flag;
    if !exit_on_second {
        rt.spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                f.store(true, Ordering::SeqCst);
            }
        });
        return;
    }
    rt.spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nstopping after the current batch (no slot is left open); press Ctrl-C again to stop now");
            f.store(true, Ordering::SeqCst);
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("stopped; run the same command again to finish");
                std::process::exit(i32::from(exit::CANCELLED));
            }
        }
    });
}

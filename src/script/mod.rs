//! The rhai glue: the engine, the API it registers, parameters, and the `run` command.

use crate::error::{Error, Result};

pub fn run_command(_args: &[String]) -> Result<u8> {
    Err(Error::usage("`runbook run` is not built yet", None))
}

pub fn shipped_summaries() -> Vec<(String, String)> {
    Vec::new()
}

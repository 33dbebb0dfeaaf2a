//! The runbooks shipped in `runbooks/`, embedded so an installed binary has them.

use crate::error::{Error, Result};

pub use crate::shipped::SHIPPED;

/// A runbook by path, or by the name of a shipped one (`decommission`, `decommission.rhai`).
/// Returns (display path, source).
pub fn load(name: &str) -> Result<(String, String)> {
    let path = std::path::Path::new(name);
    if path.is_file() {
        let src = std::fs::read_to_string(path).map_err(|e| Error::io(format!("reading {name}"), &e))?;
        return Ok((name.to_string(), src));
    }
    let short = name.trim_start_matches("runbooks/").trim_end_matches(".rhai");
    SHIPPED
        .iter()
        .find(|(n, _)| *n == short)
        .map(|(n, src)| (format!("runbooks/{n}.rhai"), (*src).to_string()))
        .ok_or_else(|| Error::RunbookNotFound {
            name: name.to_string(),
            available: SHIPPED.iter().map(|(n, _)| (*n).to_string()).collect(),
        })
}

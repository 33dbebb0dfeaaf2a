//! The registry of removed nodes, `<state dir>/removed.jsonl`: one line per node removed (id,
//! address, run, time, the nodes that missed the forget) or added back on purpose. `runbook
//! check` reads it to name a removed node that some node knows again; `runbook fix` to finish
//! the forget. The cluster itself keeps no such record: a node forgets a forgotten node, and its
//! 60 s ban list is all the memory it has.

use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Removal {
    /// The id the cluster knew it by (a node reset HARD afterwards answers with another one).
    pub id: String,
    pub addr: String,
    /// The journal's run id, or what removed it outside a runbook (`repl`, `fix`).
    pub run: String,
    /// Unix seconds.
    pub ts: f64,
    /// Nodes that could not be asked to forget it (unreachable then), by address: they still
    /// know it, and `runbook fix` finishes the forget on them once they answer.
    #[serde(default)]
    pub missed: Vec<String>,
    /// "removed"; "added" when `add_node` brought the node back on purpose, which ends the record.
    pub event: String,
}

pub fn path() -> PathBuf {
    crate::state_dir::state_dir().join("removed.jsonl")
}

/// Appends one record.
pub fn record(r: &Removal) -> Result<()> {
    let p = path();
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), &e))?;
    }
    let line = serde_json::to_string(r).expect("a removal serializes");
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p)
        .and_then(|mut f| writeln!(f, "{line}"))
        .map_err(|e| Error::io(format!("writing {}", p.display()), &e))
}

/// The nodes removed and not added back since, the latest record per id. A missing file is an
/// empty registry; a damaged line is skipped.
pub fn load() -> Vec<Removal> {
    let text = std::fs::read_to_string(path()).unwrap_or_default();
    latest(&text)
}

fn latest(text: &str) -> Vec<Removal> {
    let mut by_id: std::collections::BTreeMap<String, Removal> = std::collections::BTreeMap::new();
    for r in text.lines().filter_map(|l| serde_json::from_str::<Removal>(l).ok()) {
        by_id.insert(r.id.clone(), r);
    }
    by_id.into_values().filter(|r| r.event == "removed").collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_added_back_is_no_longer_removed_and_damaged_lines_are_skipped() {
        let line = |id: &str, event: &str| {
            serde_json::to_string(&Removal {
                id: id.into(),
                addr: "127.0.0.1:6397".into(),
                run: "r1".into(),
                ts: 1.0,
                missed: vec![],
                event: event.into(),
            })
            .unwrap()
        };
        let text = [line("a", "removed"), "{not json".into(), line("b", "removed"), line("a", "added")].join("\n");
        let ids: Vec<String> = latest(&text).into_iter().map(|r| r.id).collect();
        assert_eq!(ids, vec!["b"]);
    }
}

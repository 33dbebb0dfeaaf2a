//! The functions runbooks call. Each is registered with its parameters' names and a doc line,
//! the one source for `runbook functions`, the REPL's help and the guide; each primitive of a
//! cluster is declared with what it does to the cluster (`Primitive`), the one source for the
//! journal, the lease and lint.
//!
//! One file per family of functions, each declaring its primitives beside their registration;
//! the lookups every family shares live here.

mod command;
mod gates;
mod membership;
mod reads;
mod run;
mod slots;

use std::sync::Arc;

use rhai::{Dynamic, Engine};

use super::primitive::{Primitive, Registrar};
use super::session::Session;
use super::types::{Node, RhaiResult, rhai_err};
use crate::error::Error;
use crate::model::{NodeInfo, Topology, select};

/// Registers every function runbooks call, and returns the primitives among them.
pub fn register(engine: &mut Engine, session: &Arc<Session>) -> Vec<Primitive> {
    let mut r = Registrar::new(engine);
    // Any order will do: no two overloads share a signature, the reference sorts by name and
    // arity, and who reads the declarations looks primitives up by name.
    run::register(&mut r, session);
    reads::register(&mut r);
    membership::register(&mut r);
    slots::register(&mut r, session);
    gates::register(&mut r, session);
    command::register(&mut r, session);
    r.declared()
}

fn err<T>(e: Error) -> RhaiResult<T> {
    Err(rhai_err(e))
}

/// The node a runbook means: a `Node` (looked up again by id), a selector string or a port.
fn resolve(topo: &Topology, who: &Dynamic) -> Result<NodeInfo, Error> {
    if let Some(n) = who.clone().try_cast::<Node>() {
        return topo.node(&n.0.id).cloned().ok_or_else(|| {
            Error::refused(
                format!("{} is no longer part of the cluster", n.0.addr),
                Some("re-read it with c.node(...)"),
            )
        });
    }
    let sel = if let Ok(i) = who.as_int() {
        i.to_string()
    } else {
        who.clone()
            .into_string()
            .map_err(|t| Error::usage(format!("a node is a Node, a port, host:port or a node id, not a {t}"), None))?
    };
    match select(topo, &sel) {
        Ok(n) => Ok(n.clone()),
        Err(e) => Err(removed_earlier(&sel).unwrap_or_else(|| e.into())),
    }
}

/// A selector that names a node removed earlier from here (`removed.jsonl`): at 3 a.m. the
/// question is "did that already happen?", and the answer is more use than the candidates.
fn removed_earlier(sel: &str) -> Option<Error> {
    // The latest removal at that address: the registry lists one record per node id, by id,
    // each still removed.
    let r = crate::removed::load()
        .into_iter()
        .filter(|r| r.addr == sel || r.addr.rsplit_once(':').is_some_and(|(_, p)| p == sel) || r.id == sel)
        .max_by(|a, b| a.ts.total_cmp(&b.ts))?;
    Some(Error::usage(
        format!(
            "{} is no longer in the cluster: it was removed by run {} at {}",
            r.addr,
            r.run,
            crate::holder::unix_time(r.ts as u64)
        ),
        Some(
            "nothing is left to do for it; `runbook journal` shows what that run did, `runbook check` the cluster now",
        ),
    ))
}

//! Raw commands sent to one node, classified by what they do so reads stay reads in the journal
//! and a destructive one needs a confirmation.

use std::sync::Arc;

use rhai::{Array, Dynamic};

use super::{err, resolve};
use crate::error::Error;
use crate::ops::Cluster;
use crate::script::journaled::{j, show};
use crate::script::primitive::{Primitive, Registrar};
use crate::script::session::Session;
use crate::script::types::{ClusterHandle, RhaiResult, rhai_err};

/// A raw command can change anything, so a runbook calling `command` needs the lease; each call
/// is journaled by what it sends (`COMMAND_READ` for a read).
const COMMAND: Primitive = Primitive::changes("command");
/// A read sent through `command`, journaled apart so a resumed run does not take it for a change.
const COMMAND_READ: Primitive = Primitive::reads("command_read");

pub(super) fn register(r: &mut Registrar<'_>, session: &Arc<Session>) {
    let s = session.clone();
    r.primitive(
        COMMAND,
        ["c", "node", "command"],
        "Runs a raw command on one node, e.g. c.command(n, \"CLUSTER INFO\"); the reply as data. Destructive ones (FLUSHALL, CONFIG SET, CLUSTER RESET, ...) need a confirm() before them, or --yes.",
        move |c: &mut ClusterHandle, n: Dynamic, cmd: &str| -> RhaiResult<Dynamic> {
            raw_command(&s, c, &n, cmd.split_whitespace().map(str::to_string).collect())
        },
    );
    let s = session.clone();
    r.primitive(
        COMMAND,
        ["c", "node", "args"],
        "Runs a raw command given as an array of arguments, e.g. c.command(n, [\"CONFIG\", \"GET\", \"maxmemory\"]).",
        move |c: &mut ClusterHandle, n: Dynamic, args: Array| -> RhaiResult<Dynamic> {
            raw_command(&s, c, &n, args.iter().map(ToString::to_string).collect())
        },
    );
}

/// `c.command(...)`: a read runs as it is; a write is journaled and takes the lease; a
/// destructive command also needs the run to have confirmed something (or `--yes`).
fn raw_command(s: &Session, c: &ClusterHandle, n: &Dynamic, args: Vec<String>) -> RhaiResult<Dynamic> {
    use crate::ops::command::{CommandKind, command_name, kind};
    if args.is_empty() {
        return err(Error::usage("c.command needs a command", Some("e.g. c.command(n, \"CLUSTER INFO\")")));
    }
    let name = command_name(&args);
    let kind = kind(&args);
    if kind == CommandKind::Destructive && !s.confirmed() {
        return err(Error::refused(
            format!("{name} is destructive, and the run has not asked for a confirmation; nothing was sent"),
            Some("call confirm(\"…\") before c.command sends it (--yes answers it), or pass --yes"),
        ));
    }
    let primitive = if kind == CommandKind::Read { COMMAND_READ } else { COMMAND };
    j(c, primitive, &format!("{} {name}", show(n)), |cl| command(cl, n, &args))
}

fn command(c: &dyn Cluster, n: &Dynamic, args: &[String]) -> RhaiResult<Dynamic> {
    let topo = c.topology().map_err(rhai_err)?;
    let node = resolve(&topo, n).map_err(rhai_err)?;
    let v = c.call(&node, args).map_err(rhai_err)?;
    rhai::serde::to_dynamic(v)
        .map_err(|e| rhai_err(Error::Protocol { node: node.addr.to_string(), reason: e.to_string() }))
}

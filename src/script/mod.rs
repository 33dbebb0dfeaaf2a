//! The rhai glue: the engine, the API it registers, parameters, and the `runbook run` command.
//! Scripts see the `Cluster` trait through `ClusterHandle`, never a socket.

pub mod api;
pub mod engine;
pub mod params;
pub mod session;
pub mod shipped;
pub mod types;

use std::sync::Arc;

use rhai::Scope;

use crate::cli::ClusterArgs;
use crate::error::{Error, Result, exit};
use params::{Header, RunArgs};
use session::Session;

/// `runbook run [options] <runbook> [--param value ...]`.
pub fn run_command(args: &[String]) -> Result<u8> {
    let ra = RunArgs::parse(args)?;
    let Some(name) = ra.runbook.clone() else {
        if ra.help {
            println!("{}", run_usage());
            return Ok(exit::OK);
        }
        return Err(Error::usage(
            "which runbook? `runbook run <RUNBOOK> [--param value ...]`",
            Some(&format!(
                "shipped runbooks: {} (or a path to a .rhai file)",
                shipped::SHIPPED.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
            )),
        ));
    };
    let (path, source) = shipped::load(&name)?;
    let header = Header::parse(&source).map_err(|e| Error::usage(format!("{path}: {e}"), None))?;
    if ra.help {
        println!("{}", describe(&name, &header));
        return Ok(exit::OK);
    }
    let params = header.bind(&name, &ra.params)?;
    if ra.dry_run {
        return Err(Error::usage(
            "--dry-run is not available yet",
            Some("try the runbook on a sandbox first: `runbook sandbox up`"),
        ));
    }
    crate::ops::say::set_quiet(ra.quiet);

    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let cluster_args = ClusterArgs {
        cluster: ra.cluster.clone().or_else(|| env("RUNBOOK_CLUSTER")),
        user: ra.user.clone().or_else(|| env("RUNBOOK_USER")),
        password: ra.password.clone().or_else(|| env("REDISCLI_AUTH")),
    };
    if let Some(c) = &cluster_args.cluster {
        crate::config::parse_seed(c)?;
    }
    let session = Arc::new(Session::new(cluster_args, ra.yes));
    let engine = engine::build(&session);
    let mut scope = Scope::new();
    scope.push_constant("params", params);
    // Compile before connecting: a syntax error must not cost a connection, let alone a change.
    let mut ast = engine.compile_with_scope(&scope, &source).map_err(|e| engine::to_error(e.into(), &path, &source))?;
    ast.set_source(path.as_str());
    engine.run_ast_with_scope(&mut scope, &ast).map_err(|e| engine::to_error(*e, &path, &source))?;
    Ok(exit::OK)
}

fn run_usage() -> String {
    let mut s = String::from(
        "Usage: runbook run [OPTIONS] <RUNBOOK> [--PARAM VALUE ...]\n\n\
         <RUNBOOK> is a path to a .rhai file or the name of a shipped runbook.\n\n\
         Options (before or after the runbook):\n  \
         -c, --cluster HOST:PORT  any node of the cluster [env: RUNBOOK_CLUSTER]\n      \
         --user USER          ACL user [env: RUNBOOK_USER]\n      \
         --password PASSWORD  password [env: REDISCLI_AUTH]\n  \
         -y, --yes                answer yes to confirm()\n  \
         -q, --quiet              no progress lines\n  \
         -p, --param NAME=VALUE   a parameter (for values that start with -)\n  \
         -h, --help               this help, or a runbook's parameters with a runbook\n\nShipped runbooks:\n",
    );
    for (name, summary) in shipped_summaries() {
        s.push_str(&format!("  {name:<16} {summary}\n"));
    }
    s
}

fn describe(name: &str, h: &Header) -> String {
    let mut s = format!("{name}: {}\n", h.summary);
    for line in &h.description {
        s.push_str(&format!("{line}\n"));
    }
    let required: Vec<String> = h
        .params
        .iter()
        .filter(|p| p.default.is_none())
        .map(|p| format!(" --{} <{}>", p.name.replace('_', "-"), p.name))
        .collect();
    s.push_str(&format!("\nUsage: runbook run {name} [OPTIONS]{}\n\nParameters:\n", required.concat()));
    for line in h.param_lines() {
        s.push_str(&format!("  {line}\n"));
    }
    s.push_str("\nOptions: --cluster HOST:PORT, --user, --password, --yes, --quiet (see `runbook run --help`)\n");
    s
}

/// (name, one-line summary) of every shipped runbook.
pub fn shipped_summaries() -> Vec<(String, String)> {
    shipped::SHIPPED
        .iter()
        .map(|(n, src)| ((*n).to_string(), Header::parse(src).map(|h| h.summary).unwrap_or_default()))
        .collect()
}

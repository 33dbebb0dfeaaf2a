//! `run`: parse arguments, dispatch, render any error once, return the exit code.

use std::ffi::OsString;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::cli::{Arguments, Command};
use crate::config::ClusterConfig;
use crate::error::{Result, exit};
use crate::live::{self, LiveCluster};
use crate::ops::Cluster;
use crate::output::Output;

pub fn run(args: impl IntoIterator<Item = OsString>) -> u8 {
    let args: Vec<OsString> = args.into_iter().collect();
    // As redis-cli does: a password in the arguments is visible to every user of the host.
    if args.iter().any(|a| a.to_str().is_some_and(|a| a == "--password" || a.starts_with("--password="))) {
        eprintln!(
            "warning: a password given with --password shows in `ps` and in shell history; set REDISCLI_AUTH instead"
        );
    }
    // Asked by the completion scripts, never typed: kept out of clap so no script offers it.
    if args.get(1).is_some_and(|a| a == crate::complete::COMMAND) {
        return crate::complete::execute(&args[2..]);
    }
    let args = match crate::cli::run_options_first(args) {
        Ok(args) => args,
        Err(e) => {
            eprint!("{}", e.render());
            return e.code();
        }
    };
    let args = match crate::cli::parse(args) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { exit::USAGE } else { exit::OK };
        }
    };
    // How this command reports, made once and handed down: only `run` takes --quiet and --json.
    let out = Arc::new(match &args.command {
        Command::Run(r) => Output::new(r.quiet, r.json),
        _ => Output::default(),
    });
    let code = match dispatch(args, &out) {
        Ok(code) => code,
        Err(e) => {
            eprint!("{}", e.render());
            out.emit("error", serde_json::json!({"code": e.code(), "message": e.to_string(), "hint": e.hint()}));
            e.code()
        }
    };
    out.emit("done", serde_json::json!({"code": code}));
    code
}

fn dispatch(args: Arguments, out: &Arc<Output>) -> Result<u8> {
    match args.command {
        Command::Check { cluster, json } => {
            let cfg = ClusterConfig::from_args(&cluster)?;
            let (_rt, c) = connect(&cfg, out)?;
            // Read before the views: a removal recorded while they are read (a run forgetting a
            // node) would otherwise count the nodes not yet told as knowing it again.
            let removed = crate::removed::load();
            let topo = c.topology()?;
            // A user that may not list clients (a read-only monitoring ACL) still gets its check,
            // as before there was a lease to read: open slots are then each an error.
            let holder = c.lease_holder(&topo).ok().flatten();
            let report = crate::ops::CheckReport::build(&topo, &c.stats(&topo)?)
                .with_removed(&topo, &removed)
                .with_run(&topo, holder.as_ref());
            if json {
                println!("{}", serde_json::to_string_pretty(&report).expect("report serializes"));
            } else {
                print!("{}", report.render_in(crate::output::colour_stdout()));
            }
            Ok(report.exit_code())
        }
        Command::Status { cluster, json } => {
            let cfg = ClusterConfig::from_args(&cluster)?;
            let (_rt, c) = connect(&cfg, out)?;
            crate::status::execute(&c, json)
        }
        Command::Sandbox { action } => crate::sandbox::execute(action),
        Command::Plan { action: crate::cli::PlanAction::Show { file } } => {
            crate::script::plan_file::show_command(&file)
        }
        Command::Run(args) => crate::script::run_command(args, out),
        Command::Journal { action: Some(crate::cli::JournalAction::Prune { older_than, dry_run }), .. } => {
            crate::journal_command::prune(older_than, dry_run)
        }
        Command::Journal { action: None, run } => crate::journal_command::execute(run.as_deref()),
        Command::Completions { shell } => crate::shell::completions(shell),
        Command::Man => crate::shell::man(),
        Command::Profiles => crate::profiles::list_command(),
        Command::Fix { cluster } => {
            let cfg = ClusterConfig::from_args(&cluster)?;
            let (_rt, c) = connect(&cfg, out)?;
            let c = c.with_holder(crate::live::Holder::me("fix", &std::process::id().to_string()), None);
            let c = crate::guarded::Guarded::new(Arc::new(c), None);
            // The lease first: never judge (or close) slots that another run has open right now.
            c.acquire_lease()?;
            crate::ops::fix_open_slots(&c, &crate::ops::MoveOpts::default())?;
            crate::ops::finish_forgets(&c, &crate::removed::load())?;
            Ok(exit::OK)
        }
        Command::Describe { runbook } => crate::script::describe_command(&runbook),
        Command::Functions { name } => crate::script::functions_command(name.as_deref()),
        Command::Lint { runbook } => crate::script::lint::lint_command(&runbook),
        Command::Repl { cluster } => crate::repl::run(ClusterConfig::from_args(&cluster)?, out),
        Command::List => {
            for (name, summary) in crate::script::shipped_summaries() {
                println!("{name:<16} {summary}");
            }
            Ok(exit::OK)
        }
    }
}

/// A live cluster behind a cancel flag that the first Ctrl-C sets; a second Ctrl-C exits at once.
pub fn connect(cfg: &ClusterConfig, out: &Arc<Output>) -> Result<(Arc<tokio::runtime::Runtime>, LiveCluster)> {
    let rt = live::runtime()?;
    let cancel = Arc::new(AtomicBool::new(false));
    crate::interrupt::cancel_on_ctrl_c(&rt, cancel.clone(), true);
    let cluster = cfg
        .reach(|seed| LiveCluster::connect(rt.clone(), seed.clone(), cfg.creds.clone(), cancel.clone(), out.clone()))?;
    Ok((rt, cluster))
}

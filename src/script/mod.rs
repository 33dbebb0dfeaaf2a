//! The rhai glue: the engine, the API it registers, parameters, and the `runbook run` command.
//! Scripts see the `Cluster` trait through `ClusterHandle`, never a socket.

pub mod api;
pub mod codec;
pub mod docs;
pub mod engine;
mod journaled;
pub mod lint;
mod options;
pub mod params;
pub mod plan_file;
pub mod primitive;
pub mod session;
pub mod shipped;
pub mod types;

use std::sync::Arc;

use rhai::Scope;

use crate::cli::RunArgs;
use crate::config::{ClusterConfig, RunConfig};
use crate::error::{Error, Result, exit};
use crate::output::Output;
use params::Header;
use session::Session;

/// `runbook run [options] <runbook> [--param value ...]`.
pub fn run_command(mut args: RunArgs, out: &Arc<Output>) -> Result<u8> {
    let plan = args.plan.as_deref().map(plan_file::PlanFile::load).transpose()?;
    let mut given = params::given(&args.params)?;
    given.extend(args.param.iter().map(|(k, v)| (k.clone(), Some(v.clone()))));
    if let Some(p) = &plan {
        // A reviewed plan carries its runbook and parameters; it is applied, not rehearsed.
        let conflict = if args.runbook.as_ref().is_some_and(|r| *r != p.runbook) {
            Some(format!(
                "the plan is for the runbook `{}`, not `{}`",
                p.runbook,
                args.runbook.clone().unwrap_or_default()
            ))
        } else if !given.is_empty() {
            Some("a plan carries its own parameters: give none beside --plan".to_string())
        } else if args.dry_run || args.save_plan.is_some() {
            Some("--plan applies a reviewed plan; to rehearse again, make a new one with --dry-run --save-plan".into())
        } else {
            None
        };
        if let Some(c) = conflict {
            return Err(Error::usage(c, Some("`runbook plan show FILE` prints what the plan holds")));
        }
        args.runbook = Some(p.runbook.clone());
        given.clone_from(&p.params);
        args.cluster.cluster = args.cluster.cluster.take().or_else(|| Some(p.cluster.clone()));
        // The review was the confirmation.
        args.yes = true;
    }
    // Checked once, before the runbook is even looked for: the address, the TLS files, and
    // options that contradict each other.
    let cfg = RunConfig::from_args(&args)?;
    let Some(name) = args.runbook.clone() else {
        if args.help {
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
    if let Some(p) = &plan
        && p.source_hash != plan_file::source_hash(&source)
    {
        return Err(Error::refused(
            format!("the runbook `{name}` changed since the plan was made; nothing was changed"),
            Some("make a new plan with --dry-run --save-plan, and review it again"),
        ));
    }
    let header = Header::parse(&source).map_err(|e| Error::usage(format!("{path}: {e}"), None))?;
    if args.help {
        println!("{}", describe(&name, &header));
        return Ok(exit::OK);
    }
    let params = header.bind(&name, &given)?;
    let params_json = codec::encode(&rhai::Dynamic::from(params.clone()));
    let mut session = Session::new(cfg.cluster.clone(), cfg.yes, out.clone());
    session.dry_run = std::sync::atomic::AtomicBool::new(cfg.dry_run);
    session.rate_limit = cfg.rate_limit;
    session.max_pause = cfg.max_pause;
    session.settle = cfg.settle;
    session.decisions = if let Some(p) = &plan {
        Some(Arc::new(plan_file::Decisions::Replay(std::sync::Mutex::new(p.decisions.clone().into()))))
    } else if cfg.save_plan.is_some() {
        Some(Arc::new(plan_file::Decisions::Record(std::sync::Mutex::new(Vec::new()))))
    } else {
        None
    };
    // Compile before connecting: a syntax error must not cost a connection, let alone a change.
    let mut scope = Scope::new();
    scope.push_constant("params", params);
    let mut ast = engine::build(&Arc::new(Session::new(ClusterConfig::default(), false, Arc::default())))
        .compile_with_scope(&scope, &source)
        .map_err(|e| engine::to_error(e.into(), &path, &source))?;
    ast.set_source(path.as_str());

    let mut resume = None;
    let cluster = cfg.cluster.seed.as_ref().map(ToString::to_string).unwrap_or_default();
    if !cfg.dry_run {
        let jpath =
            cfg.journal.clone().unwrap_or_else(|| crate::journal::default_path(&name, &source, &params_json, &cluster));
        // Locked for this process: a second identical command stops here, the holder named.
        let declared = primitives();
        let changes_cluster = |name: &str| declared.iter().any(|p| p.name == name && p.changes_cluster());
        let (journal, r) = crate::journal::Journal::open(&jpath, changes_cluster)?;
        if !journal.damage().is_empty() {
            // Said before anything is resumed from it: the operator decides whether to trust it.
            eprintln!(
                "warning: the journal {} is damaged: {}; its {} readable record(s) are kept{}; `runbook journal {}` shows them, and `runbook fix` closes open slots whatever a journal says",
                jpath.display(),
                journal.damage().join("; "),
                crate::journal::read_records(&jpath).map_or(0, |r| r.len()),
                if r.is_some() { " and this run resumes from them" } else { "" },
                jpath.display()
            );
        }
        session.holder = crate::live::Holder::me(&name, journal.run_id());
        session.journal = Some(Arc::new(journal));
        // A run that can change the cluster takes its lease before it reads anything of it (and
        // before a resume replays or finishes anything), so the loser of two runs at once is
        // refused by the lease, never by a symptom of the winner's work. One that only reads
        // takes none.
        session.lease_first = lint::mutates(&source) || r.is_some();
        resume = r;
    }
    let session = Arc::new(session);
    // Ctrl-C is heard from the start, not from the first cluster() only: a runbook that loops or
    // sleeps before connecting stops too.
    session.runtime()?;
    if session.lease_first && cfg.cluster.seed.is_some() {
        // Refused here, the run has written nothing: its journal still resumes what it held.
        session.take_lease()?;
    }
    if let Some(j) = &session.journal {
        j.start(&name, &params_json, &cluster, resume.as_mut())?;
    }
    let mut engine = engine::build(&session);
    engine::confine_imports(&mut engine, engine::runbook_dir(&name).as_deref());
    // Every outcome of a started run, even failing to reach the cluster, ends it in its journal.
    let result = resumable(&session, resume)
        .and_then(|resume| {
            if let Some(p) = &plan {
                // Before anything changes: the cluster must be the one the plan was made for.
                let topo = session.cluster(None)?.0.topology()?;
                plan_file::check_fresh(p, &topo.fingerprint(), &topo.outcome())?;
            }
            Ok(resume)
        })
        .and_then(|resume| finish_in_flight(&session, resume.as_ref()))
        .and_then(|()| engine.run_ast_with_scope(&mut scope, &ast).map_err(|e| engine::to_error(*e, &path, &source)));
    let result = result.map_err(|e| if session.changed() { e.after_changes() } else { e.before_changes() });
    if let Some(j) = &session.journal {
        let (status, error) = match &result {
            Ok(()) => ("finished", None),
            Err(Error::Cancelled) => ("cancelled", Some("cancelled".to_string())),
            Err(e) => ("failed", Some(e.to_string())),
        };
        j.end(status, error.as_deref())?;
        if result.is_err() && j.kept() {
            eprintln!("journal: {}", j.path().display());
        }
    }
    // The JSON stream ends with the outcome, predicted or made, so automation can hold a dry
    // run against the live run that follows it.
    if result.is_ok()
        && session.out.json()
        && let Some(topo) = session.outcome()
    {
        let topo = topo?;
        session.out.emit("outcome", serde_json::json!({"dry_run": session.is_dry_run(), "topology": topo.outcome()}));
    }
    if let (Ok(()), Some(file)) = (&result, &cfg.save_plan) {
        save_plan(&session, file, &name, &source, &given, &cluster)?;
    }
    if let Some(d) = session.decisions.as_ref().filter(|d| d.left() > 0) {
        eprintln!("warning: {} decision(s) of the plan were not asked for: the runbook took a shorter path", d.left());
    }
    for report in session.dry_run_reports(session.out.colour_prints()) {
        if session.out.json() {
            eprint!("{report}");
        } else {
            print!("{report}");
        }
    }
    result.map(|()| exit::OK)
}

/// Writes what a dry run decided, with what it read and what it predicts, for review.
fn save_plan(
    session: &Session,
    file: &str,
    name: &str,
    source: &str,
    given: &[(String, Option<String>)],
    cluster: &str,
) -> Result<()> {
    let Some((fingerprint, before)) = session.read_at_start() else {
        return Err(Error::usage("the runbook never read the cluster: there is no plan to save", None));
    };
    let after = session.outcome().transpose()?.map(|t| t.outcome()).unwrap_or_default();
    let plan = plan_file::PlanFile {
        runbook_plan: 1,
        runbook: name.to_string(),
        source_hash: plan_file::source_hash(source),
        params: given.to_vec(),
        cluster: cluster.to_string(),
        created: crate::journal::now(),
        host: crate::journal::hostname(),
        fingerprint,
        before,
        decisions: session.decisions.as_ref().map(|d| d.recorded()).unwrap_or_default(),
        after,
    };
    plan.save(file)?;
    eprintln!(
        "plan saved to {file} ({} decision(s)): review it with `runbook plan show {file}`, apply it with `runbook run --plan {file}`",
        plan.decisions.len()
    );
    Ok(())
}

/// The interrupted run to resume, if the cluster at this address is the one it worked on (some
/// node of it is still here). When not, the run starts afresh: replaying another cluster's
/// decisions, or finishing its moves, would be wrong. Journals without node ids are trusted.
fn resumable(session: &Session, resume: Option<crate::journal::Resume>) -> Result<Option<crate::journal::Resume>> {
    let Some(r) = resume else { return Ok(None) };
    if r.cluster_ids.is_empty() {
        return Ok(Some(r));
    }
    let c = session.cluster(None)?;
    let topo = c.0.topology()?;
    if topo.nodes().iter().any(|n| r.cluster_ids.contains(&n.id)) {
        return Ok(Some(r));
    }
    let journal = session.journal.as_ref().expect("a resumed run has a journal");
    session.out.say(&format!(
        "the unfinished run in {} was on another cluster at this address (none of its nodes is here); starting a new run",
        journal.path().display()
    ));
    journal.abandon(&r, "abandoned: the cluster at this address is another one")?;
    Ok(None)
}

/// A resumed run first settles the slot moves its predecessor left in flight (interrupted, or
/// stopped by an error such as a node failing): reconciled from what the nodes say now and the
/// journal's intent, so a target or source that failed over is replaced by its promoted replica.
/// The runbook then starts from a cluster with no open slot.
fn finish_in_flight(session: &Session, resume: Option<&crate::journal::Resume>) -> Result<()> {
    let Some(r) = resume else { return Ok(()) };
    session.out.say(&format!(
        "resuming the run started {} ({} step(s) done, {} slot batch(es) in flight)",
        crate::holder::unix_time(r.started as u64),
        r.calls_done,
        r.in_flight.len()
    ));
    if r.in_flight.is_empty() {
        return Ok(());
    }
    let c = session.cluster(None)?;
    let journal = session.journal.as_ref().expect("a resumed run has a journal");
    let intents: Vec<crate::plan::Intent> = r.in_flight.iter().map(|(_, i)| i.clone()).collect();
    let topo = c.0.topology()?;
    let wait = crate::ops::reconcile::failover_wait(c.0.as_ref(), &topo);
    crate::ops::reconcile::repair(c.0.as_ref(), &intents, &crate::ops::MoveOpts::default(), wait)?;
    for (id, _) in &r.in_flight {
        journal.outcome(*id, None)?;
    }
    Ok(())
}

fn run_usage() -> String {
    let mut s = crate::cli::run_help();
    s.push_str("\nShipped runbooks:\n");
    for (name, summary) in shipped_summaries() {
        s.push_str(&format!("  {name:<16} {summary}\n"));
    }
    s
}

fn describe(name: &str, h: &Header) -> String {
    let mut s = format!("{name}: {}\n", h.summary);
    if !h.description.is_empty() {
        s.push('\n');
    }
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
    // run's options are listed once, by clap, in `runbook run --help`.
    s.push_str("\nOptions: --cluster HOST:PORT, --yes, --dry-run, … (`runbook run --help` lists them all)\n");
    s
}

/// (name, one-line summary) of every shipped runbook.
pub fn shipped_summaries() -> Vec<(String, String)> {
    shipped::SHIPPED
        .iter()
        .map(|(n, src)| ((*n).to_string(), Header::parse(src).map(|h| h.summary).unwrap_or_default()))
        .collect()
}

/// `runbook describe NAME`.
pub fn describe_command(name: &str) -> Result<u8> {
    let (_, source) = shipped::load(name)?;
    let header = Header::parse(&source).map_err(|e| Error::usage(format!("{name}: {e}"), None))?;
    print!("{}", describe(name, &header));
    Ok(exit::OK)
}

/// An engine with the whole API registered, for reference and linting (it connects nowhere).
pub fn reference_engine() -> rhai::Engine {
    engine::build(&Arc::new(Session::new(ClusterConfig::default(), false, Arc::default())))
}

/// The primitives of the API, as registration declares them.
pub fn primitives() -> Vec<primitive::Primitive> {
    api::register(
        &mut rhai::Engine::new_raw(),
        &Arc::new(Session::new(ClusterConfig::default(), false, Arc::default())),
    )
}

/// `runbook functions [NAME]`.
pub fn functions_command(name: Option<&str>) -> Result<u8> {
    let docs = docs::api(&reference_engine());
    if let Some(n) = name
        && !docs.iter().any(|d| d.name == n)
    {
        return Err(Error::usage(format!("no function named `{n}`"), Some("`runbook functions` lists them all")));
    }
    print!("{}", docs::render(&docs, name));
    Ok(exit::OK)
}

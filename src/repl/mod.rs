//! `runbook repl`: an interactive session with the runbooks' engine and API. `c` is the cluster
//! named by `--cluster`; variables and functions persist between inputs; rhai's parser decides
//! when an input is complete; Ctrl-C cancels what is running and keeps the session.

pub mod helper;
pub mod render;

use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use rhai::{AST, Dynamic, Map, Scope};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{CompletionType, Config, Editor};

use crate::config::ClusterConfig;
use crate::error::{Error, Result, exit};
use crate::output::Output;
use crate::script::params::{self, Header};
use crate::script::session::Session;
use crate::script::types::ClusterHandle;
use crate::script::{docs, engine, shipped};
use helper::{RbHelper, Words};

const PROPERTIES: &[&str] = &[
    "id",
    "addr",
    "host",
    "port",
    "role",
    "is_master",
    "is_replica",
    "master_id",
    "slots",
    "failed",
    "kind",
    "keys",
    "is_empty",
    "note",
    "moves",
    "healthy",
    "problems",
    "fingerprint",
    "masters",
    "message",
    "code",
];

struct Repl {
    session: Arc<Session>,
    engine: rhai::Engine,
    scope: Scope<'static>,
    main_ast: AST,
    live: Option<ClusterHandle>,
    words: Arc<RwLock<Words>>,
    docs: Vec<docs::FnDoc>,
}

pub fn run(cluster: ClusterConfig, out: &Arc<Output>) -> Result<u8> {
    let seed_given = cluster.seed.is_some();
    let mut session = Session::new(cluster, false, out.clone());
    session.interactive = true;
    session.holder = crate::live::Holder::me("repl", &std::process::id().to_string());
    let session = Arc::new(session);
    session.runtime()?;
    let engine = engine::build(&session);
    let docs = docs::api(&engine);
    let mut repl = Repl {
        session: session.clone(),
        scope: Scope::new(),
        main_ast: AST::empty(),
        live: None,
        words: Arc::new(RwLock::new(Words::default())),
        docs,
        engine,
    };
    repl.scope.push("params", Map::new());
    if seed_given {
        let c = session.cluster(None)?;
        println!("connected to {}; `c` is the cluster. :help lists what you can do, Ctrl-D leaves.", c.0.name());
        repl.scope.push("c", c.clone());
        repl.live = Some(c);
    } else {
        println!("no cluster given: `let c = cluster(\"host:port\");` connects. :help lists what you can do.");
    }
    repl.refresh_words();

    let config = Config::builder()
        .auto_add_history(false)
        .history_ignore_space(true)
        .completion_type(CompletionType::List)
        .build();
    let mut rl: Editor<RbHelper, DefaultHistory> = Editor::with_config(config)
        .map_err(|e| Error::Io { context: "starting the line editor".into(), reason: e.to_string() })?;
    rl.set_helper(Some(RbHelper::new(repl.words.clone())));
    let history = crate::state_dir::state_dir().join("history");
    let _ = std::fs::create_dir_all(crate::state_dir::state_dir());
    let _ = rl.load_history(&history);
    loop {
        let prompt = if session.is_dry_run() { "runbook (dry run)> " } else { "runbook> " };
        match rl.readline(prompt) {
            Ok(line) if line.trim().is_empty() => {}
            Ok(line) => {
                let _ = rl.add_history_entry(line.as_str());
                let _ = rl.save_history(&history);
                if let Some(meta) = line.trim().strip_prefix(':') {
                    if repl.meta(meta) {
                        break;
                    }
                } else {
                    repl.eval(&line);
                }
                repl.refresh_words();
            }
            Err(ReadlineError::Interrupted) => {}
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(Error::Io { context: "reading input".into(), reason: e.to_string() }),
        }
    }
    Ok(exit::OK)
}

impl Repl {
    fn eval(&mut self, input: &str) {
        self.session.cancel.store(false, Ordering::SeqCst);
        self.session.begin_command();
        let result = match self.engine.compile_with_scope(&self.scope, input) {
            Err(e) => Err(engine::to_error(e.into(), "<repl>", input)),
            Ok(ast) => {
                // Functions defined earlier stay; statements run once.
                self.main_ast += ast;
                let r = self.engine.eval_ast_with_scope::<Dynamic>(&mut self.scope, &self.main_ast);
                self.main_ast.clear_statements();
                r.map_err(|e| engine::to_error(*e, "<repl>", input))
            }
        };
        self.session.cancel.store(false, Ordering::SeqCst);
        // Each line is a command of its own: its error says whether it changed the cluster.
        let result = result.map_err(|e| if self.session.changed() { e.after_changes() } else { e.before_changes() });
        match result {
            Ok(v) => {
                if let Some(text) = render::render(&v) {
                    println!("{text}");
                }
            }
            Err(Error::Cancelled) => eprintln!("cancelled"),
            Err(e) => eprint!("{}", e.render()),
        }
    }

    /// Runs a `:command`; true to leave.
    fn meta(&mut self, cmd: &str) -> bool {
        let mut parts = cmd.split_whitespace();
        match parts.next().unwrap_or_default() {
            "q" | "quit" | "exit" => return true,
            #[allow(clippy::single_match_else)] // two cases read better as a match
            "help" | "h" => match parts.next() {
                Some(name) => {
                    let text = docs::render(&self.docs, Some(name));
                    if text.is_empty() {
                        eprintln!("no function named `{name}` (:help lists them)");
                    } else {
                        print!("{text}");
                    }
                }
                None => {
                    println!("Functions (`:help NAME` for one in full; `c` is the cluster):");
                    let mut seen = std::collections::BTreeSet::new();
                    for d in &self.docs {
                        if seen.insert(d.name.clone()) {
                            println!("  {:<16} {}", d.name, d.doc);
                        }
                    }
                    println!(
                        "Commands:\n  :help [NAME]          this list, or one function\n  :load FILE [--p v]    run a runbook into the session\n  :dry-run on|off       simulate `c` (nothing is changed) or go back to the live cluster\n  :quit                 leave (or Ctrl-D)"
                    );
                }
            },
            "load" => {
                let args: Vec<String> = parts.map(str::to_string).collect();
                if let Err(e) = self.load(&args) {
                    eprint!("{}", e.render());
                }
            }
            "dry-run" => match (parts.next(), self.live.clone()) {
                (Some("on"), Some(live)) => match self.session.simulate(&live) {
                    Ok(sim) => {
                        self.session.dry_run.store(true, Ordering::SeqCst);
                        self.scope.set_value("c", sim);
                        println!("dry run on: `c` is a simulation of {}; nothing will be changed", live.0.name());
                    }
                    Err(e) => eprint!("{}", e.render()),
                },
                (Some("off"), Some(live)) => {
                    self.session.dry_run.store(false, Ordering::SeqCst);
                    for report in self.session.dry_run_reports(crate::output::colour_stdout()) {
                        print!("{report}");
                    }
                    self.scope.set_value("c", live);
                    println!("dry run off: `c` is the live cluster again");
                }
                (_, None) => eprintln!("no cluster to simulate: start the REPL with --cluster"),
                _ => eprintln!("use :dry-run on or :dry-run off"),
            },
            other => eprintln!("unknown command `:{other}` (:help lists them)"),
        }
        false
    }

    /// `:load FILE [--param value …]`: the runbook runs in this session, so its functions and
    /// variables stay.
    fn load(&mut self, args: &[String]) -> Result<()> {
        let Some((name, given)) = args.split_first().filter(|(n, _)| !n.starts_with('-')) else {
            return Err(Error::usage(":load needs a runbook", Some(":load decommission --node 6397")));
        };
        let given = params::given(given)?;
        let (path, source) = shipped::load(name)?;
        let header = Header::parse(&source).map_err(|e| Error::usage(format!("{path}: {e}"), None))?;
        let params = header.bind(name, &given)?;
        self.scope.set_value("params", params);
        let ast = self
            .engine
            .compile_with_scope(&self.scope, &source)
            .map_err(|e| engine::to_error(e.into(), &path, &source))?;
        self.session.cancel.store(false, Ordering::SeqCst);
        self.session.begin_command();
        self.main_ast += ast;
        // Its imports come from its own directory, as in `runbook run`; the session's from here.
        engine::confine_imports(&mut self.engine, engine::runbook_dir(name).as_deref());
        let r = self.engine.run_ast_with_scope(&mut self.scope, &self.main_ast);
        engine::confine_imports(&mut self.engine, std::env::current_dir().ok().as_deref());
        self.main_ast.clear_statements();
        r.map_err(|e| engine::to_error(*e, &path, &source))
    }

    fn refresh_words(&self) {
        let functions = docs::function_names(&self.engine, &self.main_ast);
        let variables = self.scope.iter().map(|(n, _, _)| n.to_string()).collect();
        let nodes = self
            .live
            .as_ref()
            .and_then(|c| c.0.topology().ok())
            .map(|t| {
                t.nodes()
                    .iter()
                    .flat_map(|n| [n.addr.to_string(), n.addr.port.to_string(), n.id[..8.min(n.id.len())].to_string()])
                    .collect()
            })
            .unwrap_or_default();
        let mut w = self.words.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        *w = Words { functions, properties: PROPERTIES.iter().map(|p| (*p).to_string()).collect(), variables, nodes };
    }
}

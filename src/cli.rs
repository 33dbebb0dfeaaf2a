//! Command-line arguments as clap sees them. `config` turns them into validated settings.

use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "runbook", version, about = "Safe, scriptable scale-in for Redis Cluster and Valkey", long_about = None)]
pub struct Arguments {
    #[command(subcommand)]
    pub command: Command,
}

/// How to reach the cluster. Every command that talks to a cluster takes these.
#[derive(Args, Debug, Clone, Default)]
pub struct ClusterArgs {
    /// Any node of the cluster, as HOST:PORT (or just PORT for 127.0.0.1), or a profile's name
    /// (`runbook profiles` lists them).
    #[arg(long, short = 'c', env = "RUNBOOK_CLUSTER", value_name = "HOST:PORT|PROFILE")]
    pub cluster: Option<String>,
    /// ACL user to authenticate as.
    #[arg(long, env = "RUNBOOK_USER", value_name = "USER")]
    pub user: Option<String>,
    /// Password (prefer the REDISCLI_AUTH environment variable: a flag shows in `ps`).
    #[arg(long, env = "REDISCLI_AUTH", hide_env_values = true, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Connect with TLS.
    #[arg(long, env = "RUNBOOK_TLS", value_parser = clap::builder::FalseyValueParser::new())]
    pub tls: bool,
    /// CA certificate (PEM) to trust; implies --tls.
    #[arg(long, env = "RUNBOOK_CACERT", value_name = "FILE")]
    pub cacert: Option<std::path::PathBuf>,
    /// Client certificate (PEM) for mutual TLS; needs --key.
    #[arg(long, env = "RUNBOOK_CERT", value_name = "FILE")]
    pub cert: Option<std::path::PathBuf>,
    /// Client private key (PEM) for mutual TLS; needs --cert.
    #[arg(long, env = "RUNBOOK_KEY", value_name = "FILE")]
    pub key: Option<std::path::PathBuf>,
    /// The flags above whose value came from their environment variable, not the command line:
    /// a profile's setting wins over the environment's, a typed flag over the profile's.
    #[arg(skip)]
    pub from_env: Vec<String>,
}

impl ClusterArgs {
    /// Whether `flag` (a field's name) was given on the command line, or set in code.
    pub fn typed(&self, flag: &str) -> bool {
        !self.from_env.iter().any(|f| f == flag)
    }
}

/// The arguments, parsed, with each command's record of which cluster flags came from the
/// environment (clap knows; the derived struct does not keep it).
pub fn parse(args: Vec<std::ffi::OsString>) -> Result<Arguments, clap::Error> {
    let matches = Arguments::command().try_get_matches_from(args)?;
    let mut parsed = Arguments::from_arg_matches(&matches)?;
    if let (Some((_, sub)), Some(cluster)) = (matches.subcommand(), parsed.command.cluster_args_mut()) {
        cluster.from_env = ["cluster", "user", "password", "tls", "cacert", "cert", "key"]
            .into_iter()
            .filter(|id| sub.value_source(id) == Some(ValueSource::EnvVariable))
            .map(String::from)
            .collect();
    }
    Ok(parsed)
}

/// `runbook run`'s own options (clap reads them wherever they are: see `run_options_first`),
/// the runbook, and the runbook's parameters as typed, which its header's declarations read.
#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Run against a simulation of the cluster, read once; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// This help; after a runbook, the runbook's parameters.
    #[arg(long, short = 'h')]
    pub help: bool,
    /// JSON-lines events on stdout; human output goes to stderr.
    #[arg(long)]
    pub json: bool,
    /// Where to journal the run (default: the state directory).
    #[arg(long, value_name = "PATH")]
    pub journal: Option<std::path::PathBuf>,
    /// A runbook parameter, for a value that starts with -.
    #[arg(long = "param", short = 'p', value_name = "NAME=VALUE", value_parser = name_value)]
    pub param: Vec<(String, String)>,
    /// Apply a reviewed plan exactly (no prompt); refused if the cluster changed since.
    #[arg(long, value_name = "FILE")]
    pub plan: Option<String>,
    /// No progress lines.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// How long one MIGRATE pipeline may hold the source, whose other clients wait meanwhile
    /// (default 1; 0: no budget, about 1 MiB per MIGRATE).
    #[arg(long, value_name = "MS", value_parser = pause_ms, allow_negative_numbers = true)]
    pub max_pause: Option<std::time::Duration>,
    /// Move at most KEYS keys per second.
    #[arg(long, value_name = "KEYS", value_parser = keys_per_second)]
    pub rate_limit: Option<u64>,
    /// With --dry-run: write the run's decisions to FILE for review.
    #[arg(long, value_name = "FILE")]
    pub save_plan: Option<String>,
    /// Wait up to SECS (default 30) for a state that settles by itself (a replica syncing, a
    /// failover under way) before a gate refuses.
    #[arg(long, value_name = "SECS", value_parser = settle_secs)]
    pub settle: Option<u64>,
    /// Answer yes to confirm().
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// A shipped runbook's name or a path to a .rhai file.
    #[arg(value_parser = RunbookName, hide_possible_values = true)]
    pub runbook: Option<String>,
    /// The runbook's parameters, as typed: --name value, --name=value, a bare --flag (true).
    #[arg(last = true, hide = true)]
    pub params: Vec<String>,
}

fn name_value(text: &str) -> Result<(String, String), String> {
    let (k, v) = text.split_once('=').ok_or_else(|| format!("-p takes NAME=VALUE, not `{text}`"))?;
    Ok((k.replace('-', "_"), v.to_string()))
}

fn keys_per_second(text: &str) -> Result<u64, String> {
    text.parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("--rate-limit takes a number of keys per second, not `{text}`"))
}

fn pause_ms(text: &str) -> Result<std::time::Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|ms| (0.0..=10_000.0).contains(ms))
        .map(|ms| std::time::Duration::from_secs_f64(ms / 1000.0))
        .ok_or_else(|| format!("--max-pause takes milliseconds from 0 to 10000 (0: no budget), not `{text}`"))
}

fn age(text: &str) -> Result<std::time::Duration, String> {
    let unit = |c: char| match c {
        's' => Some(1),
        'm' => Some(60),
        'h' => Some(3600),
        'd' => Some(86400),
        _ => None,
    };
    text.char_indices()
        .last()
        .and_then(|(i, c)| Some((text[..i].parse::<u64>().ok()?, unit(c)?)))
        .and_then(|(n, secs)| n.checked_mul(secs))
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("--older-than takes a number and s, m, h or d (`90m`, `30d`), not `{text}`"))
}

/// A runbook argument: any text (a path is read as one), offered with the shipped runbooks'
/// names, so shell completions list them without refusing a path.
#[derive(Clone, Debug)]
struct RunbookName;

impl clap::builder::TypedValueParser for RunbookName {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        clap::builder::StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            crate::shipped::SHIPPED
                .iter()
                .map(|(name, src)| clap::builder::PossibleValue::new(*name).help(crate::shipped::first_line(src))),
        ))
    }
}

fn settle_secs(text: &str) -> Result<u64, String> {
    text.parse().map_err(|_| format!("--settle takes a number of seconds (0 to refuse at once), not `{text}`"))
}

/// Whether `next`, after a runbook's `--name`, is its value: a word, or a negative number
/// (`--offset -3`); anything else starting with `-` is the next option.
pub fn is_param_value(next: &str) -> bool {
    !next.starts_with('-') || next.parse::<f64>().is_ok()
}

/// `run`'s options as clap knows them: (long, short, whether it takes a value).
fn run_options() -> Vec<(Option<String>, Option<char>, bool)> {
    RunArgs::augment_args(clap::Command::new("run"))
        .get_arguments()
        .filter(|a| !a.is_positional())
        .map(|a| (a.get_long().map(str::to_string), a.get_short(), a.get_action().takes_values()))
        .collect()
}

/// `runbook run --help`: clap's own help for `run`, options and all.
pub fn run_help() -> String {
    let mut cmd = Arguments::command();
    let run = cmd.find_subcommand_mut("run").expect("`run` is a subcommand").clone();
    run.bin_name("runbook run").render_help().to_string()
}

/// The names a runbook cannot give its parameters: `run`'s own options, as `params.name`.
pub fn reserved_param_names() -> Vec<String> {
    run_options().into_iter().filter_map(|(long, _, _)| long).map(|l| l.replace('-', "_")).collect()
}

/// Operators type `run`'s options anywhere (`runbook run decommission --node 6397 --yes`), but
/// clap stops reading options at the runbook's unknown `--node`. This moves `run`'s options in
/// front of the runbook and puts the runbook's parameters after `--`, so clap reads the whole
/// command line, by its own definition of the options. Other commands pass unchanged.
pub fn run_options_first(args: Vec<std::ffi::OsString>) -> crate::error::Result<Vec<std::ffi::OsString>> {
    if args.get(1).is_none_or(|a| a != "run") {
        return Ok(args);
    }
    let words = run_words(&args[2..])?;
    let mut out: Vec<std::ffi::OsString> = args[..2].to_vec();
    out.extend(words.options);
    out.extend(words.runbook);
    if !words.params.is_empty() {
        out.push("--".into());
        out.extend(words.params);
    }
    Ok(out)
}

/// The words after `runbook run`, told apart: `run`'s own options (with their values), the
/// runbook, and the runbook's parameters (with theirs).
#[derive(Debug, Default)]
pub struct RunWords {
    pub options: Vec<std::ffi::OsString>,
    pub runbook: Option<std::ffi::OsString>,
    pub params: Vec<std::ffi::OsString>,
}

/// Splits the words after `runbook run` by `run`'s own option definitions (see `run_options_first`).
pub fn run_words(words: &[std::ffi::OsString]) -> crate::error::Result<RunWords> {
    let known = run_options();
    let by_long = |l: &str| known.iter().find(|(long, _, _)| long.as_deref() == Some(l)).map(|o| o.2);
    let by_short = |c: char| known.iter().find(|(_, short, _)| *short == Some(c)).map(|o| o.2);
    let mut rest = words.iter().peekable();
    let (mut options, mut runbook, mut params) = (Vec::new(), None, Vec::new());
    while let Some(arg) = rest.next() {
        let Some(text) = arg.to_str() else {
            if runbook.is_none() {
                runbook = Some(arg.clone());
            } else {
                params.push(arg.clone());
            }
            continue;
        };
        // Whether `text` is one of run's options, and whether its value is the next argument.
        let option = if let Some(long) = text.strip_prefix("--").filter(|l| !l.is_empty()) {
            let (name, inline) = long.split_once('=').map_or((long, false), |(n, _)| (n, true));
            by_long(name).map(|takes| takes && !inline)
        } else if let Some(shorts) = text.strip_prefix('-').filter(|s| !s.is_empty()) {
            let mut chars = shorts.chars();
            match chars.next().and_then(by_short) {
                Some(true) => Some(chars.as_str().is_empty()),
                Some(false) => chars.all(|c| by_short(c) == Some(false)).then_some(false),
                None => None,
            }
        } else {
            None
        };
        match option {
            Some(needs_next) => {
                options.push(arg.clone());
                if needs_next {
                    let value = rest.next().ok_or_else(|| {
                        crate::error::Error::usage(
                            format!("{} needs a value", text.split('=').next().unwrap_or(text)),
                            None,
                        )
                    })?;
                    options.push(value.clone());
                }
            }
            None if text == "--" => {}
            None if runbook.is_none() && !text.starts_with('-') => runbook = Some(arg.clone()),
            None => {
                params.push(arg.clone());
                // A parameter's value stays with it, even before the runbook.
                if text.starts_with("--")
                    && !text.contains('=')
                    && let Some(v) = rest.next_if(|v| v.to_str().is_none_or(is_param_value))
                {
                    params.push(v.clone());
                }
            }
        }
    }
    Ok(RunWords { options, runbook, params })
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check the cluster's health: coverage, agreement, open slots, failed nodes, per-master load.
    Check {
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Whether a run is changing the cluster right now: who holds its lease, the run's progress
    /// (from its journal, when it runs on this host), and the open slots.
    Status {
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a runbook: `runbook run decommission --node 6397 [--yes] [--cluster HOST:PORT]`.
    ///
    /// Options may come before or after the runbook; every other --name value after it becomes
    /// `params.name`. `runbook run NAME --help` lists the runbook's parameters.
    #[command(disable_help_flag = true, override_usage = "runbook run [OPTIONS] <RUNBOOK> [--PARAM VALUE ...]")]
    Run(RunArgs),
    /// List the shipped runbooks.
    List,
    /// A runbook's purpose and parameters, from its header.
    Describe {
        /// A shipped runbook's name or a path.
        #[arg(value_parser = RunbookName, hide_possible_values = true)]
        runbook: String,
    },
    /// The script API: every function with its signature and documentation.
    Functions {
        /// Only this function.
        name: Option<String>,
    },
    /// Check a runbook without running it: syntax, declared parameters, unknown functions.
    Lint {
        /// A shipped runbook's name or a path.
        #[arg(value_parser = RunbookName, hide_possible_values = true)]
        runbook: String,
    },
    /// An interactive session on a live cluster, with the runbooks' API (`c` is the cluster).
    Repl {
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// List journaled runs, or show one (by file name or path); `prune` removes old ones.
    #[command(args_conflicts_with_subcommands = true)]
    Journal {
        #[command(subcommand)]
        action: Option<JournalAction>,
        /// A journal file name (from the list) or path.
        run: Option<String>,
    },
    /// Close slots left open (MIGRATING/IMPORTING) by a tool that died, explaining each decision;
    /// then make every node forget the removed nodes that some node knows again.
    ///
    /// A runbook run that died is better finished by running the same command again: its
    /// journal names the intended owner of every slot it left open.
    Fix {
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Saved plans (`runbook run … --dry-run --save-plan FILE`): review one before applying it
    /// with `runbook run --plan FILE`.
    Plan {
        #[command(subcommand)]
        action: PlanAction,
    },
    /// A throwaway local cluster of real redis-server processes, for practice.
    Sandbox {
        #[command(subcommand)]
        action: SandboxAction,
    },
    /// Print a shell completion script on stdout, e.g.
    /// `runbook completions bash > ~/.local/share/bash-completion/completions/runbook`.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) on stdout: `runbook man | man -l -`.
    Man,
    /// List the cluster profiles (`--cluster NAME`) of the config file: seeds, user, TLS, and
    /// where each password comes from.
    Profiles,
}

impl Command {
    /// How the command reaches a cluster, for one that does.
    pub fn cluster_args_mut(&mut self) -> Option<&mut ClusterArgs> {
        match self {
            Command::Check { cluster, .. } | Command::Repl { cluster } | Command::Fix { cluster } => Some(cluster),
            Command::Run(r) => Some(&mut r.cluster),
            _ => None,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum JournalAction {
    /// Remove the journals of runs that are over and older than an age (by their last write);
    /// never one whose run a re-run would resume.
    Prune {
        /// How old a journal must be: a number and s, m, h or d (`90m`, `30d`).
        #[arg(long, value_name = "AGE", default_value = "30d", value_parser = age)]
        older_than: std::time::Duration,
        /// List what would be removed; remove nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum PlanAction {
    /// Print a plan for review: the runbook and parameters, each decision, and what changes.
    Show {
        /// The file `--save-plan` wrote.
        file: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum SandboxAction {
    /// Start redis-server processes on loopback and form a cluster.
    Up(SandboxUp),
    /// Show the sandbox's processes and the cluster's health.
    Status,
    /// Stop exactly the processes `up` started and remove their files.
    Down,
}

#[derive(Args, Debug, Clone)]
pub struct SandboxUp {
    /// Number of masters.
    #[arg(long, default_value_t = 4)]
    pub masters: usize,
    /// Replicas per master.
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
    /// First port; nodes take consecutive ports, each master followed by its replicas
    /// (the defaults give the seed's layout: 6391 master, 6392 its replica, … 6397, 6398).
    #[arg(long, default_value_t = 6391)]
    pub base_port: u16,
    /// Sample keys to load.
    #[arg(long, default_value_t = 0)]
    pub keys: u64,
    /// Bytes per sample value.
    #[arg(long, default_value_t = 32)]
    pub value_size: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reordered(args: &[&str]) -> crate::error::Result<Vec<String>> {
        let args = ["runbook", "run"].iter().chain(args).map(std::ffi::OsString::from).collect();
        Ok(run_options_first(args)?.into_iter().map(|a| a.into_string().unwrap()).collect())
    }

    #[test]
    fn run_options_may_come_anywhere() {
        let a = reordered(&["decommission", "--node", "6397", "--yes", "--cluster", "h:1"]).unwrap();
        assert_eq!(a, ["runbook", "run", "--yes", "--cluster", "h:1", "decommission", "--", "--node", "6397"]);
        let b = reordered(&["-yq", "-c", "h:1", "x", "--offset", "-3", "--rate-limit=5", "-pa=-1"]).unwrap();
        assert_eq!(b, ["runbook", "run", "-yq", "-c", "h:1", "--rate-limit=5", "-pa=-1", "x", "--", "--offset", "-3"]);
        // A parameter before the runbook keeps its value; the runbook is the next word.
        let c = reordered(&["--node", "6397", "decommission", "-x"]).unwrap();
        assert_eq!(c, ["runbook", "run", "decommission", "--", "--node", "6397", "-x"]);
        assert!(reordered(&["x", "--cluster"]).unwrap_err().to_string().contains("--cluster needs a value"));
        let run = |a: &[&str]| match Arguments::try_parse_from(reordered(a).unwrap()).unwrap().command {
            Command::Run(r) => r,
            _ => unreachable!(),
        };
        let r = run(&["decommission", "--node=1", "--dry-run", "--settle", "0", "-p", "label=-x"]);
        assert!(r.dry_run);
        assert_eq!(
            (r.runbook.as_deref(), r.params, r.settle),
            (Some("decommission"), vec!["--node=1".into()], Some(0))
        );
        assert_eq!(r.param, [("label".to_string(), "-x".to_string())]);
        assert!(reserved_param_names().contains(&"dry_run".to_string()));
        assert!(!reserved_param_names().contains(&"runbook".to_string()));
    }
}

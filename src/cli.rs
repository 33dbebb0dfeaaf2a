//! Command-line arguments as clap sees them. `config` turns them into validated settings.

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "runbook", version, about = "Safe, scriptable scale-in for Redis Cluster and Valkey", long_about = None)]
pub struct Arguments {
    #[command(subcommand)]
    pub command: Command,
}

/// How to reach the cluster. Every command that talks to a cluster takes these.
#[derive(Args, Debug, Clone, Default)]
pub struct ClusterArgs {
    /// Any node of the cluster, as HOST:PORT (or just PORT for 127.0.0.1).
    #[arg(long, short = 'c', env = "RUNBOOK_CLUSTER", value_name = "HOST:PORT")]
    pub cluster: Option<String>,
    /// ACL user to authenticate as.
    #[arg(long, env = "RUNBOOK_USER", value_name = "USER")]
    pub user: Option<String>,
    /// Password (prefer the REDISCLI_AUTH environment variable: a flag shows in `ps`).
    #[arg(long, env = "REDISCLI_AUTH", hide_env_values = true, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// Connect with TLS.
    #[arg(long, env = "RUNBOOK_TLS")]
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
    /// Run a runbook: `runbook run decommission --node 6397 [--yes] [--cluster HOST:PORT]`.
    ///
    /// Runbook options (--cluster, --user, --password, --yes) may come before or after the
    /// runbook; every other --name value becomes `params.name`. `runbook run NAME --help` lists
    /// the runbook's parameters.
    #[command(disable_help_flag = true)]
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0.., value_name = "ARGS")]
        args: Vec<String>,
    },
    /// List the shipped runbooks.
    List,
    /// A runbook's purpose and parameters, from its header.
    Describe {
        /// A shipped runbook's name or a path.
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
        runbook: String,
    },
    /// An interactive session on a live cluster, with the runbooks' API (`c` is the cluster).
    Repl {
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// List journaled runs, or show one (by file name or path).
    Journal {
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

//! Validated settings, built from the raw arguments before anything touches a cluster.

use std::fmt;
use std::path::PathBuf;

use crate::cli::{ClusterArgs, RunArgs};
use crate::error::{Error, Result};
use crate::model::Addr;

/// Username and password for AUTH and for MIGRATE's AUTH/AUTH2, and TLS settings. `Debug`
/// never shows the password or a key.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub user: Option<String>,
    pub password: Option<String>,
    pub tls: Option<Tls>,
}

/// TLS to the nodes: the CA to trust (else the system's), and a client certificate for mutual TLS.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Tls {
    pub ca_pem: Option<Vec<u8>>,
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Credentials {{ user: {:?}, password: {} }}",
            self.user,
            if self.password.is_some() { "<redacted>" } else { "none" }
        )
    }
}

/// Where the cluster is and how to log in. The seed is `None` when no `--cluster` (nor
/// `RUNBOOK_CLUSTER`) was given: a runbook may still name one with `cluster("host:port")`.
#[derive(Clone, Debug, Default)]
pub struct ClusterConfig {
    pub seed: Option<Addr>,
    pub creds: Credentials,
}

impl ClusterConfig {
    pub fn from_args(args: &ClusterArgs) -> Result<Self> {
        Ok(Self {
            seed: args.cluster.as_deref().map(parse_seed).transpose()?,
            creds: Credentials { user: args.user.clone(), password: args.password.clone(), tls: tls(args)? },
        })
    }

    /// The seed, for a command that cannot do without one.
    pub fn seed(&self) -> Result<&Addr> {
        self.seed.as_ref().ok_or(Error::NoCluster)
    }
}

/// Everything `runbook run` was told, checked once before anything connects, then handed down.
/// (How it reports, `--quiet` and `--json`, is the run's `Output`.)
#[derive(Clone, Debug, Default)]
pub struct RunConfig {
    pub cluster: ClusterConfig,
    pub dry_run: bool,
    /// `--yes`, or a reviewed plan: the review was the confirmation.
    pub yes: bool,
    pub journal: Option<PathBuf>,
    pub rate_limit: Option<u64>,
    /// `--max-pause`: how long one MIGRATE pipeline may hold the source.
    pub max_pause: Option<std::time::Duration>,
    /// How long the preflight gates wait for a transient state to settle.
    pub settle: Option<u64>,
    /// `--save-plan FILE`: write a dry run's decisions for review.
    pub save_plan: Option<String>,
}

impl RunConfig {
    pub fn from_args(args: &RunArgs) -> Result<Self> {
        if args.save_plan.is_some() && !args.dry_run {
            return Err(Error::usage(
                "--save-plan records a dry run's decisions: add --dry-run",
                Some("then review the plan with `runbook plan show FILE` and apply it with `runbook run --plan FILE`"),
            ));
        }
        Ok(Self {
            cluster: ClusterConfig::from_args(&args.cluster)?,
            dry_run: args.dry_run,
            yes: args.yes,
            journal: args.journal.clone(),
            rate_limit: args.rate_limit,
            max_pause: args.max_pause,
            settle: args.settle,
            save_plan: args.save_plan.clone(),
        })
    }
}

/// TLS settings from `--tls`, `--cacert`, `--cert`, `--key`, with the files read now, so a
/// missing file is reported before anything connects.
fn tls(args: &ClusterArgs) -> Result<Option<Tls>> {
    if !args.tls && args.cacert.is_none() && args.cert.is_none() && args.key.is_none() {
        return Ok(None);
    }
    let read = |p: &std::path::Path, what: &str| {
        std::fs::read(p).map_err(|e| {
            Error::usage(
                format!("cannot read the {what} {}: {e}", p.display()),
                Some("give a PEM file that exists and is readable"),
            )
        })
    };
    let ca_pem = args.cacert.as_deref().map(|p| read(p, "CA certificate")).transpose()?;
    let client = match (&args.cert, &args.key) {
        (Some(c), Some(k)) => Some((read(c, "client certificate")?, read(k, "client key")?)),
        (None, None) => None,
        _ => return Err(Error::usage("--cert and --key go together", Some("give both for mutual TLS, or neither"))),
    };
    Ok(Some(Tls { ca_pem, client }))
}

/// `host:port`, `[v6]:port`, or a bare port meaning 127.0.0.1.
pub fn parse_seed(text: &str) -> Result<Addr> {
    let text = text.trim().trim_start_matches("redis://");
    if let Ok(port) = text.parse::<u16>() {
        return Ok(Addr::new("127.0.0.1", port));
    }
    match Addr::parse(text) {
        Ok(a) if !a.host.is_empty() && a.port != 0 => Ok(a),
        _ => Err(Error::usage(
            format!("`{text}` is not a node address"),
            Some("give HOST:PORT of any node, e.g. --cluster 10.0.0.5:6379 (or just a port for 127.0.0.1)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds() {
        assert_eq!(parse_seed("6391").unwrap().to_string(), "127.0.0.1:6391");
        assert_eq!(parse_seed("10.0.0.5:6379").unwrap().to_string(), "10.0.0.5:6379");
        assert_eq!(parse_seed("[::1]:7000").unwrap().to_string(), "[::1]:7000");
        assert!(parse_seed("nowhere").is_err());
        assert!(parse_seed("host:99999").is_err());
    }
}

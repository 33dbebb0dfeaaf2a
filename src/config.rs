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
    /// A profile's later seeds, in order: each tried when those before it cannot be reached.
    pub more_seeds: Vec<Addr>,
    pub creds: Credentials,
}

impl ClusterConfig {
    /// `--cluster` as a node address, else as a profile of the profile file (read only then, so
    /// an address works whatever state that file is in).
    pub fn from_args(args: &ClusterArgs) -> Result<Self> {
        match args.cluster.as_deref() {
            Some(name) if parse_seed(name).is_err() => {
                let profiles = crate::profiles::Profiles::load()?;
                match profiles.as_ref().and_then(|p| p.get(name.trim())) {
                    Some(profile) => Self::from_profile(args, profile),
                    None => Err(unknown_cluster(name, profiles.as_ref())),
                }
            }
            _ => Self::from_flags(args),
        }
    }

    fn from_flags(args: &ClusterArgs) -> Result<Self> {
        Ok(Self {
            seed: args.cluster.as_deref().map(parse_seed).transpose()?,
            more_seeds: Vec::new(),
            creds: Credentials { user: args.user.clone(), password: args.password.clone(), tls: tls(args)? },
        })
    }

    /// A profile's settings, under the flags typed on the command line. The password is
    /// fetched only when no typed `--password` makes it unneeded.
    pub fn from_profile(args: &ClusterArgs, profile: &crate::profiles::Profile) -> Result<Self> {
        let merged = merge(args, profile);
        let password = match &profile.password {
            Some(source) if !(args.password.is_some() && args.typed("password")) => Some(source.fetch(&profile.name)?),
            _ => args.password.clone(),
        };
        let mut seeds = profile.seeds.iter().cloned();
        Ok(Self {
            seed: seeds.next(),
            more_seeds: seeds.collect(),
            creds: Credentials { user: merged.user.clone(), password, tls: tls(&merged)? },
        })
    }

    /// The seed, for a command that cannot do without one.
    pub fn seed(&self) -> Result<&Addr> {
        self.seed.as_ref().ok_or(Error::NoCluster)
    }

    /// `connect` through the first seed that can be reached, in the profile's order; any other
    /// failure (a refused password, a node that is no cluster) is the answer, not a reason to
    /// try the next.
    pub fn reach<T>(&self, mut connect: impl FnMut(&Addr) -> Result<T>) -> Result<T> {
        let mut result = connect(self.seed()?);
        for seed in &self.more_seeds {
            if !matches!(result, Err(Error::Connect { .. })) {
                break;
            }
            result = connect(seed);
        }
        result
    }
}

/// The cluster flags with a profile's settings: a flag typed on the command line wins, then the
/// profile, then the flag's environment variable (ambient, so less specific than a profile named).
fn merge(args: &ClusterArgs, profile: &crate::profiles::Profile) -> ClusterArgs {
    fn pick<T: Clone>(args: &ClusterArgs, flag: &str, typed: Option<&T>, profile: Option<&T>) -> Option<T> {
        match typed {
            Some(v) if args.typed(flag) => Some(v.clone()),
            _ => profile.or(typed).cloned(),
        }
    }
    // A profile's certificate pair replaces the environment's pair as a whole, never half of it.
    let (cert, key) = if args.cert.is_some() && args.typed("cert") || args.key.is_some() && args.typed("key") {
        (args.cert.clone(), args.key.clone())
    } else if profile.cert.is_some() || profile.key.is_some() {
        (profile.cert.clone(), profile.key.clone())
    } else {
        (args.cert.clone(), args.key.clone())
    };
    ClusterArgs {
        user: pick(args, "user", args.user.as_ref(), profile.user.as_ref()),
        tls: args.tls || profile.tls,
        cacert: pick(args, "cacert", args.cacert.as_ref(), profile.cacert.as_ref()),
        cert,
        key,
        ..args.clone()
    }
}

fn unknown_cluster(name: &str, profiles: Option<&crate::profiles::Profiles>) -> Error {
    let path = profiles.map_or_else(crate::profiles::config_path, |p| p.path.clone());
    let names: Vec<&str> = profiles.map(|p| p.clusters.keys().map(String::as_str).collect()).unwrap_or_default();
    let hint = if names.is_empty() {
        format!(
            "give HOST:PORT of any node, e.g. --cluster 10.0.0.5:6379 (or just a port for 127.0.0.1); {} has no profiles",
            path.display()
        )
    } else {
        format!("the profiles in {} are: {}; or give HOST:PORT of any node", path.display(), names.join(", "))
    };
    Error::Usage {
        message: format!("`{}` is not a node address, nor the name of a cluster profile", name.trim()),
        hint: Some(hint),
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

/// Seeds are parsed where profiles are read, the lower of the two modules.
pub use crate::profiles::parse_seed;

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

    fn profile() -> crate::profiles::Profile {
        crate::profiles::Profile {
            name: "prod".into(),
            seeds: vec![parse_seed("10.0.0.5:6379").unwrap(), parse_seed("10.0.0.6:6379").unwrap()],
            user: Some("ops".into()),
            tls: false,
            cacert: Some("/p/ca.crt".into()),
            cert: None,
            key: None,
            password: None,
        }
    }

    #[test]
    fn a_typed_flag_beats_the_profile_which_beats_the_environment() {
        let p = profile();
        let typed = ClusterArgs { user: Some("alice".into()), cacert: Some("/t/ca.crt".into()), ..Default::default() };
        let m = merge(&typed, &p);
        assert_eq!((m.user.as_deref(), m.cacert.as_deref()), (Some("alice"), Some(std::path::Path::new("/t/ca.crt"))));
        let from_env = ClusterArgs { from_env: vec!["user".into(), "cacert".into()], ..typed.clone() };
        let m = merge(&from_env, &p);
        assert_eq!((m.user.as_deref(), m.cacert.as_deref()), (Some("ops"), Some(std::path::Path::new("/p/ca.crt"))));
        // What the profile leaves out, the environment still gives.
        let p = crate::profiles::Profile { user: None, ..profile() };
        assert_eq!(merge(&from_env, &p).user.as_deref(), Some("alice"));
        let tls = ClusterArgs { tls: true, ..Default::default() };
        assert!(merge(&tls, &p).tls && !merge(&ClusterArgs::default(), &p).tls);
    }

    #[test]
    fn a_profiles_password_comes_from_where_it_says_unless_one_is_typed() {
        let p = crate::profiles::Profile {
            password: Some(crate::profiles::PasswordSource::Command("echo from-profile".into())),
            cacert: None,
            ..profile()
        };
        let cfg = ClusterConfig::from_profile(&ClusterArgs::default(), &p).unwrap();
        assert_eq!(cfg.creds.password.as_deref(), Some("from-profile"));
        assert_eq!(cfg.creds.user.as_deref(), Some("ops"));
        assert_eq!(cfg.seed.unwrap().to_string(), "10.0.0.5:6379");
        assert_eq!(cfg.more_seeds.iter().map(ToString::to_string).collect::<Vec<_>>(), ["10.0.0.6:6379"]);
        let env =
            ClusterArgs { password: Some("ambient".into()), from_env: vec!["password".into()], ..Default::default() };
        assert_eq!(ClusterConfig::from_profile(&env, &p).unwrap().creds.password.as_deref(), Some("from-profile"));
        // A typed password wins, and the profile's command is not run at all.
        let failing = crate::profiles::Profile {
            password: Some(crate::profiles::PasswordSource::Command("exit 1".into())),
            cacert: None,
            ..profile()
        };
        let typed = ClusterArgs { password: Some("typed".into()), ..Default::default() };
        assert_eq!(ClusterConfig::from_profile(&typed, &failing).unwrap().creds.password.as_deref(), Some("typed"));
        assert!(!format!("{:?}", ClusterConfig::from_profile(&typed, &failing).unwrap()).contains("typed\""));
    }

    #[test]
    fn seeds_are_tried_in_order_while_unreachable() {
        let p = crate::profiles::Profile { cacert: None, ..profile() };
        let cfg = ClusterConfig::from_profile(&ClusterArgs::default(), &p).unwrap();
        let mut tried = Vec::new();
        let got = cfg.reach(|s| {
            tried.push(s.to_string());
            if s.port == 6379 && s.host == "10.0.0.5" {
                Err(Error::Connect { addr: s.to_string(), reason: "refused".into() })
            } else {
                Ok(s.to_string())
            }
        });
        assert_eq!((got.unwrap(), tried.len()), ("10.0.0.6:6379".to_string(), 2));
        // A refused login is the answer: the next seed is the same cluster.
        let mut tried = 0;
        let got: Result<()> = cfg.reach(|s| {
            tried += 1;
            Err(Error::Auth { addr: s.to_string(), reason: "WRONGPASS".into() })
        });
        assert!(matches!(got, Err(Error::Auth { .. })) && tried == 1);
    }
}

//! Cluster profiles, as kubectl contexts: the config file's `[clusters.NAME]` tables, found,
//! checked (private to its owner, no password written in it) and listed, and a profile's password
//! fetched from where the profile says. Nothing here connects; `config` merges a profile with the
//! flags.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result, exit};
use crate::model::Addr;

/// The profile file: `$RUNBOOK_CONFIG`, else `$XDG_CONFIG_HOME/runbook/config.toml`, else
/// `~/.config/runbook/config.toml`.
pub fn config_path() -> PathBuf {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(p) = var("RUNBOOK_CONFIG") {
        return p;
    }
    let config =
        var("XDG_CONFIG_HOME").unwrap_or_else(|| var("HOME").unwrap_or_else(|| PathBuf::from(".")).join(".config"));
    config.join("runbook/config.toml")
}

/// Where a profile's password comes from. The file names a place, never the password itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PasswordSource {
    /// An environment variable that holds it.
    Env(String),
    /// A shell command that prints it (`pass show redis/prod`, a vault client).
    Command(String),
}

impl PasswordSource {
    /// The password, fetched now. No error carries its text: a failing command is named, and
    /// what it printed is not repeated.
    pub fn fetch(&self, profile: &str) -> Result<String> {
        match self {
            PasswordSource::Env(var) => std::env::var(var).map_err(|_| {
                Error::usage(
                    format!("profile `{profile}` takes its password from ${var}, which is not set"),
                    Some("set it in this shell (`read -rs VAR && export VAR`), or give the profile a password_command"),
                )
            }),
            PasswordSource::Command(command) => {
                let failed = |why: String| {
                    Error::usage(
                        format!("profile `{profile}`: its password_command `{command}` {why}"),
                        Some("run the command yourself to see why; it must print the password on stdout"),
                    )
                };
                // Its stdin and stderr stay the terminal's, so a password manager can ask for a
                // passphrase and say what went wrong; only stdout is the password.
                let out = std::process::Command::new("sh")
                    .arg("-c")
                    .arg(command)
                    .stderr(std::process::Stdio::inherit())
                    .output()
                    .map_err(|e| failed(format!("could not start: {e}")))?;
                if !out.status.success() {
                    return Err(failed(format!("failed ({})", out.status)));
                }
                let text = String::from_utf8(out.stdout).map_err(|_| failed("printed something not UTF-8".into()))?;
                let password = text.trim();
                if password.is_empty() {
                    return Err(failed("printed nothing".into()));
                }
                Ok(password.to_string())
            }
        }
    }
}

impl fmt::Display for PasswordSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordSource::Env(var) => write!(f, "${var}"),
            PasswordSource::Command(command) => write!(f, "command `{command}`"),
        }
    }
}

/// One `[clusters.NAME]` table, checked: addresses parsed, certificate paths made absolute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    pub seeds: Vec<Addr>,
    pub user: Option<String>,
    pub tls: bool,
    pub cacert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub password: Option<PasswordSource>,
}

/// A table as written. `password` is read only to refuse it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    seeds: Vec<String>,
    user: Option<String>,
    #[serde(default)]
    tls: bool,
    cacert: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    password_env: Option<String>,
    password_command: Option<String>,
}

/// The profile file, read and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profiles {
    pub path: PathBuf,
    pub clusters: BTreeMap<String, Profile>,
}

impl Profiles {
    /// The profiles of `config_path()`, or `None` when there is no such file.
    pub fn load() -> Result<Option<Self>> {
        Self::load_from(&config_path())
    }

    pub fn load_from(path: &Path) -> Result<Option<Self>> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("reading the profile file {}", path.display()), &e)),
        };
        check_private(path, std::os::unix::fs::PermissionsExt::mode(&meta.permissions()))?;
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading the profile file {}", path.display()), &e))?;
        Self::parse(path, &text).map(Some)
    }

    /// Parses the file's text; relative certificate paths are taken from the file's directory.
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let bad = |message: String, hint: &str| Error::usage(format!("{}: {message}", path.display()), Some(hint));
        // The parser's own message, never its excerpt of the file: the line may hold a secret.
        let mut top: toml::Table = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(String::new(), |s| format!("line {}: ", text[..s.start].lines().count().max(1)));
            bad(format!("{line}{}", e.message().trim_end()), "the file is TOML: see the README's Cluster profiles")
        })?;
        let clusters = top.remove("clusters").unwrap_or_else(|| toml::Value::Table(toml::Table::new()));
        if let Some(other) = top.keys().next() {
            return Err(bad(
                format!("unknown key `{other}`"),
                "the file holds only [clusters.NAME] tables, one per cluster",
            ));
        }
        let toml::Value::Table(clusters) = clusters else {
            return Err(bad("`clusters` is not a table".into(), "write one [clusters.NAME] table per cluster"));
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut out = BTreeMap::new();
        for (name, value) in clusters {
            let profile = Self::profile(&name, value, dir).map_err(|message| {
                bad(
                    format!("profile `{name}`: {message}"),
                    "see the README's Cluster profiles for the keys a profile takes",
                )
            })?;
            out.insert(name, profile);
        }
        Ok(Self { path: path.to_path_buf(), clusters: out })
    }

    fn profile(name: &str, value: toml::Value, dir: &Path) -> Result<Profile, String> {
        if parse_seed(name).is_ok() {
            return Err("a profile's name must not be a node address: --cluster would read it as one".into());
        }
        let toml::Value::Table(table) = value else {
            return Err("not a table: write [clusters.NAME] and its keys below".into());
        };
        if table.contains_key("password") {
            return Err(
                "a password is never written in the file: give `password_env = \"VAR\"` (a variable that holds it) or `password_command = \"…\"` (a command that prints it)"
                    .into(),
            );
        }
        // serde's message names the key, and quotes at most a non-password value.
        let raw: RawProfile = table.try_into().map_err(|e: toml::de::Error| e.message().trim_end().to_string())?;
        if raw.seeds.is_empty() {
            return Err("`seeds` is empty: list at least one node, as \"HOST:PORT\"".into());
        }
        let seeds = raw
            .seeds
            .iter()
            .map(|s| parse_seed(s).map_err(|_| format!("seed `{s}` is not a node address (HOST:PORT)")))
            .collect::<Result<Vec<_>, _>>()?;
        let password = match (raw.password_env, raw.password_command) {
            (Some(_), Some(_)) => return Err("give password_env or password_command, not both".into()),
            (Some(var), None) => Some(PasswordSource::Env(var)),
            (None, Some(command)) => Some(PasswordSource::Command(command)),
            (None, None) => None,
        };
        let file = |p: Option<PathBuf>| p.map(|p| absolute(&p, dir));
        Ok(Profile {
            name: name.to_string(),
            seeds,
            user: raw.user,
            tls: raw.tls,
            cacert: file(raw.cacert),
            cert: file(raw.cert),
            key: file(raw.key),
            password,
        })
    }

    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.clusters.get(name)
    }

    /// `runbook profiles`: one line per profile, the password's source but never the password.
    pub fn render(&self) -> String {
        let rows: Vec<[String; 5]> = self
            .clusters
            .values()
            .map(|p| {
                [
                    p.name.clone(),
                    p.seeds.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
                    p.user.clone().unwrap_or_else(|| "-".into()),
                    if p.tls || p.cacert.is_some() || p.cert.is_some() { "yes" } else { "no" }.into(),
                    p.password.as_ref().map_or_else(|| "none".into(), ToString::to_string),
                ]
            })
            .collect();
        let header = ["NAME", "SEEDS", "USER", "TLS", "PASSWORD"].map(String::from);
        let widths: Vec<usize> =
            (0..5).map(|i| rows.iter().chain([&header]).map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
        let line = |r: &[String; 5]| {
            let cells: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            format!("{}\n", cells.join("  ").trim_end())
        };
        let mut out = format!("profiles in {}:\n", self.path.display());
        if rows.is_empty() {
            out.push_str("  (none: add a [clusters.NAME] table)\n");
            return out;
        }
        out.push_str(&line(&header));
        for r in &rows {
            out.push_str(&line(r));
        }
        out
    }
}

/// `runbook profiles`.
pub fn list_command() -> Result<u8> {
    match Profiles::load()? {
        Some(profiles) => print!("{}", profiles.render()),
        None => println!(
            "no profiles: {} does not exist (set RUNBOOK_CONFIG to read another file)\n\
             a profile, in that file (chmod 600; the password only by reference):\n\
             \n  [clusters.prod]\n  seeds = [\"10.0.0.5:6379\", \"10.0.0.6:6379\"]\n  user = \"ops\"\n  password_env = \"PROD_REDIS_PASSWORD\"\n\
             \nthen: runbook check --cluster prod",
            config_path().display()
        ),
    }
    Ok(exit::OK)
}

/// As ssh does with its keys: a file that others may read (where a password command or a user
/// name shows) or write (then choose what command runs to fetch a password) is refused.
pub fn check_private(path: &Path, mode: u32) -> Result<()> {
    let group_and_others = mode & 0o077;
    if group_and_others == 0 {
        return Ok(());
    }
    Err(Error::usage(
        format!(
            "the profile file {} has mode {:04o}: others may read or change it, so it is not used",
            path.display(),
            mode & 0o7777
        ),
        Some(&format!("make it private: chmod 600 {}", path.display())),
    ))
}

/// `~/x` from the home directory, a relative path from the profile file's directory.
fn absolute(path: &Path, dir: &Path) -> PathBuf {
    if let (Ok(rest), Some(home)) = (path.strip_prefix("~"), std::env::var_os("HOME")) {
        return PathBuf::from(home).join(rest);
    }
    dir.join(path)
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

    fn parse(text: &str) -> Result<Profiles> {
        Profiles::parse(Path::new("/etc/rb/config.toml"), text)
    }

    #[test]
    fn a_profile_names_seeds_user_tls_and_where_the_password_is() {
        let p = parse(
            r#"
            [clusters.prod]
            seeds = ["10.0.0.5:6379", "10.0.0.6:6379"]
            user = "ops"
            tls = true
            cacert = "ca.crt"
            cert = "~/certs/me.crt"
            key = "/k/me.key"
            password_env = "PROD_PASS"

            [clusters.staging]
            seeds = ["7001"]
            password_command = "pass show redis/staging"
            "#,
        )
        .unwrap();
        let prod = p.get("prod").unwrap();
        assert_eq!(prod.seeds.iter().map(ToString::to_string).collect::<Vec<_>>(), ["10.0.0.5:6379", "10.0.0.6:6379"]);
        assert_eq!((prod.user.as_deref(), prod.tls), (Some("ops"), true));
        assert_eq!(prod.cacert.as_deref(), Some(Path::new("/etc/rb/ca.crt")));
        assert!(prod.cert.as_ref().unwrap().ends_with("certs/me.crt") && !prod.cert.as_ref().unwrap().starts_with("~"));
        assert_eq!(prod.key.as_deref(), Some(Path::new("/k/me.key")));
        assert_eq!(prod.password, Some(PasswordSource::Env("PROD_PASS".into())));
        let staging = p.get("staging").unwrap();
        assert_eq!(staging.seeds[0].to_string(), "127.0.0.1:7001");
        assert!(!staging.tls);
        let listing = p.render();
        assert!(listing.starts_with("profiles in /etc/rb/config.toml:\nNAME "), "{listing}");
        assert!(listing.contains("10.0.0.5:6379,10.0.0.6:6379  ops   yes  $PROD_PASS\n"), "{listing}");
        assert!(listing.contains("command `pass show redis/staging`"), "{listing}");
    }

    #[test]
    fn a_literal_password_is_refused_without_being_repeated() {
        let e = parse("[clusters.prod]\nseeds = [\"h:1\"]\npassword = \"hunter2\"\n").unwrap_err();
        assert_eq!(e.code(), exit::USAGE);
        let text = e.render();
        assert!(text.contains("profile `prod`: a password is never written in the file"), "{text}");
        assert!(text.contains("password_env") && text.contains("password_command"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        // A syntax error on a password's line shows where, not the line.
        let e = parse("[clusters.prod]\npassword_env = \"hunter2\n").unwrap_err().render();
        assert!(e.contains("line 2") && !e.contains("hunter2"), "{e}");
    }

    #[test]
    fn mistakes_in_the_file_are_named() {
        let err = |text: &str| parse(text).unwrap_err().to_string();
        assert!(err("[cluster.prod]\nseeds = [\"h:1\"]\n").contains("unknown key `cluster`"));
        assert!(err("[clusters.prod]\nseeds = [\"h:1\"]\nusr = \"x\"\n").contains("unknown field `usr`"));
        assert!(err("[clusters.prod]\nseeds = []\n").contains("`seeds` is empty"));
        assert!(err("[clusters.prod]\nseeds = [\"nowhere\"]\n").contains("seed `nowhere` is not a node address"));
        assert!(err("[clusters.6379]\nseeds = [\"h:1\"]\n").contains("must not be a node address"));
        assert!(
            err("[clusters.p]\nseeds = [\"h:1\"]\npassword_env = \"A\"\npassword_command = \"b\"\n")
                .contains("not both")
        );
    }

    #[test]
    fn a_file_others_may_read_or_write_is_refused() {
        let path = Path::new("/home/u/.config/runbook/config.toml");
        assert!(check_private(path, 0o100_600).is_ok());
        assert!(check_private(path, 0o100_400).is_ok());
        for mode in [0o100_644, 0o100_620, 0o100_602] {
            let e = check_private(path, mode).unwrap_err();
            assert_eq!(e.code(), exit::USAGE);
            assert!(e.render().contains(&format!("chmod 600 {}", path.display())), "{}", e.render());
        }
        let text = check_private(path, 0o100_644).unwrap_err().to_string();
        assert!(text.contains("/home/u/.config/runbook/config.toml has mode 0644"), "{text}");
    }

    #[test]
    fn a_password_command_prints_it_and_a_failing_one_is_named() {
        let ok = PasswordSource::Command("printf '  s3cret \\n'".into()).fetch("prod").unwrap();
        assert_eq!(ok, "s3cret");
        let e = PasswordSource::Command("echo s3cret; exit 3".into()).fetch("prod").unwrap_err().to_string();
        assert!(e.contains("password_command `echo s3cret; exit 3` failed"), "{e}");
        let e = PasswordSource::Command("true".into()).fetch("prod").unwrap_err().to_string();
        assert!(e.contains("printed nothing"), "{e}");
        let e = PasswordSource::Env("RUNBOOK_TEST_SURELY_UNSET_VAR".into()).fetch("prod").unwrap_err().to_string();
        assert!(e.contains("$RUNBOOK_TEST_SURELY_UNSET_VAR, which is not set"), "{e}");
    }
}

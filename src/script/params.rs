//! Runbook parameters: declared in the runbook's header, given as `--name value` on the command
//! line, checked before anything connects.
//!
//! ```text
//! //! Decommission a master …            <- first line: the summary
//! //! @param node      required  The master to remove.
//! //! @param rebalance true      Rebalance afterwards.
//! //! @param replicas  "remove"|"rehome"  Their fate: the first is the default, only these are accepted.
//! ```

use rhai::{Dynamic, Map};

use crate::error::{Error, Result};

/// Words rhai keeps for itself: `params.new` would not even parse.
const RHAI_RESERVED: &[&str] = &[
    "new",
    "with",
    "var",
    "static",
    "shared",
    "goto",
    "exit",
    "match",
    "case",
    "public",
    "protected",
    "use",
    "module",
    "package",
    "super",
    "spawn",
    "thread",
    "go",
    "sync",
    "async",
    "await",
    "yield",
    "default",
    "void",
    "null",
    "nil",
    "fn",
    "let",
    "const",
    "if",
    "else",
    "while",
    "loop",
    "for",
    "in",
    "do",
    "until",
    "return",
    "throw",
    "try",
    "catch",
    "import",
    "export",
    "as",
    "private",
    "this",
    "true",
    "false",
    "switch",
    "break",
    "continue",
    "global",
];

/// Names `runbook run` keeps for itself; a runbook cannot declare them.
pub const RESERVED: &[&str] = &[
    "cluster",
    "user",
    "password",
    "yes",
    "help",
    "dry_run",
    "journal",
    "json",
    "quiet",
    "rate_limit",
    "settle",
    "param",
    "tls",
    "cacert",
    "cert",
    "key",
];

#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    pub name: String,
    /// `None` when required.
    pub default: Option<Value>,
    /// The only values accepted, when the header lists them (`"remove"|"rehome"`); the first is
    /// the default.
    pub choices: Vec<String>,
    pub help: String,
}

/// A typed parameter value, as given on the command line or as a default.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
}

impl Value {
    /// `true`/`false`, integers, floats, `"quoted"` or bare strings.
    pub fn parse(text: &str) -> Self {
        let t = text.trim();
        if let Some(s) = t.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            return Value::Str(s.to_string());
        }
        match t {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => t
                .parse::<i64>()
                .map(Value::Int)
                .or_else(|_| t.parse::<f64>().map(Value::Float))
                .unwrap_or_else(|_| Value::Str(t.to_string())),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Bool(_) => "true or false",
            Value::Str(_) => "a string",
        }
    }

    pub fn to_dynamic(&self) -> Dynamic {
        match self {
            Value::Int(i) => Dynamic::from(*i),
            Value::Float(f) => Dynamic::from(*f),
            Value::Bool(b) => Dynamic::from(*b),
            Value::Str(s) => Dynamic::from(s.clone()),
        }
    }

    fn show(&self) -> String {
        match self {
            Value::Str(s) => format!("{s:?}"),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => format!("{f:?}"),
            Value::Bool(b) => b.to_string(),
        }
    }
}

/// A runbook's header: its one-line summary, longer description and declared parameters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Header {
    pub summary: String,
    pub description: Vec<String>,
    pub params: Vec<ParamSpec>,
}

impl Header {
    pub fn parse(source: &str) -> std::result::Result<Self, String> {
        let mut h = Header::default();
        let mut summary_done = false;
        for line in source.lines().take_while(|l| l.starts_with("//!") || l.starts_with("#!")) {
            let text = line.trim_start_matches("//!").trim_start_matches("#!").trim();
            if let Some(rest) = text.strip_prefix("@param") {
                let mut parts = rest.trim().splitn(2, char::is_whitespace);
                let name = parts.next().unwrap_or_default().to_string();
                let rest = parts.next().unwrap_or_default().trim();
                let (default, help) = split_default(rest);
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!("bad parameter name `{name}` in `{line}`"));
                }
                if RHAI_RESERVED.contains(&name.as_str()) {
                    return Err(format!(
                        "parameter `{name}` is a word rhai reserves (`params.{name}` would not parse): choose another name"
                    ));
                }
                if RESERVED.contains(&name.as_str()) {
                    return Err(format!(
                        "parameter `{name}` is reserved for runbook's own option --{}",
                        name.replace('_', "-")
                    ));
                }
                let choices: Vec<String> = if default.contains("\"|\"") {
                    default.split('|').map(|c| c.trim().trim_matches('"').to_string()).collect()
                } else {
                    Vec::new()
                };
                let default = match (default, choices.first()) {
                    ("required", _) => None,
                    (_, Some(first)) => Some(Value::Str(first.clone())),
                    (d, None) => Some(Value::parse(d)),
                };
                h.params.push(ParamSpec { name, default, choices, help: help.to_string() });
            } else if !summary_done && !text.is_empty() {
                // The summary is the first paragraph, however many lines it wraps over.
                if !h.summary.is_empty() {
                    h.summary.push(' ');
                }
                h.summary.push_str(text);
            } else if !summary_done && !h.summary.is_empty() {
                summary_done = true;
            } else if !text.is_empty() || !h.description.is_empty() {
                h.description.push(text.to_string());
            }
        }
        while h.description.last().is_some_and(String::is_empty) {
            h.description.pop();
        }
        Ok(h)
    }

    /// One line per parameter, as shown in help and errors, in aligned columns.
    pub fn param_lines(&self) -> Vec<String> {
        let defaults: Vec<String> = self
            .params
            .iter()
            .map(|p| match (&p.default, p.choices.as_slice()) {
                (None, _) => "(required)".to_string(),
                (Some(d), [] | [_]) => format!("(default {})", d.show()),
                (Some(d), [_, rest @ ..]) => format!("(default {}; or {})", d.show(), quoted(rest).join(", ")),
            })
            .collect();
        let width = defaults.iter().map(String::len).max().unwrap_or(0).max(18);
        self.params
            .iter()
            .zip(defaults)
            .map(|(p, d)| format!("--{:<12} {d:<width$} {}", p.name.replace('_', "-"), p.help))
            .collect()
    }

    /// Checks `given` against the declaration and fills in defaults.
    pub fn bind(&self, runbook: &str, given: &[(String, Value)]) -> Result<Map> {
        let mut problems = Vec::new();
        let mut map = Map::new();
        for (name, value) in given {
            match self.params.iter().find(|p| &p.name == name) {
                None => {
                    let hint = self
                        .params
                        .iter()
                        .find(|p| near(&p.name, name))
                        .map(|p| format!(" (did you mean --{}?)", p.name.replace('_', "-")))
                        .unwrap_or_default();
                    problems.push(format!("unknown parameter --{}{hint}", name.replace('_', "-")));
                }
                Some(spec) => {
                    let value = match (&spec.default, value) {
                        // A string-typed parameter keeps what was typed, even if it looks numeric.
                        (Some(Value::Str(_)), v) => Value::Str(v.show().trim_matches('"').to_string()),
                        (Some(Value::Float(_)), Value::Int(i)) => Value::Float(*i as f64),
                        (Some(d), v) if std::mem::discriminant(d) != std::mem::discriminant(v) => {
                            problems.push(format!(
                                "--{} takes {}, not `{}`",
                                name.replace('_', "-"),
                                d.type_name(),
                                v.show()
                            ));
                            continue;
                        }
                        (_, v) => v.clone(),
                    };
                    if let Value::Str(text) = &value
                        && !spec.choices.is_empty()
                        && !spec.choices.contains(text)
                    {
                        let hint = spec
                            .choices
                            .iter()
                            .find(|c| near(c, text))
                            .map(|c| format!(" (did you mean \"{c}\"?)"))
                            .unwrap_or_default();
                        problems.push(format!(
                            "--{} takes one of {}, not \"{text}\"{hint}",
                            name.replace('_', "-"),
                            quoted(&spec.choices).join(", ")
                        ));
                        continue;
                    }
                    map.insert(name.as_str().into(), value.to_dynamic());
                }
            }
        }
        for p in &self.params {
            if map.contains_key(p.name.as_str()) {
                continue;
            }
            match &p.default {
                Some(d) => {
                    map.insert(p.name.as_str().into(), d.to_dynamic());
                }
                None if !problems.iter().any(|x| x.starts_with(&format!("--{} takes", p.name.replace('_', "-")))) => {
                    problems.push(format!("missing required parameter --{}", p.name.replace('_', "-")));
                }
                None => {}
            }
        }
        if problems.is_empty() {
            Ok(map)
        } else {
            Err(Error::Params { runbook: runbook.to_string(), problems, accepted: self.param_lines() })
        }
    }
}

fn quoted(values: &[String]) -> Vec<String> {
    values.iter().map(|v| format!("{v:?}")).collect()
}

/// Close enough to be a typo: one name contains the other, or they differ by one or two edits.
fn near(a: &str, b: &str) -> bool {
    if a.contains(b) || b.contains(a) {
        return true;
    }
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()] <= 2
}

/// The default (a word, a `"quoted string"`, or quoted choices joined by `|`) and the help text.
fn split_default(rest: &str) -> (&str, &str) {
    let mut end = 0;
    while rest[end..].starts_with('"')
        && let Some(close) = rest[end + 1..].find('"')
    {
        end += close + 2;
        if !rest[end..].starts_with("|\"") {
            return (&rest[..end], rest[end..].trim());
        }
        end += 1;
    }
    let mut parts = rest.splitn(2, char::is_whitespace);
    (parts.next().unwrap_or_default(), parts.next().unwrap_or_default().trim())
}

/// `runbook run`'s own options, wherever they appear among the arguments.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunArgs {
    pub runbook: Option<String>,
    pub cluster: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub yes: bool,
    pub help: bool,
    pub dry_run: bool,
    pub quiet: bool,
    pub journal: Option<String>,
    pub json: bool,
    pub tls: bool,
    pub cacert: Option<String>,
    pub cert: Option<String>,
    pub key: Option<String>,
    pub rate_limit: Option<u64>,
    /// `--settle SECS`: how long the preflight gates wait for a transient state to settle.
    pub settle: Option<u64>,
    pub params: Vec<(String, Value)>,
}

impl RunArgs {
    /// Splits `args` into runbook's options, the runbook name and the runbook's parameters.
    /// `--name value`, `--name=value`, a bare `--flag` (true) and `-p name=value` are accepted.
    pub fn parse(args: &[String]) -> Result<Self> {
        let mut out = RunArgs::default();
        let mut i = 0;
        let value_of = |i: &mut usize, inline: Option<&str>, flag: &str| -> Result<String> {
            if let Some(v) = inline {
                return Ok(v.to_string());
            }
            *i += 1;
            args.get(*i).cloned().ok_or_else(|| Error::usage(format!("{flag} needs a value"), None))
        };
        while i < args.len() {
            let arg = &args[i];
            if arg == "--" {
                i += 1;
                continue;
            }
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with('-') => (f, Some(v)),
                _ => (arg.as_str(), None),
            };
            match flag {
                "-y" | "--yes" => out.yes = true,
                "-h" | "--help" => out.help = true,
                "--dry-run" => out.dry_run = true,
                "--json" => out.json = true,
                "--tls" => out.tls = true,
                "--cacert" => out.cacert = Some(value_of(&mut i, inline, flag)?),
                "--cert" => out.cert = Some(value_of(&mut i, inline, flag)?),
                "--key" => out.key = Some(value_of(&mut i, inline, flag)?),
                "-q" | "--quiet" => out.quiet = true,
                "-c" | "--cluster" => out.cluster = Some(value_of(&mut i, inline, flag)?),
                "--user" => out.user = Some(value_of(&mut i, inline, flag)?),
                "--journal" => out.journal = Some(value_of(&mut i, inline, flag)?),
                "--rate-limit" => {
                    let v = value_of(&mut i, inline, flag)?;
                    out.rate_limit = Some(v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        Error::usage(format!("--rate-limit takes a number of keys per second, not `{v}`"), None)
                    })?);
                }
                "--settle" => {
                    let v = value_of(&mut i, inline, flag)?;
                    out.settle = Some(v.parse().map_err(|_| {
                        Error::usage(
                            format!("--settle takes a number of seconds (0 to refuse at once), not `{v}`"),
                            None,
                        )
                    })?);
                }
                "--password" => out.password = Some(value_of(&mut i, inline, flag)?),
                "-p" | "--param" => {
                    let kv = value_of(&mut i, inline, flag)?;
                    let (k, v) = kv
                        .split_once('=')
                        .ok_or_else(|| Error::usage(format!("-p takes NAME=VALUE, not `{kv}`"), None))?;
                    out.params.push((k.replace('-', "_"), Value::parse(v)));
                }
                f if f.starts_with("--") && f.len() > 2 => {
                    let name = f[2..].replace('-', "_");
                    let value = if let Some(v) = inline {
                        Value::parse(v)
                    } else if args.get(i + 1).is_some_and(|n| !n.starts_with('-') || n.parse::<f64>().is_ok()) {
                        i += 1;
                        Value::parse(&args[i])
                    } else {
                        Value::Bool(true)
                    };
                    out.params.push((name, value));
                }
                f if f.starts_with('-') && f.len() > 1 && f.parse::<f64>().is_err() => {
                    return Err(Error::usage(
                        format!("unknown option `{f}`"),
                        Some("runbook parameters are given as --name value"),
                    ));
                }
                _ if out.runbook.is_none() => out.runbook = Some(arg.clone()),
                _ => {
                    return Err(Error::usage(
                        format!("unexpected argument `{arg}`"),
                        Some("parameters are given as --name value"),
                    ));
                }
            }
            i += 1;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn options_anywhere() {
        let a = RunArgs::parse(&args(&["decommission", "--node", "6397", "--yes", "--cluster", "h:1"])).unwrap();
        let b = RunArgs::parse(&args(&["--yes", "-c", "h:1", "decommission", "--node=6397"])).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.params, vec![("node".to_string(), Value::Int(6397))]);
        let f = RunArgs::parse(&args(&["x.rhai", "--force", "--ratio", "1.5", "--name", "abc", "--dry-run"])).unwrap();
        assert!(f.dry_run);
        assert_eq!(f.params[0], ("force".into(), Value::Bool(true)));
        assert_eq!(f.params[1], ("ratio".into(), Value::Float(1.5)));
        assert_eq!(f.params[2], ("name".into(), Value::Str("abc".into())));
        assert!(RunArgs::parse(&args(&["x", "--cluster"])).is_err());
        assert_eq!(RunArgs::parse(&args(&["x", "--settle", "5"])).unwrap().settle, Some(5));
        assert_eq!(RunArgs::parse(&args(&["x", "--settle=0"])).unwrap().settle, Some(0));
        assert!(RunArgs::parse(&args(&["x", "--settle", "soon"])).is_err());
        // A bare flag before an option: the option is not its value; a negative number is.
        let g = RunArgs::parse(&args(&["x", "--simulate", "-c", "h:1", "--offset", "-3"])).unwrap();
        assert_eq!(g.cluster.as_deref(), Some("h:1"));
        assert_eq!(g.params, vec![("simulate".into(), Value::Bool(true)), ("offset".into(), Value::Int(-3))]);
    }

    #[test]
    fn header_and_binding() {
        let src = "//! Remove a node.\n//!\n//! Longer text.\n//! @param node required The node.\n//! @param rebalance true Rebalance after.\n//! @param mode \"remove\" What to do.\nlet x = 1;\n";
        let h = Header::parse(src).unwrap();
        assert_eq!(h.summary, "Remove a node.");
        let wrapped =
            Header::parse("//! Replace a master: add it,\n//! then remove the old one.\n//!\n//! More.\n").unwrap();
        assert_eq!(wrapped.summary, "Replace a master: add it, then remove the old one.");
        assert_eq!(wrapped.description, vec!["More."]);
        assert_eq!(h.description, vec!["Longer text."]);
        assert_eq!(h.params.len(), 3);
        assert_eq!(h.params[2].default, Some(Value::Str("remove".into())));
        let m = h.bind("t", &[("node".into(), Value::Int(6397))]).unwrap();
        assert_eq!(m["rebalance"].as_bool(), Ok(true));
        match h.bind("t", &[("nod".into(), Value::Int(1))]) {
            Err(Error::Params { problems, .. }) => {
                assert_eq!(
                    problems,
                    vec!["unknown parameter --nod (did you mean --node?)", "missing required parameter --node"]
                );
            }
            other => panic!("{other:?}"),
        }
        match h.bind("t", &[("node".into(), Value::Int(1)), ("rebalance".into(), Value::Str("maybe".into()))]) {
            Err(Error::Params { problems, .. }) => {
                assert_eq!(problems, vec!["--rebalance takes true or false, not `\"maybe\"`"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(Header::parse("//! x\n//! @param yes true no\n").unwrap_err().contains("reserved"));
    }

    #[test]
    fn choices() {
        let h = Header::parse("//! x\n//! @param replicas \"remove\"|\"rehome\" Their fate.\n").unwrap();
        assert_eq!(h.params[0].choices, vec!["remove", "rehome"]);
        assert_eq!(h.params[0].help, "Their fate.");
        assert_eq!(h.bind("t", &[]).unwrap()["replicas"].clone().into_string().unwrap(), "remove");
        assert!(h.bind("t", &[("replicas".into(), Value::Str("rehome".into()))]).is_ok());
        match h.bind("t", &[("replicas".into(), Value::Str("rehom".into()))]) {
            Err(Error::Params { problems, accepted, .. }) => {
                assert_eq!(
                    problems,
                    vec!["--replicas takes one of \"remove\", \"rehome\", not \"rehom\" (did you mean \"rehome\"?)"]
                );
                assert!(accepted[0].contains("(default \"remove\"; or \"rehome\")"), "{accepted:?}");
            }
            other => panic!("{other:?}"),
        }
    }
}

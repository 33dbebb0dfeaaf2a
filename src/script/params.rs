//! Runbook parameters: declared in the runbook's header, given as `--name value` on the command
//! line, checked before anything connects.
//!
//! ```text
//! //! Decommission a master …                    <- first line: the summary
//! //! @param node      node           required  The master to remove.
//! //! @param rebalance bool           true      Rebalance afterwards.
//! //! @param threshold float(0..100)  2.0       Percent off its share.
//! //! @param replicas  "remove"|"rehome"        Their fate: the first is the default, only these are accepted.
//! ```
//!
//! Types: `node`, `nodes`, `int`, `float` (each with an optional range), `seconds`, `bool`,
//! `weights`, `string`, or quoted choices. Without one, the default's own type is taken.

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

#[derive(Clone, Debug, PartialEq)]
pub struct ParamSpec {
    pub name: String,
    pub kind: Kind,
    /// `None` when required.
    pub default: Option<Value>,
    pub help: String,
}

/// Bounds of a numeric parameter, both inclusive.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Range {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl Range {
    /// `0..100`, `1..`, `..10`.
    fn parse(text: &str) -> Option<Self> {
        let (lo, hi) = text.split_once("..")?;
        let bound = |b: &str| -> Option<Option<f64>> {
            if b.trim().is_empty() {
                Some(None)
            } else {
                b.trim().parse::<f64>().ok().filter(|f| f.is_finite()).map(Some)
            }
        };
        Some(Range { min: bound(lo)?, max: bound(hi)? })
    }

    fn contains(&self, n: f64) -> bool {
        self.min.is_none_or(|m| n >= m) && self.max.is_none_or(|m| n <= m)
    }

    fn words(&self) -> String {
        match (self.min, self.max) {
            (Some(a), Some(b)) => format!(" from {a} to {b}"),
            (Some(a), None) => format!(" of at least {a}"),
            (None, Some(b)) => format!(" of at most {b}"),
            (None, None) => String::new(),
        }
    }

    fn short(&self) -> String {
        match (self.min, self.max) {
            (None, None) => String::new(),
            (a, b) => format!(
                " {}..{}",
                a.map(|a| a.to_string()).unwrap_or_default(),
                b.map(|b| b.to_string()).unwrap_or_default()
            ),
        }
    }
}

/// What a parameter accepts, as its header declares it (or, without a type, as its default suggests).
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// One node selector, checked for its form before connecting (kept as typed: `072` stays `072`).
    Node,
    /// Comma-separated node selectors, given to the runbook as an array of strings.
    Nodes,
    Int(Range),
    Float(Range),
    /// A duration: `90`, `90s`, `5m`, `1h`; the runbook sees whole seconds.
    Seconds,
    Bool,
    /// The only values accepted (`"remove"|"rehome"`); the first is the default.
    Choice(Vec<String>),
    /// `node=number,…`, given to the runbook as a map from selector to weight.
    Weights,
    Str,
    /// No type declared and none to infer (a required untyped parameter): numbers become numbers.
    Any,
}

/// The longest duration a `seconds` parameter takes: a week. Longer is a typo, never a plan.
const MAX_SECONDS: f64 = 7.0 * 86_400.0;

impl Kind {
    /// `node`, `nodes`, `int`, `int(1..)`, `float(0..100)`, `seconds`, `bool`, `weights`, `string`.
    fn parse(word: &str) -> Option<Self> {
        let (base, range) = match word.split_once('(') {
            Some((b, r)) => (b, Some(Range::parse(r.strip_suffix(')')?)?)),
            None => (word, None),
        };
        Some(match (base, range) {
            ("int", r) => Kind::Int(r.unwrap_or_default()),
            ("float", r) => Kind::Float(r.unwrap_or_default()),
            (_, Some(_)) => return None,
            ("node", _) => Kind::Node,
            ("nodes", _) => Kind::Nodes,
            ("seconds", _) => Kind::Seconds,
            ("bool", _) => Kind::Bool,
            ("weights", _) => Kind::Weights,
            ("string", _) => Kind::Str,
            _ => return None,
        })
    }

    /// Short, for the help's column: `<float 0..100>`.
    fn short(&self) -> String {
        match self {
            Kind::Node => "<node>".into(),
            Kind::Nodes => "<nodes>".into(),
            Kind::Int(r) => format!("<int{}>", r.short()),
            Kind::Float(r) => format!("<float{}>", r.short()),
            Kind::Seconds => "<seconds>".into(),
            Kind::Bool => "<bool>".into(),
            Kind::Choice(c) => format!("<{}>", c.join("|")),
            Kind::Weights => "<weights>".into(),
            Kind::Str | Kind::Any => "<string>".into(),
        }
    }

    /// What the parameter takes, as said in an error.
    fn words(&self) -> String {
        match self {
            Kind::Node => "a node: a port (6397), host:port, or node id (8+ hex characters, or id:PREFIX)".into(),
            Kind::Nodes => "nodes, comma-separated: ports, host:port or node ids".into(),
            Kind::Int(r) => format!("an integer{}", r.words()),
            Kind::Float(r) => format!("a number{}", r.words()),
            Kind::Seconds => "a duration: seconds (90), or 90s, 5m, 1h; at most a week".into(),
            Kind::Bool => "true or false".into(),
            Kind::Choice(c) => format!("one of {}", quoted(c).join(", ")),
            Kind::Weights => "weights as node=number,… (6391=2,6397=0), each weight 0 or more".into(),
            Kind::Str | Kind::Any => "a string".into(),
        }
    }

    /// Reads `text` (`None`: a bare `--flag`). A default may be empty where a value may not:
    /// `""` is how a header says "no nodes" or "no weights".
    fn read(&self, text: Option<&str>, is_default: bool) -> std::result::Result<Value, String> {
        let Some(raw) = text else {
            return match self {
                Kind::Bool | Kind::Any => Ok(Value::Bool(true)),
                _ => Err("a bare flag needs a value".into()),
            };
        };
        let t = raw.trim();
        let bad = |why: &str| Err(format!("`{t}` {why}"));
        let unquoted = t.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(t);
        let selector = |s: &str| crate::model::selector::parse(s).map(|_| s.trim().to_string());
        match self {
            Kind::Any => Ok(Value::parse(t)),
            Kind::Str => Ok(Value::Str(unquoted.to_string())),
            Kind::Node if unquoted.is_empty() && is_default => Ok(Value::Str(String::new())),
            Kind::Node => selector(unquoted).map(Value::Str),
            Kind::Nodes | Kind::Weights if unquoted.is_empty() && is_default => {
                Ok(if *self == Kind::Nodes { Value::List(Vec::new()) } else { Value::Weights(Vec::new()) })
            }
            Kind::Nodes => unquoted
                .split(',')
                .map(|s| if s.trim().is_empty() { Err(format!("`{t}` has an empty entry")) } else { selector(s) })
                .collect::<std::result::Result<Vec<_>, _>>()
                .map(Value::List),
            Kind::Weights => unquoted
                .split(',')
                .map(|pair| {
                    let (sel, w) = pair.split_once('=').ok_or_else(|| format!("`{pair}` is not node=number"))?;
                    let w = w.trim().parse::<f64>().ok().filter(|w| w.is_finite() && *w >= 0.0);
                    let w = w.ok_or_else(|| format!("the weight in `{pair}` is not a number of 0 or more"))?;
                    Ok((selector(sel)?, w))
                })
                .collect::<std::result::Result<Vec<_>, String>>()
                .map(Value::Weights),
            Kind::Int(r) => match t.parse::<i64>() {
                Ok(i) if r.contains(i as f64) => Ok(Value::Int(i)),
                Ok(_) => bad("is out of range"),
                Err(_) => bad("is not an integer"),
            },
            Kind::Float(r) => match t.parse::<f64>() {
                Ok(f) if f.is_finite() && r.contains(f) => Ok(Value::Float(f)),
                Ok(f) if f.is_finite() => bad("is out of range"),
                _ => bad("is not a number"),
            },
            Kind::Seconds => {
                let num = t.trim_end_matches(|c: char| c.is_ascii_alphabetic());
                let unit = if num.len() == t.len() { "s" } else { &t[num.len()..] };
                let scale = match unit {
                    "s" => 1.0,
                    "m" => 60.0,
                    "h" => 3600.0,
                    _ => return Err(format!("`{t}` has the unit `{unit}`: use s, m or h")),
                };
                match num.parse::<f64>() {
                    Ok(n) if n.is_finite() && n >= 0.0 && n * scale <= MAX_SECONDS => {
                        Ok(Value::Int((n * scale).round() as i64))
                    }
                    Ok(n) if n.is_finite() => bad("is out of range"),
                    _ => bad("is not a duration"),
                }
            }
            Kind::Bool => match t {
                "true" | "yes" | "on" => Ok(Value::Bool(true)),
                "false" | "no" | "off" => Ok(Value::Bool(false)),
                _ => bad("is not true or false"),
            },
            Kind::Choice(c) => {
                if c.iter().any(|x| x == unquoted) {
                    Ok(Value::Str(unquoted.to_string()))
                } else {
                    let hint = c.iter().find(|x| near(x, unquoted)).map(|x| format!(" (did you mean \"{x}\"?)"));
                    Err(format!("`{t}` is not one of them{}", hint.unwrap_or_default()))
                }
            }
        }
    }
}

/// A typed parameter value, as given on the command line or as a default.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    /// `nodes`: the selectors as typed.
    List(Vec<String>),
    /// `weights`: (selector, weight) in the order given.
    Weights(Vec<(String, f64)>),
}

impl Value {
    /// For an untyped parameter: `true`/`false`, integers, floats, `"quoted"` or bare strings.
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

    /// The kind a default suggests when the header names none.
    fn kind(&self) -> Kind {
        match self {
            Value::Int(_) => Kind::Int(Range::default()),
            Value::Float(_) => Kind::Float(Range::default()),
            Value::Bool(_) => Kind::Bool,
            Value::Str(_) => Kind::Str,
            Value::List(_) => Kind::Nodes,
            Value::Weights(_) => Kind::Weights,
        }
    }

    pub fn to_dynamic(&self) -> Dynamic {
        match self {
            Value::Int(i) => Dynamic::from(*i),
            Value::Float(f) => Dynamic::from(*f),
            Value::Bool(b) => Dynamic::from(*b),
            Value::Str(s) => Dynamic::from(s.clone()),
            Value::List(l) => Dynamic::from(l.iter().map(|s| Dynamic::from(s.clone())).collect::<rhai::Array>()),
            Value::Weights(w) => {
                Dynamic::from(w.iter().map(|(k, v)| (k.as_str().into(), Dynamic::from(*v))).collect::<Map>())
            }
        }
    }

    fn show(&self) -> String {
        match self {
            Value::Str(s) => format!("{s:?}"),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => format!("{f:?}"),
            Value::Bool(b) => b.to_string(),
            Value::List(l) => format!("{:?}", l.join(",")),
            Value::Weights(w) => {
                format!("{:?}", w.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","))
            }
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
    /// `//! @param NAME [TYPE] DEFAULT HELP`; DEFAULT is `required`, a value, or quoted choices.
    pub fn parse(source: &str) -> std::result::Result<Self, String> {
        let mut h = Header::default();
        let mut summary_done = false;
        for line in source.lines().take_while(|l| l.starts_with("//!") || l.starts_with("#!")) {
            let text = line.trim_start_matches("//!").trim_start_matches("#!").trim();
            if let Some(rest) = text.strip_prefix("@param") {
                h.params.push(param(line, rest)?);
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
            .map(|p| match &p.default {
                None => "(required)".to_string(),
                Some(d) => format!("(default {})", d.show()),
            })
            .collect();
        let kinds: Vec<String> = self.params.iter().map(|p| p.kind.short()).collect();
        let width = defaults.iter().map(String::len).max().unwrap_or(0).max(18);
        let kwidth = kinds.iter().map(String::len).max().unwrap_or(0);
        let nwidth = self.params.iter().map(|p| p.name.len()).max().unwrap_or(0).max(10) + 2;
        self.params
            .iter()
            .zip(defaults)
            .zip(kinds)
            .map(|((p, d), k)| format!("--{:<nwidth$} {k:<kwidth$} {d:<width$} {}", p.name.replace('_', "-"), p.help))
            .collect()
    }

    /// Checks `given` (a bare `--flag` has no text) against the declaration and fills in defaults.
    pub fn bind(&self, runbook: &str, given: &[(String, Option<String>)]) -> Result<Map> {
        let mut problems = Vec::new();
        let mut map = Map::new();
        for (name, text) in given {
            let flag = format!("--{}", name.replace('_', "-"));
            let Some(spec) = self.params.iter().find(|p| &p.name == name) else {
                let hint = self
                    .params
                    .iter()
                    .find(|p| near(&p.name, name))
                    .map(|p| format!(" (did you mean --{}?)", p.name.replace('_', "-")))
                    .unwrap_or_default();
                problems.push(format!("unknown parameter {flag}{hint}"));
                continue;
            };
            if let Some((_, first)) = given.iter().find(|(n, _)| n == name).filter(|(_, t)| !std::ptr::eq(t, text)) {
                let show = |t: &Option<String>| t.as_deref().map_or_else(|| "a bare flag".into(), |t| format!("`{t}`"));
                problems.push(format!("{flag} is given twice: {} and {}", show(first), show(text)));
                continue;
            }
            match spec.kind.read(text.as_deref(), false) {
                Ok(v) => {
                    map.insert(name.as_str().into(), v.to_dynamic());
                }
                Err(why) => problems.push(format!("{flag} takes {}: {why}", spec.kind.words())),
            }
        }
        for p in &self.params {
            let flag = format!("--{}", p.name.replace('_', "-"));
            if map.contains_key(p.name.as_str()) || given.iter().any(|(n, _)| n == &p.name) {
                continue;
            }
            match &p.default {
                Some(d) => {
                    map.insert(p.name.as_str().into(), d.to_dynamic());
                }
                None => problems.push(format!("missing required parameter {flag} ({})", p.kind.words())),
            }
        }
        if problems.is_empty() {
            Ok(map)
        } else {
            Err(Error::Params { runbook: runbook.to_string(), problems, accepted: self.param_lines() })
        }
    }
}

/// One `@param` line: name, optional type, default (or `required`), help.
fn param(line: &str, rest: &str) -> std::result::Result<ParamSpec, String> {
    let mut parts = rest.trim().splitn(2, char::is_whitespace);
    let name = parts.next().unwrap_or_default().to_string();
    let mut rest = parts.next().unwrap_or_default().trim();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("bad parameter name `{name}` in `{line}`"));
    }
    if RHAI_RESERVED.contains(&name.as_str()) {
        return Err(format!(
            "parameter `{name}` is a word rhai reserves (`params.{name}` would not parse): choose another name"
        ));
    }
    if crate::cli::reserved_param_names().contains(&name) {
        return Err(format!("parameter `{name}` is reserved for runbook's own option --{}", name.replace('_', "-")));
    }
    let first = rest.split_whitespace().next().unwrap_or_default();
    let declared = Kind::parse(first);
    if declared.is_some() {
        rest = rest[first.len()..].trim();
    } else if first.starts_with("int(") || first.starts_with("float(") {
        return Err(format!("`{first}` in `{line}`: a range is written int(1..), float(0..100) or int(..10)"));
    }
    let (default, help) = split_default(rest);
    if default.is_empty() {
        return Err(format!("`{line}` gives no default: write `required`, a value, or \"a\"|\"b\" choices"));
    }
    let choices: Vec<String> = if default.contains("\"|\"") {
        default.split('|').map(|c| c.trim().trim_matches('"').to_string()).collect()
    } else {
        Vec::new()
    };
    let kind = match (declared, choices.is_empty(), default) {
        (Some(k), true, _) => k,
        (None, false, _) => Kind::Choice(choices.clone()),
        (Some(_), false, _) => return Err(format!("`{line}`: choices are a type of their own, give no other")),
        (None, true, "required") => Kind::Any,
        (None, true, d) => Value::parse(d).kind(),
    };
    let default = match (default, choices.first()) {
        ("required", _) => None,
        (_, Some(first)) => Some(Value::Str(first.clone())),
        (d, None) => Some(kind.read(Some(d), true).map_err(|why| format!("`{line}`: the default {why}"))?),
    };
    Ok(ParamSpec { name, kind, default, help: help.to_string() })
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

/// The runbook's parameters as typed after it: `--name value`, `--name=value`, a bare `--flag`
/// (no value), in the order given.
pub fn given(args: &[String]) -> Result<Vec<(String, Option<String>)>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with('-') => (f, Some(v)),
            _ => (arg.as_str(), None),
        };
        match flag.strip_prefix("--").filter(|n| !n.is_empty()) {
            Some(name) => {
                let value = if let Some(v) = inline {
                    Some(v.to_string())
                } else if args.get(i + 1).is_some_and(|n| crate::cli::is_param_value(n)) {
                    i += 1;
                    Some(args[i].clone())
                } else {
                    None
                };
                out.push((name.replace('-', "_"), value));
            }
            None if flag.starts_with('-') && flag.len() > 1 && flag.parse::<f64>().is_err() => {
                return Err(Error::usage(
                    format!("unknown option `{flag}`"),
                    Some("runbook parameters are given as --name value"),
                ));
            }
            None => {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_string()).collect()
    }

    fn given_pairs(pairs: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
        pairs.iter().map(|(k, v)| ((*k).to_string(), v.map(str::to_string))).collect()
    }

    fn problems(h: &Header, pairs: &[(&str, Option<&str>)]) -> Vec<String> {
        match h.bind("t", &given_pairs(pairs)) {
            Err(Error::Params { problems, .. }) => problems,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parameters_as_typed() {
        let g = given(&args(&["--force", "--ratio", "1.5", "--name=abc", "--offset", "-3", "--dry-one"])).unwrap();
        assert_eq!(
            g,
            given_pairs(&[
                ("force", None),
                ("ratio", Some("1.5")),
                ("name", Some("abc")),
                ("offset", Some("-3")),
                ("dry_one", None)
            ])
        );
        assert!(given(&args(&["-x"])).unwrap_err().to_string().contains("unknown option `-x`"));
        assert!(given(&args(&["--a", "1", "2"])).unwrap_err().to_string().contains("unexpected argument `2`"));
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
        // Untyped and required: a number stays a number, as before types existed.
        let m = h.bind("t", &given_pairs(&[("node", Some("6397"))])).unwrap();
        assert_eq!(m["rebalance"].as_bool(), Ok(true));
        assert_eq!(m["node"].as_int(), Ok(6397));
        assert_eq!(
            problems(&h, &[("nod", Some("1"))]),
            vec!["unknown parameter --nod (did you mean --node?)", "missing required parameter --node (a string)"]
        );
        assert_eq!(
            problems(&h, &[("node", Some("1")), ("rebalance", Some("maybe"))]),
            vec!["--rebalance takes true or false: `maybe` is not true or false"]
        );
        assert!(Header::parse("//! x\n//! @param yes true no\n").unwrap_err().contains("reserved"));
    }

    #[test]
    fn choices() {
        let h = Header::parse("//! x\n//! @param replicas \"remove\"|\"rehome\" Their fate.\n").unwrap();
        assert_eq!(h.params[0].kind, Kind::Choice(vec!["remove".into(), "rehome".into()]));
        assert_eq!(h.params[0].help, "Their fate.");
        assert_eq!(h.bind("t", &[]).unwrap()["replicas"].clone().into_string().unwrap(), "remove");
        assert!(h.bind("t", &given_pairs(&[("replicas", Some("rehome"))])).is_ok());
        assert_eq!(
            problems(&h, &[("replicas", Some("rehom"))]),
            vec![
                "--replicas takes one of \"remove\", \"rehome\": `rehom` is not one of them (did you mean \"rehome\"?)"
            ]
        );
        assert!(h.param_lines()[0].contains("<remove|rehome> (default \"remove\")"), "{:?}", h.param_lines());
    }

    #[test]
    fn typed_parameters_are_read_by_their_type() {
        let h = Header::parse(
            "//! x\n\
             //! @param node      node            required  The master.\n\
             //! @param targets   nodes           \"\"        Receivers.\n\
             //! @param threshold float(0..100)   2.0       Percent.\n\
             //! @param pipeline  int(0..100000)  0         Keys.\n\
             //! @param timeout   seconds         60        Wait.\n\
             //! @param weights   weights         \"\"        Shares.\n\
             //! @param label     string          \"\"        Free text.\n",
        )
        .unwrap();
        let m = h
            .bind(
                "t",
                &given_pairs(&[
                    ("node", Some("072")),
                    ("targets", Some("6391, 10.0.0.5:6379,id:ab")),
                    ("threshold", Some("5")),
                    ("timeout", Some("2m")),
                    ("weights", Some("6391=2,deadbeef00=0.5")),
                    ("label", Some("42")),
                ]),
            )
            .unwrap();
        assert_eq!(m["node"].clone().into_string().unwrap(), "072", "a node keeps the text typed");
        let targets: Vec<String> =
            m["targets"].clone().into_array().unwrap().into_iter().map(|d| d.into_string().unwrap()).collect();
        assert_eq!(targets, ["6391", "10.0.0.5:6379", "id:ab"]);
        assert_eq!(m["threshold"].as_float(), Ok(5.0));
        assert_eq!(m["pipeline"].as_int(), Ok(0));
        assert_eq!(m["timeout"].as_int(), Ok(120));
        let w = m["weights"].clone().try_cast::<Map>().unwrap();
        assert_eq!(w["deadbeef00"].as_float(), Ok(0.5));
        assert_eq!(m["label"].clone().into_string().unwrap(), "42");
        for (name, text, want) in [
            (
                "node",
                Some("abc"),
                "--node takes a node: a port (6397), host:port, or node id (8+ hex characters, or id:PREFIX): `abc` is too short",
            ),
            (
                "targets",
                Some("6391,,6392"),
                "--targets takes nodes, comma-separated: ports, host:port or node ids: `6391,,6392` has an empty entry",
            ),
            ("threshold", Some("-1"), "--threshold takes a number from 0 to 100: `-1` is out of range"),
            ("threshold", Some("NaN"), "--threshold takes a number from 0 to 100: `NaN` is not a number"),
            ("pipeline", Some("1.5"), "--pipeline takes an integer from 0 to 100000: `1.5` is not an integer"),
            (
                "timeout",
                Some("1e308"),
                "--timeout takes a duration: seconds (90), or 90s, 5m, 1h; at most a week: `1e308` is out of range",
            ),
            ("timeout", Some("5d"), "has the unit `d`: use s, m or h"),
            ("weights", Some("6391=abc"), "the weight in `6391=abc` is not a number of 0 or more"),
            ("weights", Some("6391"), "`6391` is not node=number"),
            (
                "node",
                None,
                "--node takes a node: a port (6397), host:port, or node id (8+ hex characters, or id:PREFIX): a bare flag needs a value",
            ),
        ] {
            let pairs = if name == "node" { vec![(name, text)] } else { vec![("node", Some("6391")), (name, text)] };
            let got = problems(&h, &pairs);
            assert!(got.len() == 1 && got[0].contains(want), "{got:?} lacks {want:?}");
        }
        assert_eq!(
            problems(&h, &[("node", Some("6391")), ("node", Some("6392"))]),
            vec!["--node is given twice: `6391` and `6392`"]
        );
        // `18` is a port as far as its form goes; whether a node listens there is the cluster's to say.
        assert!(h.bind("t", &given_pairs(&[("node", Some("18"))])).is_ok());
        let line = &h.param_lines()[2];
        assert!(line.contains("<float 0..100>") && line.contains("(default 2.0)"), "{line}");
    }

    #[test]
    fn a_header_that_contradicts_itself_is_refused() {
        for (line, says) in [
            ("//! @param t float(0..1) 2.0 x", "the default `2.0` is out of range"),
            ("//! @param t int(1..) x", "the default `x` is not an integer"),
            ("//! @param t int(a..b) 1 x", "a range is written"),
            ("//! @param t node \"a\"|\"b\" x", "choices are a type of their own"),
            ("//! @param t", "gives no default"),
        ] {
            let e = Header::parse(&format!("//! x\n{line}\n")).unwrap_err();
            assert!(e.contains(says), "{line}: {e}");
        }
    }
}

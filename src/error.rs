//! The one error type: what went wrong as data, its exit code, and how it is shown to an operator.
//! Nothing else in the crate formats an error for the terminal.

use std::fmt;

use crate::model::SelectError;

/// Exit codes, documented in the README. One per kind of failure, so scripts can branch on them.
pub mod exit {
    pub const OK: u8 = 0;
    /// A step failed while running, or a health assertion failed after the run had changed the
    /// cluster; the message says what state the cluster was left in.
    pub const FAILED: u8 = 1;
    /// Bad input: arguments, parameters, runbook name, script syntax, node selector.
    pub const USAGE: u8 = 2;
    /// The cluster is unhealthy, or a safety check refused the operation. Nothing was changed.
    pub const REFUSED: u8 = 3;
    /// The cluster could not be reached or authenticated against.
    pub const UNREACHABLE: u8 = 4;
    /// A confirmation was declined, or needed with no terminal and no `--yes`.
    pub const NOT_CONFIRMED: u8 = 5;
    /// Stopped by Ctrl-C.
    pub const CANCELLED: u8 = 130;
}

/// Where in a runbook an error happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub path: String,
    pub line: usize,
    pub col: usize,
    pub source_line: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// Bad command-line usage.
    Usage {
        message: String,
        hint: Option<String>,
    },
    RunbookNotFound {
        name: String,
        available: Vec<String>,
    },
    /// Parameters that do not match what the runbook declares.
    Params {
        runbook: String,
        problems: Vec<String>,
        accepted: Vec<String>,
    },
    /// A runbook failed to compile or threw; `inner` is set when a primitive failed.
    /// `bad_runbook`: the runbook's own fault (a syntax error, or a runtime error of its own code
    /// before it changed anything): exit 2, like any bad input.
    Script {
        message: String,
        location: Option<Location>,
        bad_runbook: bool,
        inner: Option<Box<Error>>,
    },
    NoCluster,
    Connect {
        addr: String,
        reason: String,
    },
    Auth {
        addr: String,
        reason: String,
    },
    /// The user's ACL refuses commands the run needs (`NOPERM`): each as "COMMAND on host:port".
    Permission {
        denied: Vec<String>,
        reason: String,
    },
    NotCluster {
        addr: String,
    },
    Select(SelectError),
    /// A command a node rejected, with the state the cluster was left in.
    Command {
        node: String,
        command: String,
        reason: String,
        state: Option<String>,
    },
    /// A safety check said no; nothing was changed.
    Refused {
        message: String,
        hint: Option<String>,
    },
    Unhealthy {
        problems: Vec<String>,
        /// This run had already changed the cluster: the changes stay, and "nothing was
        /// changed" (exit 3) would be false.
        after_changes: bool,
    },
    Timeout {
        what: String,
        detail: String,
    },
    Declined {
        question: String,
    },
    NoTty {
        question: String,
    },
    Cancelled,
    Io {
        context: String,
        reason: String,
    },
    MissingProgram {
        program: String,
        package: String,
    },
    Protocol {
        node: String,
        reason: String,
    },
    /// Any failure of a run that had already changed the cluster: exit 1 whatever the cause
    /// (an unreachable node, a refusal), since "nothing was changed" would be false.
    AfterChanges {
        inner: Box<Error>,
    },
}

/// What a server's error reply is, read from its first word (`MOVED 3999 127.0.0.1:6381` is
/// `Moved`): decisions match on this, never on a word found anywhere in the text (a key name may
/// hold one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    Moved,
    Ask,
    BusyKey,
    NoPerm,
    ClusterDown,
    TryAgain,
    IoErr,
    NoReplicas,
    Unblocked,
    Other,
}

impl ServerKind {
    pub fn of(reply: &str) -> Self {
        // MIGRATE passes on the target's refusal inside its own ERR: the target's kind counts.
        let reply = reply.strip_prefix("ERR Target instance replied with error: ").unwrap_or(reply);
        match reply.split_whitespace().next().unwrap_or_default() {
            "MOVED" => ServerKind::Moved,
            "ASK" => ServerKind::Ask,
            "BUSYKEY" => ServerKind::BusyKey,
            "NOPERM" => ServerKind::NoPerm,
            "CLUSTERDOWN" => ServerKind::ClusterDown,
            "TRYAGAIN" => ServerKind::TryAgain,
            "IOERR" => ServerKind::IoErr,
            "NOREPLICAS" => ServerKind::NoReplicas,
            "UNBLOCKED" => ServerKind::Unblocked,
            _ => ServerKind::Other,
        }
    }
}

/// A server's error reply to one command of a pipeline: its kind, for callers to decide on, and
/// its words, for the operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerReply {
    pub kind: ServerKind,
    pub text: String,
}

impl ServerReply {
    pub fn new(text: impl Into<String>) -> Self {
        let text = text.into();
        ServerReply { kind: ServerKind::of(&text), text }
    }
}

impl fmt::Display for ServerReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `+cluster|setslot`-style grants for "CLUSTER SETSLOT on host:port" entries, each once.
fn acl_grants(denied: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in denied {
        let command = d.split(" on ").next().unwrap_or(d).to_ascii_lowercase();
        let grant = format!("+{}", command.replacen(' ', "|", 1));
        if !out.contains(&grant) {
            out.push(grant);
        }
    }
    out
}

impl Error {
    pub fn usage(message: impl Into<String>, hint: Option<&str>) -> Self {
        Error::Usage { message: message.into(), hint: hint.map(str::to_string) }
    }

    pub fn refused(message: impl Into<String>, hint: Option<&str>) -> Self {
        Error::Refused { message: message.into(), hint: hint.map(str::to_string) }
    }

    pub fn io(context: impl Into<String>, err: &std::io::Error) -> Self {
        Error::Io { context: context.into(), reason: err.to_string() }
    }

    /// The kind of the server's refusal, for a command a server refused.
    pub fn server_kind(&self) -> Option<ServerKind> {
        match self {
            Error::Command { reason, .. } => Some(ServerKind::of(reason)),
            Error::Permission { .. } => Some(ServerKind::NoPerm),
            _ => None,
        }
    }

    pub fn code(&self) -> u8 {
        match self {
            Error::Usage { .. } | Error::RunbookNotFound { .. } | Error::Params { .. } | Error::Select(_) => {
                exit::USAGE
            }
            Error::NoCluster | Error::MissingProgram { .. } => exit::USAGE,
            Error::Script { inner: Some(inner), .. } => inner.code(),
            Error::Script { bad_runbook: true, .. } => exit::USAGE,
            Error::Script { .. }
            | Error::Command { .. }
            | Error::Timeout { .. }
            | Error::Io { .. }
            | Error::Protocol { .. } => exit::FAILED,
            Error::Unhealthy { after_changes: true, .. } | Error::AfterChanges { .. } => exit::FAILED,
            Error::Refused { .. } | Error::Unhealthy { .. } => exit::REFUSED,
            Error::Connect { .. } | Error::Auth { .. } | Error::Permission { .. } | Error::NotCluster { .. } => {
                exit::UNREACHABLE
            }
            Error::Declined { .. } | Error::NoTty { .. } => exit::NOT_CONFIRMED,
            Error::Cancelled => exit::CANCELLED,
        }
    }

    /// What the operator can do next, when there is something useful to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Usage { hint, .. } | Error::Refused { hint, .. } => hint.clone(),
            Error::RunbookNotFound { available, .. } => {
                Some(format!("give a path to a .rhai file, or one of the shipped runbooks: {}", available.join(", ")))
            }
            Error::Params { accepted, runbook, .. } => Some(format!(
                "nothing was changed: parameters are checked before anything connects\n`{runbook}` accepts:\n{}",
                accepted.iter().map(|a| format!("    {a}")).collect::<Vec<_>>().join("\n")
            )),
            Error::Script { inner: Some(inner), .. } => inner.hint(),
            Error::Script { bad_runbook: true, location: Some(_), message, .. } if !message.starts_with("syntax error") => {
                Some("the runbook stopped at its own error before its first change: nothing was changed".into())
            }
            Error::AfterChanges { inner } => Some(format!(
                "{}this run had already changed the cluster (`runbook journal` shows what it did); running the same command again continues from where it stopped",
                inner.hint().map(|h| format!("{h}\n")).unwrap_or_default()
            )),
            Error::NoCluster => {
                Some("pass --cluster HOST:PORT (any node of the cluster) or a profile's name, or set RUNBOOK_CLUSTER".into())
            }
            Error::Connect { .. } => {
                Some("check the address and that the node is running; any node of the cluster will do".into())
            }
            Error::Auth { .. } => Some("check --user and --password (or REDISCLI_AUTH)".into()),
            Error::Permission { denied, .. } => Some(format!(
                "the refused command was not run; grant the user what is missing (ACL SETUSER <user> {}), or connect as a user that has it",
                acl_grants(denied).join(" ")
            )),
            Error::NotCluster { .. } => Some("point --cluster at a node started with `cluster-enabled yes`".into()),
            Error::Select(
                SelectError::NotFound { candidates, .. } | SelectError::Malformed { candidates, .. },
            ) => Some(format!(
                "name a node by port (6397), host:port, or node id (at least 8 hex characters, or id:PREFIX); the cluster has:\n{}",
                candidates.iter().map(|c| format!("    {c}")).collect::<Vec<_>>().join("\n")
            )),
            Error::Select(SelectError::Ambiguous { matches, .. }) => Some(format!(
                "use a longer id prefix or host:port; it matches:\n{}",
                matches.iter().map(|c| format!("    {c}")).collect::<Vec<_>>().join("\n")
            )),
            Error::Command { state: Some(state), .. } => {
                Some(format!("{state}\nrun the same command again to finish, or `runbook check` to see the cluster"))
            }
            Error::Unhealthy { after_changes: false, .. } => {
                Some("see `runbook check` for details; fix the cluster before changing it".into())
            }
            Error::Unhealthy { after_changes: true, .. } => Some(
                "the changes this run made stay in place; `runbook check` shows what is wrong now, and `runbook journal` what the run did"
                    .into(),
            ),
            Error::NoTty { .. } => Some("pass --yes to answer yes, once you have reviewed the plan it prints".into()),
            Error::Cancelled => Some("run the same command again to finish the job".into()),
            // Gossip that is slow to spread, or a node that stopped answering: nothing was undone.
            Error::Timeout { .. } => Some(
                "nothing was undone; `runbook check` shows who still disagrees or does not answer, and running the same command again continues from there"
                    .into(),
            ),
            Error::MissingProgram { package, .. } => Some(format!("install it: apt-get install -y {package}")),
            _ => None,
        }
    }

    /// The full text shown to an operator: message, source context, hint.
    /// This error as the end of a run that had changed the cluster: exit 1, and a hint that
    /// says so, unless it already says what state the cluster was left in.
    #[must_use]
    /// The same error from a run that changed nothing: a runtime error of the runbook's own
    /// code is then bad input (exit 2), not a failed step.
    pub fn before_changes(self) -> Self {
        match self {
            Error::Script { message, location, inner: None, .. } => {
                Error::Script { message, location, bad_runbook: true, inner: None }
            }
            Error::Script { message, location, bad_runbook, inner: Some(inner) } => {
                Error::Script { message, location, bad_runbook, inner: Some(Box::new(inner.before_changes())) }
            }
            Error::Usage { message, hint } if !hint.as_deref().unwrap_or_default().contains("nothing was changed") => {
                let hint =
                    hint.map_or_else(|| "nothing was changed".to_string(), |h| format!("nothing was changed; {h}"));
                Error::Usage { message, hint: Some(hint) }
            }
            e => e,
        }
    }

    #[must_use]
    pub fn after_changes(self) -> Self {
        match self {
            Error::Script { message, location, bad_runbook, inner: Some(inner) } => {
                Error::Script { message, location, bad_runbook, inner: Some(Box::new(inner.after_changes())) }
            }
            Error::Unhealthy { problems, .. } => Error::Unhealthy { problems, after_changes: true },
            // Bad input found only now (a runbook's own input check, a selector, a sandbox
            // limit), a refusal, an unreachable node: each after a change is a failed step.
            e if [exit::USAGE, exit::REFUSED, exit::UNREACHABLE, exit::NOT_CONFIRMED].contains(&e.code()) => {
                Error::AfterChanges { inner: Box::new(e) }
            }
            e => e,
        }
    }

    pub fn render(&self) -> String {
        let mut out = format!("error: {self}\n");
        if let Error::Script { location: Some(loc), .. } = self {
            out.push_str(&render_location(loc));
        }
        if let Some(hint) = self.hint() {
            out.push_str(&format!("hint: {hint}\n"));
        }
        out
    }
}

fn render_location(loc: &Location) -> String {
    let num = loc.line.to_string();
    let pad = " ".repeat(num.len());
    let mut out = format!("{pad}--> {}:{}:{}\n", loc.path, loc.line, loc.col);
    if let Some(src) = &loc.source_line {
        let caret_at: usize = src.chars().take(loc.col.saturating_sub(1)).map(|c| if c == '\t' { 4 } else { 1 }).sum();
        out.push_str(&format!("{pad} |\n{num} | {}\n{pad} | {}^\n", src.replace('\t', "    "), " ".repeat(caret_at)));
    }
    out
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage { message, .. } | Error::Refused { message, .. } => f.write_str(message),
            Error::RunbookNotFound { name, .. } => write!(f, "no runbook named `{name}`"),
            Error::Params { runbook, problems, .. } => {
                write!(f, "bad parameters for `{runbook}`: {}", problems.join("; "))
            }
            Error::Script { message, inner: Some(inner), .. } if message.is_empty() => write!(f, "{inner}"),
            Error::Script { message, .. } => f.write_str(message),
            Error::NoCluster => f.write_str("no cluster given"),
            Error::Connect { addr, reason } => write!(f, "cannot connect to {addr}: {reason}"),
            Error::Auth { addr, reason } => write!(f, "authentication failed on {addr}: {reason}"),
            Error::Permission { denied, reason } => {
                write!(f, "the user may not run {}: {reason}", denied.join(", "))
            }
            Error::NotCluster { addr } => write!(f, "{addr} is not a cluster node (cluster support disabled)"),
            Error::Select(SelectError::NotFound { selector, .. }) => write!(f, "no node matches `{selector}`"),
            Error::Select(SelectError::Malformed { selector, reason, .. }) => {
                write!(f, "no node matches `{selector}`: {reason}")
            }
            Error::Select(SelectError::Ambiguous { selector, .. }) => {
                write!(f, "`{selector}` matches more than one node")
            }
            Error::Command { node, command, reason, .. } => write!(f, "{command} failed on {node}: {reason}"),
            Error::Unhealthy { problems, after_changes } => {
                let when = if *after_changes { " after this run's changes" } else { "" };
                write!(f, "the cluster is not healthy{when}:\n  - {}", problems.join("\n  - "))
            }
            Error::Timeout { what, detail } => write!(f, "timed out {what}: {detail}"),
            Error::Declined { question } => write!(f, "not confirmed: {question}"),
            Error::NoTty { question } => {
                write!(f, "confirmation needed but there is no terminal to ask: {question}")
            }
            Error::Cancelled => f.write_str("cancelled"),
            Error::Io { context, reason } => write!(f, "{context}: {reason}"),
            Error::MissingProgram { program, .. } => write!(f, "`{program}` was not found on PATH"),
            Error::Protocol { node, reason } => write!(f, "unexpected reply from {node}: {reason}"),
            Error::AfterChanges { inner } => write!(f, "{inner}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<SelectError> for Error {
    fn from(e: SelectError) -> Self {
        Error::Select(e)
    }
}

impl From<crate::plan::PlanError> for Error {
    fn from(e: crate::plan::PlanError) -> Self {
        match e {
            crate::plan::PlanError::BadInput(m) => Error::Usage { message: m, hint: None },
            crate::plan::PlanError::Impossible(m) => Error::Refused { message: m, hint: None },
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_reply_is_known_by_its_first_word() {
        assert_eq!(ServerKind::of("MOVED 3999 127.0.0.1:6381"), ServerKind::Moved);
        assert_eq!(ServerKind::of("BUSYKEY Target key name already exists."), ServerKind::BusyKey);
        assert_eq!(
            ServerKind::of("ERR Target instance replied with error: BUSYKEY Target key name already exists."),
            ServerKind::BusyKey
        );
        assert_eq!(ServerKind::of("NOPERM this user has no permissions"), ServerKind::NoPerm);
        // A word of the kind elsewhere in the text (a key name, a detail) is not the kind.
        assert_eq!(ServerKind::of("ERR unknown key ASK:MOVED:BUSYKEY"), ServerKind::Other);
        let e =
            Error::Command { node: "n".into(), command: "MIGRATE".into(), reason: "IOERR timeout".into(), state: None };
        assert_eq!(e.server_kind(), Some(ServerKind::IoErr));
    }

    #[test]
    fn a_refused_reply_carries_its_kind_and_keeps_the_servers_words() {
        let busy = "ERR Target instance replied with error: BUSYKEY Target key name already exists.";
        assert_eq!(ServerReply::new(busy), ServerReply { kind: ServerKind::BusyKey, text: busy.into() });
        assert_eq!(ServerReply::new(busy).to_string(), busy);
        assert_eq!(ServerReply::new("ERR unknown command 'FOO'").kind, ServerKind::Other);
    }

    #[test]
    fn a_timeout_says_what_to_do_next() {
        let e = Error::Timeout {
            what: "waiting 60s for the nodes to agree".into(),
            detail: "127.0.0.1:6394 does not know node 127.0.0.1:6397".into(),
        };
        let text = e.render();
        assert!(text.starts_with("error: timed out waiting 60s for the nodes to agree: 127.0.0.1:6394"), "{text}");
        assert!(text.contains("hint: nothing was undone; `runbook check` shows who still disagrees"), "{text}");
        assert_eq!(e.code(), exit::FAILED);
    }

    #[test]
    fn script_errors_point_at_the_column() {
        let e = Error::Script {
            message: "no node matches `6397`".into(),
            location: Some(Location {
                path: "decommission.rhai".into(),
                line: 12,
                col: 14,
                source_line: Some("let victim = c.node(params.node);".into()),
            }),
            bad_runbook: false,
            inner: None,
        };
        let text = e.render();
        assert!(text.contains("  --> decommission.rhai:12:14\n"), "{text}");
        assert!(text.contains("12 | let victim = c.node(params.node);\n   |              ^\n"), "{text}");
        assert_eq!(e.code(), exit::FAILED);
    }
}

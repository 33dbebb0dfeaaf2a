//! `runbook __complete`: the words a completion script asks the binary for, because only it
//! knows them: a runbook's parameters (its header) and the profiles' names (the config file).
//! Anything it cannot read makes it print nothing, so a shell falls back to its own completion.

use std::ffi::OsString;

use crate::script::params::{Header, Kind, ParamSpec};

/// The hidden command's name, as the scripts call it: `runbook __complete params WORDS…`.
pub const COMMAND: &str = "__complete";

/// What a completion script asks of a runbook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum What {
    /// The runbook's parameters not typed yet, as `--name`.
    Params,
    /// The values of the parameter typed last, when it declares them (choices, a bool).
    Value,
}

/// `runbook __complete params|value|profiles WORDS…`, WORDS being those typed after
/// `runbook run` up to the one being completed: one candidate per line, a tab before its
/// description. Exit 0 with nothing printed when there is nothing to offer; 2 for a bad request.
pub fn execute(args: &[OsString]) -> u8 {
    let words: Vec<String> = args.iter().skip(1).map(|w| w.to_string_lossy().into_owned()).collect();
    let lines = match args.first().and_then(|a| a.to_str()) {
        Some("profiles") => profiles(),
        Some("params") => run_candidates(What::Params, &words),
        Some("value") => run_candidates(What::Value, &words),
        _ => {
            eprintln!("error: {COMMAND} takes params, value or profiles (it is for the completion scripts)");
            return crate::error::exit::USAGE;
        }
    };
    for line in lines {
        println!("{line}");
    }
    crate::error::exit::OK
}

fn profiles() -> Vec<String> {
    let Ok(Some(profiles)) = crate::profiles::Profiles::load() else {
        return Vec::new();
    };
    profiles
        .clusters
        .values()
        .map(|p| {
            let seeds: Vec<String> = p.seeds.iter().map(ToString::to_string).collect();
            format!("{}\t{}", p.name, seeds.join(", "))
        })
        .collect()
}

fn run_candidates(what: What, words: &[String]) -> Vec<String> {
    let os: Vec<OsString> = words.iter().map(OsString::from).collect();
    let Ok(split) = crate::cli::run_words(&os) else {
        return Vec::new();
    };
    let Some(runbook) = split.runbook.as_ref().and_then(|r| r.to_str()) else {
        return Vec::new();
    };
    let Some(header) = crate::script::shipped::load(runbook).ok().and_then(|(_, src)| Header::parse(&src).ok()) else {
        return Vec::new();
    };
    let typed: Vec<String> = split
        .params
        .iter()
        .filter_map(|w| w.to_str()?.strip_prefix("--").map(|n| n.split('=').next().unwrap_or(n).replace('-', "_")))
        .collect();
    match what {
        What::Value => {
            // Only when the last word typed is a parameter, waiting for its value.
            let last =
                split.params.last().filter(|w| Some(*w) == os.last()).and_then(|w| w.to_str()?.strip_prefix("--"));
            let name = last.map(|n| n.replace('-', "_"));
            header.params.iter().find(|p| Some(&p.name) == name.as_ref()).map(values).unwrap_or_default()
        }
        What::Params => header
            .params
            .iter()
            .filter(|p| !typed.contains(&p.name))
            .map(|p| {
                let need = if p.default.is_none() { " (required)" } else { "" };
                format!("--{}\t{}{need}", p.name.replace('_', "-"), p.help)
            })
            .collect(),
    }
}

/// The values a parameter declares; none for a free one (a node, a number, a string).
fn values(p: &ParamSpec) -> Vec<String> {
    match &p.kind {
        Kind::Choice(choices) => choices.clone(),
        Kind::Bool => vec!["true".into(), "false".into()],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(what: What, words: &[&str]) -> Vec<String> {
        run_candidates(what, &words.iter().map(|w| (*w).to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn parameters_of_the_runbook_typed_not_yet_given() {
        let all = ask(What::Params, &["decommission"]);
        assert!(all.iter().any(|l| l.starts_with("--node\t") && l.ends_with("(required)")), "{all:?}");
        assert!(all.iter().any(|l| l.starts_with("--skip-gates\t")), "{all:?}");
        // run's own options before the runbook, with their values, are skipped over.
        let rest = ask(What::Params, &["-c", "h:1", "--yes", "decommission", "--node", "6397", "--timeout=5"]);
        assert!(!rest.iter().any(|l| l.starts_with("--node\t") || l.starts_with("--timeout\t")), "{rest:?}");
        assert!(rest.iter().any(|l| l.starts_with("--replicas\t")), "{rest:?}");
        // No runbook yet, or one that cannot be read: nothing, and the shell completes as before.
        assert!(ask(What::Params, &["--yes"]).is_empty());
        assert!(ask(What::Params, &["/no/such.rhai"]).is_empty());
    }

    #[test]
    fn values_of_the_parameter_typed_last() {
        assert_eq!(ask(What::Value, &["decommission", "--replicas"]), ["remove", "rehome"]);
        assert_eq!(ask(What::Value, &["decommission", "--rebalance"]), ["true", "false"]);
        // A free value (a node), a value already given, run's own option: nothing to offer.
        assert!(ask(What::Value, &["decommission", "--node"]).is_empty());
        assert!(ask(What::Value, &["decommission", "--replicas", "remove"]).is_empty());
        assert!(ask(What::Value, &["decommission", "--cluster"]).is_empty());
    }
}

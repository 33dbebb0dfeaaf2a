//! Reviewed plans: `--dry-run --save-plan FILE` writes the decisions a dry run took (each
//! `plan_drain` and `plan_rebalance` result), the runbook and its parameters, and the cluster's
//! fingerprint; `runbook run --plan FILE` applies exactly those decisions, refusing (exit 3,
//! nothing changed) when the cluster or the runbook changed since; `runbook plan show FILE`
//! prints it for the review.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result, exit};

/// The primitives whose results are the run's decisions: replayed from a plan file, never
/// computed again, so the live run moves exactly the slots the review saw.
pub const DECISIONS: &[&str] = &["plan_drain", "plan_rebalance"];

/// One decision: the primitive, its arguments as the journal shows them, its result as JSON.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Decision {
    pub call: String,
    pub args: String,
    pub result: Value,
}

/// A saved plan, as written to its file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PlanFile {
    /// Marks the file as a runbook plan (and its format's version).
    pub runbook_plan: u32,
    pub runbook: String,
    /// A hash of the runbook's source: a plan made with another version of it is refused.
    pub source_hash: String,
    /// The parameters as given on the command line.
    pub params: Vec<(String, Option<String>)>,
    pub cluster: String,
    pub created: f64,
    pub host: String,
    /// The cluster's fingerprint when the dry run read it, and its outcome summary then.
    pub fingerprint: String,
    pub before: Value,
    pub decisions: Vec<Decision>,
    /// The outcome the dry run predicted.
    pub after: Value,
}

impl PlanFile {
    pub fn load(path: &str) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::usage(format!("cannot read the plan {path}: {e}"), Some("give the file --save-plan wrote"))
        })?;
        serde_json::from_str::<PlanFile>(&text).map_err(|e| {
            Error::usage(
                format!("{path} is not a runbook plan ({e})"),
                Some("a plan is written by `runbook run RUNBOOK … --dry-run --save-plan FILE`"),
            )
        })
    }

    pub fn save(&self, path: &str) -> Result<()> {
        let text = serde_json::to_string_pretty(self).expect("a plan serializes");
        std::fs::write(path, text + "\n").map_err(|e| Error::io(format!("writing the plan {path}"), &e))
    }

    /// The plan as a reviewer reads it; `path` is where it was read from; `colour`: the slot
    /// map's bars in one colour per master.
    pub fn render(&self, path: &str, colour: bool) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| {
                format!("--{}{}", k.replace('_', "-"), v.as_ref().map(|v| format!(" {v}")).unwrap_or_default())
            })
            .collect();
        let mut out = format!(
            "plan: runbook {} {} on {}\nmade {} on {}, for the cluster with fingerprint {}\n",
            self.runbook,
            params.join(" "),
            self.cluster,
            crate::holder::unix_time(self.created as u64),
            self.host,
            self.fingerprint
        );
        out.push_str(&format!("\ndecisions ({}):\n", self.decisions.len()));
        for (i, d) in self.decisions.iter().enumerate() {
            let shown = super::codec::decode(&d.result)
                .and_then(rhai::Dynamic::try_cast::<super::types::PlanValue>)
                .map_or_else(|| d.result.to_string(), |p| p.0.to_string());
            out.push_str(&format!("  [{}] {} {}\n", i + 1, d.call, d.args));
            for line in shown.lines() {
                out.push_str(&format!("      {line}\n"));
            }
        }
        let changes = outcome_changes(&self.before, &self.after);
        out.push_str(&format!("\nwhat changes ({}):\n", changes.len()));
        for c in &changes {
            out.push_str(&format!("  {c}\n"));
        }
        if let Some(map) = crate::ops::slot_map::before_after(&masters(&self.before), &masters(&self.after), colour) {
            out.push_str(&format!("\n{map}"));
        }
        out.push_str(&format!("\napply it with: runbook run --plan {path} -c {}\n", self.cluster));
        out
    }
}

/// What differs between two outcome summaries (`Topology::outcome`), one line each: a master's
/// slots, a member gone or new, a replica's master. Empty when they are the same.
pub fn outcome_changes(before: &Value, after: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let map = |v: &Value, k: &str| -> std::collections::BTreeMap<String, String> {
        v[k].as_object()
            .into_iter()
            .flatten()
            .map(|(a, b)| (a.clone(), b.as_str().unwrap_or_default().to_string()))
            .collect()
    };
    let list = |v: &Value| -> std::collections::BTreeSet<String> {
        v["members"].as_array().into_iter().flatten().filter_map(|m| m.as_str().map(str::to_string)).collect()
    };
    let (m0, m1) = (list(before), list(after));
    for gone in m0.difference(&m1) {
        out.push(format!("{gone} leaves the cluster"));
    }
    for new in m1.difference(&m0) {
        out.push(format!("{new} joins the cluster"));
    }
    for (what, key) in [("slots", "masters"), ("master", "replicas"), ("open slots", "open")] {
        let (a, b) = (map(before, key), map(after, key));
        for node in a.keys().chain(b.keys()).collect::<std::collections::BTreeSet<_>>() {
            let (x, y) = (a.get(node), b.get(node));
            if x != y {
                let show = |v: Option<&String>| v.map_or_else(|| "(none)".to_string(), String::clone);
                out.push(format!("{node} {what}: {} → {}", show(x), show(y)));
            }
        }
    }
    out
}

/// The decisions of this run: recorded by a dry run that saves a plan, or handed back, in
/// order, to a run that applies one.
pub enum Decisions {
    Record(Mutex<Vec<Decision>>),
    Replay(Mutex<VecDeque<Decision>>),
}

impl Decisions {
    /// Answers `call` from the plan when replaying; `None` means: compute it (and `record` it).
    pub fn replayed(&self, call: &str, args: &str) -> Option<Result<Value>> {
        let Decisions::Replay(queue) = self else { return None };
        let next = queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop_front();
        Some(match next {
            Some(d) if d.call == call && d.args == args => Ok(d.result),
            Some(d) => Err(Error::refused(
                format!(
                    "the plan's next decision is {} {}, but the runbook asks {call} {args}; nothing was changed by this step",
                    d.call, d.args
                ),
                Some("the runbook took another path than in the dry run: make a new plan with --dry-run --save-plan"),
            )),
            None => Err(Error::refused(
                format!("the plan has no decision left for {call} {args}"),
                Some("the runbook took another path than in the dry run: make a new plan with --dry-run --save-plan"),
            )),
        })
    }

    pub fn record(&self, call: &str, args: &str, result: Value) {
        if let Decisions::Record(list) = self {
            list.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(Decision {
                call: call.into(),
                args: args.into(),
                result,
            });
        }
    }

    pub fn recorded(&self) -> Vec<Decision> {
        match self {
            Decisions::Record(list) => list.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone(),
            Decisions::Replay(_) => Vec::new(),
        }
    }

    /// Decisions of the plan the run did not ask for.
    pub fn left(&self) -> usize {
        match self {
            Decisions::Replay(q) => q.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len(),
            Decisions::Record(_) => 0,
        }
    }
}

/// A short, stable hash of a runbook's source (FNV-1a).
pub fn source_hash(source: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in source.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Refuses a plan made for another cluster state, naming what changed (exit 3).
pub fn check_fresh(plan: &PlanFile, fingerprint: &str, now: &Value) -> Result<()> {
    if plan.fingerprint == fingerprint {
        return Ok(());
    }
    let changes = outcome_changes(&plan.before, now);
    let what = if changes.is_empty() {
        "its slots or members differ in detail".to_string()
    } else {
        changes.iter().take(10).cloned().collect::<Vec<_>>().join("; ")
    };
    Err(Error::refused(
        format!(
            "the cluster changed since the plan was made (fingerprint {} then, {fingerprint} now): {what}; nothing was changed",
            plan.fingerprint
        ),
        Some("make a new plan with --dry-run --save-plan, and review it again"),
    ))
}

/// `runbook plan show FILE`.
pub fn show_command(path: &str) -> Result<u8> {
    print!("{}", PlanFile::load(path)?.render(path, crate::output::colour_stdout()));
    Ok(exit::OK)
}

/// Each master's slots in an outcome (`Topology::outcome`), by address.
fn masters(outcome: &Value) -> std::collections::BTreeMap<String, crate::model::SlotSet> {
    outcome["masters"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(addr, ranges)| {
            (addr.clone(), crate::model::SlotSet::parse(ranges.as_str().unwrap_or_default()).unwrap_or_default())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changes_between_outcomes_are_named() {
        let before = json!({"masters": {"a:1": "0-8191", "b:2": "8192-16383"}, "replicas": {"c:3": "a:1"}, "members": ["a:1", "b:2", "c:3"]});
        let after = json!({"masters": {"a:1": "0-16383"}, "replicas": {}, "members": ["a:1"]});
        assert_eq!(
            outcome_changes(&before, &after),
            vec![
                "b:2 leaves the cluster",
                "c:3 leaves the cluster",
                "a:1 slots: 0-8191 → 0-16383",
                "b:2 slots: 8192-16383 → (none)",
                "c:3 master: a:1 → (none)"
            ]
        );
        assert!(outcome_changes(&before, &before).is_empty());
    }

    #[test]
    fn a_slot_opened_since_is_named() {
        let before = json!({"masters": {"a:1": "0-16383"}, "replicas": {}, "members": ["a:1", "b:2"]});
        let mut after = before.clone();
        after["open"] = json!({"a:1": "migrating 10 to b:2"});
        assert_eq!(outcome_changes(&before, &after), vec!["a:1 open slots: (none) → migrating 10 to b:2"]);
    }

    #[test]
    fn a_replay_answers_in_order_and_refuses_another_path() {
        let d = |call: &str, args: &str| Decision { call: call.into(), args: args.into(), result: json!(1) };
        let r = Decisions::Replay(Mutex::new(VecDeque::from(vec![d("plan_drain", "x:1"), d("plan_rebalance", "")])));
        assert_eq!(r.replayed("plan_drain", "x:1").unwrap().unwrap(), json!(1));
        let e = r.replayed("plan_drain", "y:2").unwrap().unwrap_err();
        assert_eq!(e.code(), exit::REFUSED);
        assert!(e.to_string().contains("the plan's next decision is plan_rebalance"), "{e}");
        assert!(Decisions::Record(Mutex::new(Vec::new())).replayed("plan_drain", "").is_none());
    }
}

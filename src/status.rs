//! `runbook status`: whether a run is changing a cluster right now. The lease holder as the
//! cluster names it, its progress from its journal when it runs on this host, and the cluster's
//! open slots as ranges.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use crate::error::{Result, exit};
use crate::holder::Holder;
use crate::ops::check::{OpenRange, RunSummary, open_ranges};

/// How far a run has got, from its journal.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Progress {
    pub journal: PathBuf,
    /// Slots the run's last plan moves (`None`: no plan applied yet).
    pub planned: Option<usize>,
    /// Slots moved by this run since it began applying that plan.
    pub moved: usize,
    /// The runbook call under way (or the last one): `apply(drain plan: 1366 slots)`.
    pub step: Option<String>,
    /// The batch being moved: `12288-12291 127.0.0.1:6397 → 127.0.0.1:6391`.
    pub moving: Option<String>,
    /// Seconds left at the rate so far.
    pub eta_secs: Option<u64>,
}

/// The progress of the last run in a journal's records, at time `now` (seconds since the epoch).
pub fn progress(records: &[Value], now: f64) -> Progress {
    let start = records.iter().rposition(|r| r["t"] == "run").unwrap_or(0);
    let run = records.get(start..).unwrap_or_default();
    let mut p = Progress::default();
    let mut plan_from = None;
    let mut open_call: Option<(u64, String)> = None;
    let mut last_call = None;
    // Move intents since the plan began, by id: (slots, where, finished).
    let mut moves: Vec<(u64, usize, String, Option<bool>)> = Vec::new();
    for r in run {
        match r["t"].as_str() {
            Some("call") => {
                let (name, args) = (r["fn"].as_str().unwrap_or("?"), r["args"].as_str().unwrap_or(""));
                let call = format!("{name}({args})");
                if let Some(n) = planned_slots(args) {
                    p.planned = Some(n);
                    plan_from = r["ts"].as_f64();
                    moves.clear();
                }
                open_call = Some((r["seq"].as_u64().unwrap_or(u64::MAX), call.clone()));
                last_call = Some(call);
            }
            Some("done" | "fail") if open_call.as_ref().is_some_and(|(s, _)| r["seq"].as_u64() == Some(*s)) => {
                open_call = None;
            }
            Some("intent") if r["op"] == "move" => {
                let slots = r["slots"].as_str().unwrap_or_default();
                let n = crate::model::SlotSet::parse(slots).map_or(0, |s| s.len());
                let from = r["from_addr"].as_str().or_else(|| r["from"].as_str()).unwrap_or("?");
                let to = r["to_addr"].as_str().or_else(|| r["to"].as_str()).unwrap_or("?");
                moves.push((r["id"].as_u64().unwrap_or(u64::MAX), n, format!("{slots} {from} → {to}"), None));
            }
            Some("outcome") => {
                if let Some(m) = moves.iter_mut().find(|m| r["id"].as_u64() == Some(m.0)) {
                    m.3 = Some(r["ok"] == true);
                }
            }
            _ => {}
        }
    }
    p.step = open_call.map(|(_, c)| c).or(last_call);
    p.moved = moves.iter().filter(|m| m.3 == Some(true)).map(|m| m.1).sum();
    p.moving = moves.iter().rev().find(|m| m.3.is_none()).map(|m| m.2.clone());
    if let (Some(planned), Some(t0)) = (p.planned, plan_from) {
        let elapsed = now - t0;
        if p.moved > 0 && elapsed > 0.0 {
            let rate = p.moved as f64 / elapsed;
            p.eta_secs = Some((planned.saturating_sub(p.moved) as f64 / rate).round() as u64);
        }
    }
    p
}

/// `drain plan: 1366 slots`, as the journal records a plan argument: its number of slots.
fn planned_slots(args: &str) -> Option<usize> {
    let (_, rest) = args.split_once("plan: ")?;
    rest.strip_suffix(" slots")?.parse().ok()
}

/// The journal in the state directory whose last run is `run`, with its records.
fn journal_of(run: &str) -> Option<(PathBuf, Vec<Value>)> {
    let dir = crate::state_dir::state_dir().join("journal");
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(std::result::Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .find_map(|path| {
            let records = crate::journal::read_records(&path).ok()?;
            let last = records.iter().rev().find(|r| r["t"] == "run")?;
            (last["run"].as_str() == Some(run)).then_some((path, records))
        })
}

/// A duration as an operator reads it: `45s`, `3m 12s`, `2h 05m`.
pub fn span(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {:02}s", secs / 60, secs % 60),
        _ => format!("{}h {:02}m", secs / 3600, secs % 3600 / 60),
    }
}

#[derive(Serialize)]
struct Status {
    run: Option<RunSummary>,
    progress: Option<Progress>,
    /// Why there is no progress for a run: it runs on another host, or its journal is not here.
    progress_unknown: Option<String>,
    open: Vec<OpenRange>,
}

/// Reads the cluster and says; exit 0 with no run and nothing open, 1 while a run holds the
/// lease, 3 with slots open and no run to account for them.
pub fn execute(cluster: &crate::live::LiveCluster, json: bool) -> Result<u8> {
    use crate::ops::Cluster;
    let topo = cluster.topology()?;
    let holder = cluster.lease_holder(&topo)?;
    let open = open_ranges(&topo);
    let (progress, unknown) = match &holder {
        None => (None, None),
        Some(h) => local_progress(h),
    };
    let status = Status {
        run: holder.as_ref().map(|h| RunSummary::of(h, open.clone())),
        progress,
        progress_unknown: unknown,
        open,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&status).expect("status serializes"));
    } else {
        print!("{}", render(&status, holder.as_ref()));
    }
    Ok(match (&status.run, status.open.is_empty()) {
        (Some(_), _) => exit::FAILED,
        (None, false) => exit::REFUSED,
        (None, true) => exit::OK,
    })
}

/// The holder's progress when its journal is on this host, or why there is none.
fn local_progress(h: &Holder) -> (Option<Progress>, Option<String>) {
    if h.host != crate::journal::hostname() {
        return (
            None,
            Some(format!("the run is on {}: its journal is there (`runbook journal` on that host)", h.host)),
        );
    }
    match journal_of(&h.run) {
        Some((path, records)) => (Some(Progress { journal: path, ..progress(&records, crate::holder::now()) }), None),
        None => (
            None,
            Some(format!(
                "no journal of run {} in {} (another state directory, or a command that keeps none)",
                h.run,
                crate::state_dir::state_dir().join("journal").display()
            )),
        ),
    }
}

fn render(s: &Status, holder: Option<&Holder>) -> String {
    let mut out = String::new();
    match (&s.run, holder) {
        (Some(run), Some(h)) => {
            let age = (crate::holder::now() as u64).saturating_sub(h.started);
            out.push_str(&format!("{} holds this cluster's lease, for {}\n", run.who(), span(age)));
            if let Some(p) = &s.progress {
                match p.planned {
                    Some(planned) => out.push_str(&format!(
                        "  progress: {} of {planned} slots moved ({}%){}\n",
                        p.moved,
                        (p.moved * 100).checked_div(planned).unwrap_or(100),
                        p.eta_secs.map(|e| format!(", about {} left at the rate so far", span(e))).unwrap_or_default()
                    )),
                    None => out.push_str("  progress: no plan applied yet\n"),
                }
                if let Some(step) = &p.step {
                    out.push_str(&format!("  step: {step}\n"));
                }
                if let Some(m) = &p.moving {
                    out.push_str(&format!("  moving: {m}\n"));
                }
                out.push_str(&format!("  journal: {}\n", p.journal.display()));
            }
            if let Some(why) = &s.progress_unknown {
                out.push_str(&format!("  progress: unknown: {why}\n"));
            }
        }
        _ => out.push_str("no run holds this cluster's lease\n"),
    }
    if s.open.is_empty() {
        out.push_str("no open slots\n");
    } else {
        let whose =
            if s.run.is_some() { " (the run's own)" } else { " (no run holds the lease: `runbook fix` closes them)" };
        out.push_str(&format!("open slots{whose}:\n"));
        for o in &s.open {
            out.push_str(&format!("  {o}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn progress_counts_the_moves_of_the_plan_and_projects_the_rest() {
        let records = [
            json!({"t": "run", "run": "old", "ts": 1.0}),
            json!({"t": "call", "seq": 0, "fn": "apply", "args": "drain plan: 9 slots", "ts": 1.0}),
            json!({"t": "run", "run": "r1", "ts": 100.0}),
            json!({"t": "call", "seq": 0, "fn": "plan_drain", "args": "127.0.0.1:6397", "ts": 100.0}),
            json!({"t": "done", "seq": 0, "result": {}, "ts": 100.0}),
            json!({"t": "call", "seq": 1, "fn": "apply", "args": "drain plan: 16 slots", "ts": 100.0}),
            json!({"t": "intent", "id": 0, "op": "move", "slots": "0-3", "from_addr": "a:1", "to_addr": "b:2"}),
            json!({"t": "outcome", "id": 0, "ok": true}),
            json!({"t": "intent", "id": 1, "op": "move", "slots": "4-7", "from_addr": "a:1", "to_addr": "b:2"}),
            json!({"t": "outcome", "id": 1, "ok": false, "error": "x"}),
            json!({"t": "intent", "id": 2, "op": "move", "slots": "8-11", "from_addr": "a:1", "to_addr": "c:3"}),
        ];
        let p = progress(&records, 110.0);
        assert_eq!(p.planned, Some(16));
        assert_eq!(p.moved, 4, "only moves that went through count");
        assert_eq!(p.step.as_deref(), Some("apply(drain plan: 16 slots)"));
        assert_eq!(p.moving.as_deref(), Some("8-11 a:1 → c:3"));
        // 4 slots in 10 s: 12 left take 30 s.
        assert_eq!(p.eta_secs, Some(30));
        let none = progress(&records[2..5], 110.0);
        assert_eq!((none.planned, none.moved, none.eta_secs), (None, 0, None));
        assert_eq!(none.step.as_deref(), Some("plan_drain(127.0.0.1:6397)"));
    }

    #[test]
    fn spans_read_as_an_operator_would_say_them() {
        assert_eq!(span(45), "45s");
        assert_eq!(span(192), "3m 12s");
        assert_eq!(span(7500), "2h 05m");
        assert_eq!(planned_slots("rebalance plan: 1366 slots"), Some(1366));
        assert_eq!(planned_slots("127.0.0.1:6397"), None);
    }
}

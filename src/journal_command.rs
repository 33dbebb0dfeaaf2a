//! `runbook journal`: the runs recorded in the state directory, and what one of them did.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result, exit};
use crate::holder::unix_time;
use crate::journal::read_records;

fn dir() -> PathBuf {
    crate::state_dir::state_dir().join("journal")
}

pub fn execute(run: Option<&str>) -> Result<u8> {
    match run {
        None => list(),
        Some(r) => show(&resolve(r)?),
    }
}

fn resolve(run: &str) -> Result<PathBuf> {
    let p = Path::new(run);
    if p.is_file() {
        return Ok(p.to_path_buf());
    }
    let name = if Path::new(run).extension().is_some_and(|e| e.eq_ignore_ascii_case("jsonl")) {
        run.to_string()
    } else {
        format!("{run}.jsonl")
    };
    let p = dir().join(name);
    if p.is_file() {
        Ok(p)
    } else {
        Err(Error::usage(format!("no journal `{run}`"), Some("`runbook journal` lists them")))
    }
}

/// (status, records of the last run) of a journal file.
fn last_run(records: &[Value]) -> (&'static str, &[Value]) {
    let start = records.iter().rposition(|r| r["t"] == "run").unwrap_or(0);
    let run = &records[start..];
    let status = match run.iter().rev().find(|r| r["t"] == "end").and_then(|r| r["status"].as_str()) {
        Some("finished") => "finished",
        Some("cancelled") => "cancelled",
        Some(_) => "failed",
        None => "interrupted",
    };
    (status, run)
}

fn list() -> Result<u8> {
    let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(dir())
        .map(|rd| {
            rd.filter_map(std::result::Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
                .map(|e| (e.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH), e.path()))
                .collect()
        })
        .unwrap_or_default();
    if files.is_empty() {
        println!("no journaled runs in {}", dir().display());
        return Ok(exit::OK);
    }
    files.sort();
    println!("{:<28} {:<14} {:<24} {:<12} {:>5}  cluster", "journal", "runbook", "last run", "status", "runs");
    for (_, path) in files {
        let records = read_records(&path)?;
        let (status, run) = last_run(&records);
        let head = run.first().cloned().unwrap_or_default();
        println!(
            "{:<28} {:<14} {:<24} {:<12} {:>5}  {}",
            path.file_stem().unwrap_or_default().to_string_lossy(),
            head["runbook"].as_str().unwrap_or("?"),
            unix_time(head["ts"].as_f64().unwrap_or_default() as u64),
            status,
            records.iter().filter(|r| r["t"] == "run").count(),
            head["cluster"].as_str().unwrap_or("?"),
        );
    }
    Ok(exit::OK)
}

fn show(path: &Path) -> Result<u8> {
    let (records, damage) = crate::journal::read_records_noting(path)?;
    let (status, run) = last_run(&records);
    let Some(head) = run.first() else {
        if !damage.is_empty() || path.metadata().is_ok_and(|m| m.len() > 0) {
            // Something else than a journal (`runbook journal /etc/passwd`): said, not shown empty.
            return Err(Error::usage(
                format!("{} is not a runbook journal: it holds no run record", path.display()),
                Some("`runbook journal` lists the journals"),
            ));
        }
        println!("{} is empty", path.display());
        return Ok(exit::OK);
    };
    for d in &damage {
        eprintln!("warning: {}: {d}", path.display());
    }
    println!(
        "run {} of `{}` {} on {}: {status}\n  started {} by pid {} on {}{}",
        head["run"].as_str().unwrap_or("?"),
        head["runbook"].as_str().unwrap_or("?"),
        head["params"],
        head["cluster"].as_str().unwrap_or("?"),
        unix_time(head["ts"].as_f64().unwrap_or_default() as u64),
        head["pid"],
        head["host"].as_str().unwrap_or("?"),
        head["resumes"].as_str().map(|r| format!(", resuming run {r}")).unwrap_or_default(),
    );
    for r in &run[1..] {
        let line = match r["t"].as_str().unwrap_or_default() {
            "call" => format!(
                "  #{:<3} {}({}){}",
                r["seq"],
                r["fn"].as_str().unwrap_or("?"),
                r["args"].as_str().unwrap_or(""),
                if r["replayed"] == true { "  (replayed)" } else { "" }
            ),
            "fail" => format!("        failed: {}", r["error"].as_str().unwrap_or("?")),
            "intent" if r["op"] == "move" => format!(
                "        move {} {} → {}{}",
                r["slots"].as_str().unwrap_or("?"),
                r["from_addr"].as_str().or_else(|| r["from"].as_str()).unwrap_or("?"),
                r["to_addr"].as_str().or_else(|| r["to"].as_str()).unwrap_or("?"),
                r["phase"].as_str().map(|p| format!(" ({p})")).unwrap_or_default(),
            ),
            "intent" => {
                let mut fields: Vec<String> = r
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, _)| !["t", "id", "ts", "op"].contains(&k.as_str()))
                    .map(|(k, v)| format!("{k}={}", v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                    .collect();
                fields.sort();
                format!("        {} {}", r["op"].as_str().unwrap_or("?"), fields.join(" "))
            }
            "phase" => format!("          · {}", r["phase"].as_str().unwrap_or("?")),
            // A forget some node missed: pending until `runbook fix` finishes it.
            "membership" if r["missed"].as_array().is_some_and(|m| !m.is_empty()) => format!(
                "        forget of {} missed by {} (pending: runbook fix)",
                r["addr"].as_str().unwrap_or("?"),
                r["missed"].as_array().into_iter().flatten().filter_map(|m| m.as_str()).collect::<Vec<_>>().join(", ")
            ),
            "outcome" if r["ok"] == false => format!("        ✗ {}", r["error"].as_str().unwrap_or("?")),
            "end" => format!(
                "  end: {}{}",
                r["status"].as_str().unwrap_or("?"),
                r["error"].as_str().map(|e| format!(" ({e})")).unwrap_or_default()
            ),
            _ => continue,
        };
        println!("{line}");
    }
    Ok(exit::OK)
}

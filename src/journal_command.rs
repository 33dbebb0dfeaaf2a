//! `runbook journal`: the runs recorded in the state directory, what one of them did, and
//! `prune`, which removes the journals of runs that are over.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result, exit};
use crate::holder::unix_time;
use crate::journal::read_records;

/// `runbook journal prune`: removes the journals last written more than `older_than` ago whose
/// run is over, so a re-run would not resume it; one a re-run would resume is kept, said, whatever
/// its age, and so is one a running process holds.
pub fn prune(older_than: std::time::Duration, dry_run: bool) -> Result<u8> {
    let now = std::time::SystemTime::now();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir())
        .map(|rd| {
            rd.filter_map(std::result::Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    let (mut removed, mut bytes, mut kept) = (0_usize, 0_u64, 0_usize);
    for path in paths {
        let Ok(meta) = path.metadata() else { continue };
        let written = meta.modified().unwrap_or(now);
        if now.duration_since(written).unwrap_or_default() < older_than {
            continue;
        }
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        // Held by a run under way (its lock): not ours to judge, let alone remove.
        let file = std::fs::File::open(&path).map_err(|e| Error::io(format!("opening {}", path.display()), &e))?;
        if file.try_lock().is_err() {
            println!("kept {name}: a run under way holds it");
            kept += 1;
            continue;
        }
        let (records, damage) = crate::journal::read_records_noting(&path)?;
        // An empty file is what a refused run of an earlier version left; anything else that is
        // no journal is not runbook's to remove.
        let empty = records.is_empty() && damage.is_empty();
        if !empty && !crate::journal::is_journal(&records) {
            println!("kept {name}: not a runbook journal");
            kept += 1;
            continue;
        }
        if crate::journal::resumable(records, changes_cluster) {
            println!("kept {name}: its last run did not finish; running the same command again resumes it");
            kept += 1;
            continue;
        }
        let when = unix_time(written.duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs());
        if dry_run {
            println!("would remove {name} ({} bytes, last written {when})", meta.len());
        } else {
            std::fs::remove_file(&path).map_err(|e| Error::io(format!("removing {}", path.display()), &e))?;
            println!("removed {name} ({} bytes, last written {when})", meta.len());
        }
        removed += 1;
        bytes += meta.len();
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    let kept = if kept > 0 { format!("; kept {kept} (said above)") } else { String::new() };
    println!(
        "{verb} {removed} journal(s) older than {}, {bytes} bytes, from {}{kept}",
        age(older_than),
        dir().display()
    );
    Ok(exit::OK)
}

/// An age as the operator would type it: `30d`, `12h`, `90m`, `45s`.
fn age(d: std::time::Duration) -> String {
    let s = d.as_secs();
    [(86400, 'd'), (3600, 'h'), (60, 'm')]
        .iter()
        .find(|(unit, _)| s > 0 && s.is_multiple_of(*unit))
        .map_or_else(|| format!("{s}s"), |(unit, c)| format!("{}{c}", s / unit))
}

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
        Err(Error::usage(
            format!("no journal `{run}`: no such file, nor a journal of that name in {}", dir().display()),
            Some("`runbook journal` lists them"),
        ))
    }
}

/// The records of a journal file; a file that is none (`runbook journal /etc/passwd`, an empty
/// file, JSON lines of something else) is bad input, said with what was expected.
fn journal_records(path: &Path) -> Result<(Vec<Value>, Vec<String>)> {
    let (records, damage) = crate::journal::read_records_noting(path)?;
    if crate::journal::is_journal(&records) {
        return Ok((records, damage));
    }
    let found = if records.is_empty() && damage.is_empty() {
        "it is empty".to_string()
    } else if let Some(first) = damage.first().filter(|_| records.is_empty()) {
        first.clone()
    } else {
        "its first record is not a run's start".to_string()
    };
    Err(Error::usage(
        format!(
            "{} is not a runbook journal: {found}; a journal is JSON lines, the first a run record (`{{\"t\":\"run\",…}}`)",
            path.display()
        ),
        Some("`runbook journal` lists the journals"),
    ))
}

/// Whether a call of this name can change the cluster, for journals written before `call`
/// records said so.
fn changes_cluster(name: &str) -> bool {
    crate::script::primitives().iter().any(|p| p.name == name && p.changes_cluster())
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
        if !crate::journal::is_journal(&records) {
            eprintln!("warning: {} is not a runbook journal: `runbook journal` on it says why", path.display());
            continue;
        }
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
    let (records, damage) = journal_records(path)?;
    let (status, run) = last_run(&records);
    let head = &run[0];
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

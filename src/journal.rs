//! The journal: one JSON line per runbook call and per mutating step, fsynced before the step is
//! sent, so a run that dies anywhere leaves a truthful record, and running the same command
//! again can finish it.
//!
//! A journal file holds the runs of one (runbook, parameters, cluster); the last run is resumed
//! when it did not end. Records (`t` is the type):
//! - `run`     a run starts: id, runbook, params, cluster, host, pid, time; `resumes` when it resumes one
//! - `cluster` the ids of the cluster's nodes, when the run first connects: a resume checks that
//!   it is the same cluster, not another one at the same address
//! - `call`    a runbook primitive is called (seq, fn, args, changes: whether it can change the
//!   cluster);  `done` (seq, result) / `fail` (seq, error)
//! - `intent`  a mutating step is about to be sent (op, nodes, slots, phase);  `outcome` after it
//! - `end`     the run ended: finished, failed or cancelled
//!
//! Passwords are never written: they are not parameters, and no command line is recorded.
//!
//! A run holds an exclusive lock on its journal file from `open` until it exits, so two
//! processes never act on or write one journal; its `run` record is written by `start`, once
//! the run holds the cluster's lease, so a run refused at either leaves no trace. A journal in
//! which no run changed anything (a read-only script, a refused run) is removed when the run
//! ends: it holds nothing to resume, and journals would pile up, one per look at a cluster.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::output::Output;
use crate::plan::Intent;

pub use crate::holder::now;

/// A completed call of the run being resumed, returned again instead of being executed.
#[derive(Clone, Debug)]
struct Recorded {
    name: String,
    result: Value,
}

/// What is left of an interrupted run.
#[derive(Clone, Debug, Default)]
pub struct Resume {
    pub run_id: String,
    pub started: f64,
    pub calls_done: usize,
    /// Slot batches whose move began and did not finish (interrupted, or stopped by an error,
    /// which may leave slots open too), with the id of the intent this run carried them over as:
    /// reconcile each, then write its outcome.
    pub in_flight: Vec<(u64, Intent)>,
    /// The node ids the interrupted run saw when it connected (empty in older journals).
    pub cluster_ids: Vec<String>,
}

/// Whether a call is answered from the journal or must run.
pub enum Begin {
    Replayed(Value),
    Live(u64),
}

pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
    run_id: String,
    seq: AtomicU64,
    replay: Mutex<VecDeque<Recorded>>,
    intent_seq: AtomicU64,
    started: AtomicBool,
    /// Lines of the file that are no journal record, said when the journal is opened.
    damage: Vec<String>,
    /// Whether an earlier run in the file changed the cluster, or set out to (a call that can
    /// change it, a mutating step).
    held_before: bool,
    /// Whether this run changed the cluster, set out to, or decided something a later run must
    /// heed (an abandoned resume). With `held_before`, it keeps the journal when the run ends;
    /// if only the earlier runs did, this run's records are cut off the file.
    changed_here: AtomicBool,
    /// The file's length before this run wrote to it.
    start_len: u64,
}

impl Journal {
    /// Opens (creating) the journal at `path`, locks it for this process, and reads what its
    /// last run left: when that run did not end, this one resumes it. Nothing is written until
    /// `start`, so a run refused before it begins (by the cluster's lease) leaves no trace.
    ///
    /// The lock (an exclusive advisory lock, held until the process ends) means two processes
    /// never act on or write one journal: the second is refused here, with the holder named.
    ///
    /// `changes_cluster` says whether the primitive of a name can change the cluster, for calls
    /// recorded without saying so (by versions before `call` records carried `changes`).
    pub fn open(path: &Path, changes_cluster: impl Fn(&str) -> bool) -> Result<(Self, Option<Resume>)> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("creating {}", dir.display()), &e))?;
        }
        // The holder writes its run record once it holds the cluster's lease (a moment after it
        // took this lock): wait for it, to name the holder, or for the lock, should it quit.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let file = loop {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| Error::io(format!("opening the journal {}", path.display()), &e))?;
            match file.try_lock() {
                // The run that held the lock may have removed the file (it changed nothing)
                // before letting go: a lock on a removed file guards nothing, so open the path
                // again.
                Ok(()) if is_at(&file, path) => break file,
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    if let Some(holder) = running_holder(path) {
                        return Err(locked_by(path, &holder.describe()));
                    }
                    if std::time::Instant::now() >= deadline {
                        return Err(locked_by(
                            path,
                            "another process (its run has not started: it is still connecting or waiting for the cluster's lease)",
                        ));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(Error::io(format!("locking the journal {}", path.display()), &e));
                }
            }
        };
        let start_len = file.metadata().map_or(0, |m| m.len());
        let (records, damage) = read_records_noting(path)?;
        let held_before = records_change(&records, &changes_cluster);
        let (replay, resume) = read_last_run(records, changes_cluster);
        let run_id = format!("{:x}-{}", now() as u64, std::process::id());
        let journal = Journal {
            path: path.to_path_buf(),
            file: Mutex::new(file),
            run_id,
            seq: AtomicU64::new(0),
            replay: Mutex::new(if resume.is_some() { replay } else { VecDeque::new() }),
            intent_seq: AtomicU64::new(0),
            started: AtomicBool::new(false),
            damage,
            held_before,
            changed_here: AtomicBool::new(false),
            start_len,
        };
        Ok((journal, resume))
    }

    /// Lines of the file that are no journal record (empty when it is whole).
    pub fn damage(&self) -> &[String] {
        &self.damage
    }

    /// Whether the file stays when this run ends: some run in it changed the cluster or set out
    /// to, or it holds lines that are no record (the operator's to look at, not ours to delete).
    pub fn kept(&self) -> bool {
        self.held_before || self.changed_here.load(Ordering::SeqCst) || !self.damage.is_empty()
    }

    /// Starts this run in the journal: its `run` record, then the moves it carries over from
    /// `resume` (at once, so they stay in flight if this run dies too).
    pub fn start(&self, runbook: &str, params: &Value, cluster: &str, resume: Option<&mut Resume>) -> Result<()> {
        self.write(&json!({
            "t": "run", "run": self.run_id, "runbook": runbook, "params": params, "cluster": cluster,
            "host": hostname(), "pid": std::process::id(), "ts": now(),
            "resumes": resume.as_ref().map(|r| r.run_id.clone()),
        }))?;
        self.started.store(true, Ordering::SeqCst);
        if let Some(r) = resume {
            for (id, b) in &mut r.in_flight {
                let slots: crate::model::SlotSet = b.slots.iter().copied().collect();
                *id = self.intent(json!({
                    "op": "move", "from": b.from, "to": b.to, "slots": slots.to_string(), "phase": "carried over",
                    "from_replicas": b.from_replicas, "to_replicas": b.to_replicas,
                }))?;
            }
        }
        Ok(())
    }

    /// Whether `start` wrote this run's record.
    pub fn started(&self) -> bool {
        self.started.load(Ordering::SeqCst)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Appends one record and fsyncs it: when this returns, the record survives a crash.
    pub fn write(&self, record: &Value) -> Result<()> {
        let mut line = serde_json::to_vec(record).expect("records serialize");
        line.push(b'\n');
        let mut f = self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f.write_all(&line)
            .and_then(|()| f.sync_data())
            .map_err(|e| Error::io(format!("writing the journal {}", self.path.display()), &e))
    }

    /// Appends a record without waiting for the disk: for progress notes (phases) whose loss in
    /// a crash costs nothing, since the next intent or outcome is fsynced anyway.
    pub fn note(&self, record: &Value) {
        let mut line = serde_json::to_vec(record).expect("records serialize");
        line.push(b'\n');
        let mut f = self.file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = f.write_all(&line);
    }

    /// Starts a primitive call: answered from the journal while replaying a resumed run (same
    /// function at the same position), else recorded and run. `changes` (the call can change the
    /// cluster) is recorded: a resumed run replays its calls up to the last such one. A path
    /// that leaves the resumed run's is said to `out`.
    pub fn begin(&self, name: &str, args: &str, changes: bool, out: &Output) -> Result<Begin> {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst);
        if changes {
            self.changed_here.store(true, Ordering::SeqCst);
        }
        {
            let mut replay = self.replay.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match replay.front() {
                Some(r) if r.name == name => {
                    let r = replay.pop_front().expect("front exists");
                    self.write(
                        &json!({"t": "call", "seq": seq, "fn": name, "args": args, "changes": changes, "replayed": true}),
                    )?;
                    self.write(&json!({"t": "done", "seq": seq, "result": r.result.clone(), "replayed": true}))?;
                    return Ok(Begin::Replayed(r.result));
                }
                Some(r) => {
                    out.say(&format!(
                        "the runbook took another path than the run it resumes (`{name}` where `{}` was); continuing live",
                        r.name
                    ));
                    replay.clear();
                }
                None => {}
            }
        }
        self.write(&json!({"t": "call", "seq": seq, "fn": name, "args": args, "changes": changes, "ts": now()}))?;
        Ok(Begin::Live(seq))
    }

    pub fn done(&self, seq: u64, result: Value) -> Result<()> {
        self.write(&json!({"t": "done", "seq": seq, "result": result, "ts": now()}))
    }

    pub fn fail(&self, seq: u64, error: &str) -> Result<()> {
        self.write(&json!({"t": "fail", "seq": seq, "error": error, "ts": now()}))
    }

    /// How many mutating steps this run has recorded (and so sent, or was about to).
    pub fn intents_written(&self) -> u64 {
        self.intent_seq.load(Ordering::SeqCst)
    }

    /// Records a mutating step before it is sent; returns its id for the outcome.
    pub fn intent(&self, mut record: Value) -> Result<u64> {
        let id = self.intent_seq.fetch_add(1, Ordering::SeqCst);
        self.changed_here.store(true, Ordering::SeqCst);
        record["t"] = json!("intent");
        record["id"] = json!(id);
        record["ts"] = json!(now());
        self.write(&record)?;
        Ok(id)
    }

    /// How a mutating step ended. A move that failed stays in flight: its slots may be open, and
    /// the next run reconciles them.
    pub fn outcome(&self, id: u64, error: Option<&str>) -> Result<()> {
        self.write(&json!({"t": "outcome", "id": id, "ok": error.is_none(), "error": error, "ts": now()}))
    }

    /// Records which cluster this run is working on: the ids of its nodes.
    pub fn cluster(&self, ids: &[String]) -> Result<()> {
        self.write(&json!({"t": "cluster", "ids": ids, "ts": now()}))
    }

    /// Gives up resuming `resume`: nothing is replayed, and its carried-over moves are closed
    /// with `why`, so no later run tries to finish them either.
    pub fn abandon(&self, resume: &Resume, why: &str) -> Result<()> {
        self.replay.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
        self.changed_here.store(true, Ordering::SeqCst);
        for (id, _) in &resume.in_flight {
            self.write(&json!({"t": "outcome", "id": id, "ok": false, "abandoned": true, "error": why, "ts": now()}))?;
        }
        Ok(())
    }

    pub fn end(&self, status: &str, error: Option<&str>) -> Result<()> {
        self.write(&json!({"t": "end", "status": status, "error": error, "ts": now()}))
    }
}

impl Drop for Journal {
    /// Removes the journal when no run in it changed anything, and else cuts off this run's
    /// records when it changed nothing (a run refused by a typo is no history, and the run
    /// before it stays the last, resumable if it was): while this process still holds the
    /// lock, and only on the file it locked (see `open`).
    fn drop(&mut self) {
        let (kept, changed_here) = (self.kept(), *self.changed_here.get_mut());
        let file = self.file.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !is_at(file, &self.path) {
            return;
        }
        if !kept {
            let _ = std::fs::remove_file(&self.path);
        } else if !changed_here && self.damage.is_empty() {
            let _ = file.set_len(self.start_len);
        }
    }
}

/// Whether `path` still names the file `file` has open (not one made after it was removed).
fn is_at(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        matches!((file.metadata(), std::fs::metadata(path)), (Ok(a), Ok(b)) if (a.dev(), a.ino()) == (b.dev(), b.ino()))
    }
    #[cfg(not(unix))]
    {
        file.metadata().is_ok() && path.exists()
    }
}

/// Whether a run in these records changed the cluster or set out to: a call that can change it
/// (`changes_cluster` says for calls recorded before they carried `changes`), or a mutating step.
pub fn records_change(records: &[Value], changes_cluster: impl Fn(&str) -> bool) -> bool {
    records.iter().any(|r| match r["t"].as_str() {
        Some("intent") => true,
        Some("call") => r["changes"].as_bool().unwrap_or_else(|| changes_cluster(r["fn"].as_str().unwrap_or_default())),
        _ => false,
    })
}

/// Whether these records are a journal's: the first is a run's start, as `start` writes it.
pub fn is_journal(records: &[Value]) -> bool {
    records.first().is_some_and(|r| r["t"] == "run")
}

/// Whether running the same command again would resume the last run of these records.
pub fn resumable(records: Vec<Value>, changes_cluster: impl Fn(&str) -> bool) -> bool {
    read_last_run(records, changes_cluster).1.is_some()
}

/// The run that holds a locked journal: its last run, when that has not ended and its process
/// is alive (or runs on another host, for a journal on a shared disk).
fn running_holder(path: &Path) -> Option<crate::holder::Holder> {
    let records = read_records(path).ok()?;
    let start = records.iter().rposition(|r| r["t"] == "run")?;
    if records[start..].iter().any(|r| r["t"] == "end") {
        return None;
    }
    let r = &records[start];
    let holder = crate::holder::Holder {
        host: r["host"].as_str().unwrap_or("?").to_string(),
        pid: u32::try_from(r["pid"].as_u64()?).ok()?,
        runbook: r["runbook"].as_str().unwrap_or("?").to_string(),
        started: r["ts"].as_f64().unwrap_or(0.0) as u64,
        run: r["run"].as_str().unwrap_or_default().to_string(),
    };
    let alive = holder.host != hostname() || Path::new(&format!("/proc/{}", holder.pid)).exists();
    alive.then_some(holder)
}

fn locked_by(path: &Path, who: &str) -> Error {
    Error::refused(
        format!("another run of this command is under way: {who}; it holds the journal {}", path.display()),
        Some(
            "wait for it to finish (its lock goes away when it ends or dies); the same command then finishes whatever it left",
        ),
    )
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// Every record of a journal file; lines that are none (a torn last line, the process having
/// died mid-write, or damage) are skipped.
pub fn read_records(path: &Path) -> Result<Vec<Value>> {
    read_records_noting(path).map(|(records, _)| records)
}

/// Every record of a journal file, and a description of each line that is none ("line 57 is
/// not a journal record: `garbage…`"): the records around a damaged line are all kept.
pub fn read_records_noting(path: &Path) -> Result<(Vec<Value>, Vec<String>)> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(e) => return Err(Error::io(format!("reading the journal {}", path.display()), &e)),
    };
    let mut records = Vec::new();
    let mut damage = Vec::new();
    let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    for (i, line) in lines.iter().enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match std::str::from_utf8(line).ok().and_then(|l| serde_json::from_str::<Value>(l).ok()) {
            Some(v) if v.is_object() => records.push(v),
            _ => {
                let text = String::from_utf8_lossy(line);
                let preview: String = text.chars().take(40).collect();
                let more = if text.chars().count() > 40 { "…" } else { "" };
                let torn = if i + 1 == lines.len() { " (cut short: the process stopped while writing it)" } else { "" };
                damage.push(format!("line {} is not a journal record{torn}: `{preview}{more}`", i + 1));
            }
        }
    }
    Ok((records, damage))
}

/// The records of the last run in a file, with the runs it resumed folded in: a resumed run's
/// replayed calls stand for the original ones.
fn read_last_run(records: Vec<Value>, changes_cluster: impl Fn(&str) -> bool) -> (VecDeque<Recorded>, Option<Resume>) {
    let Some(start) = records.iter().rposition(|r| r["t"] == "run") else {
        return (VecDeque::new(), None);
    };
    let run = &records[start..];
    // Only a run that finished is done with; a failed, cancelled or killed one is resumed.
    if run.iter().any(|r| r["t"] == "end" && r["status"] == "finished") {
        return (VecDeque::new(), None);
    }
    // Per call: its name, whether it can change the cluster, its result once done.
    let mut calls: BTreeMap<u64, (String, bool, Option<Value>)> = BTreeMap::new();
    let mut intents: BTreeMap<u64, Value> = BTreeMap::new();
    let mut cluster_ids = Vec::new();
    for r in &run[1..] {
        match r["t"].as_str() {
            Some("cluster") => {
                cluster_ids =
                    r["ids"].as_array().into_iter().flatten().filter_map(|v| v.as_str()).map(str::to_string).collect();
            }
            Some("call") => {
                let name = r["fn"].as_str().unwrap_or_default().to_string();
                let changes = r["changes"].as_bool().unwrap_or_else(|| changes_cluster(&name));
                calls.insert(r["seq"].as_u64().unwrap_or(0), (name, changes, None));
            }
            Some("done") => {
                if let Some(c) = calls.get_mut(&r["seq"].as_u64().unwrap_or(0)) {
                    c.2 = Some(r["result"].clone());
                }
            }
            Some("intent") if r["op"] == "move" => {
                intents.insert(r["id"].as_u64().unwrap_or(0), r.clone());
            }
            Some("outcome") if r["ok"] == true || r["abandoned"] == true => {
                if let Some(done) = intents.remove(&r["id"].as_u64().unwrap_or(u64::MAX))
                    && r["ok"] == true
                {
                    // A move that went through also settles an earlier failed attempt at the
                    // same slots (a batch retried after its failure was settled).
                    let slots = |i: &Value| crate::model::SlotSet::parse(i["slots"].as_str().unwrap_or_default()).ok();
                    if let Some(moved) = slots(&done) {
                        intents.retain(|_, i| slots(i).is_none_or(|s| s.iter().any(|x| !moved.contains(x))));
                    }
                }
            }
            _ => {}
        }
    }
    // Replay the completed calls up to the last one that changed something, or up to the one
    // that was changing something when the run died or failed (that one runs again, live, with
    // the decisions taken before it: the same plan, the same replica list). Reads after the last
    // completed change run live (a final check that failed must be asked again, not repeated).
    // A run that changed nothing is simply run again.
    let started_mutation = calls.values().any(|(_, changes, _)| *changes);
    let last = calls.values().rposition(|(_, changes, _)| *changes);
    let keep = last.map_or(0, |i| i + usize::from(calls.values().nth(i).is_some_and(|c| c.2.is_some())));
    let mut replay: VecDeque<Recorded> =
        calls.into_values().map_while(|(name, _, result)| result.map(|result| Recorded { name, result })).collect();
    replay.truncate(keep);
    if !started_mutation && intents.is_empty() {
        return (VecDeque::new(), None);
    }
    let in_flight = intents
        .values()
        .filter_map(|i| {
            let slots = crate::model::SlotSet::parse(i["slots"].as_str()?).ok()?;
            let ids = |k: &str| -> Vec<String> {
                i[k].as_array().into_iter().flatten().filter_map(|v| v.as_str()).map(str::to_string).collect()
            };
            Some((
                0,
                Intent {
                    from: i["from"].as_str()?.to_string(),
                    to: i["to"].as_str()?.to_string(),
                    slots: slots.iter().collect(),
                    from_replicas: ids("from_replicas"),
                    to_replicas: ids("to_replicas"),
                },
            ))
        })
        .collect();
    let resume = Resume {
        run_id: run[0]["run"].as_str().unwrap_or_default().to_string(),
        started: run[0]["ts"].as_f64().unwrap_or_default(),
        calls_done: replay.len(),
        in_flight,
        cluster_ids,
    };
    (replay, Some(resume))
}

/// The default journal for a runbook run: one file per (runbook, parameters, cluster), so the
/// same command finds the run it should resume.
pub fn default_path(runbook: &str, source: &str, params: &Value, cluster: &str) -> PathBuf {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in source.bytes().chain(params.to_string().bytes()).chain(cluster.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let name: String = runbook
        .rsplit('/')
        .next()
        .unwrap_or(runbook)
        .trim_end_matches(".rhai")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect();
    crate::state_dir::state_dir().join("journal").join(format!("{name}-{:08x}.jsonl", h as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call that can change the cluster, and one that cannot.
    const CHANGES: bool = true;
    const READS: bool = false;

    /// What a journal of an earlier version needs to be told: which of its calls changed the cluster.
    fn changes_cluster(name: &str) -> bool {
        name != "check"
    }

    /// Opens the journal at `path` and starts a run in it, as `runbook run` does.
    fn start(path: &Path) -> (Journal, Option<Resume>) {
        let (j, mut resume) = Journal::open(path, changes_cluster).unwrap();
        j.start("rb", &json!({}), "c", resume.as_mut()).unwrap();
        (j, resume)
    }

    #[test]
    fn one_process_at_a_time_and_a_refused_run_leaves_no_trace() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let (j, _) = start(&path);
        let Begin::Live(s) = j.begin("del_node", "6397", CHANGES, &Output::default()).unwrap() else { panic!() };
        j.done(s, json!({})).unwrap();
        // A second open of the same journal is refused, naming the run that holds it.
        let Err(e) = Journal::open(&path, changes_cluster) else { panic!("a second open must be refused") };
        assert_eq!(e.code(), crate::error::exit::REFUSED);
        let msg = e.to_string();
        assert!(msg.contains("another run of this command is under way: runbook `rb`"), "{msg}");
        assert!(msg.contains(&format!("(pid {} on ", std::process::id())), "{msg}");
        drop(j);
        // Once the holder is gone the journal opens again; opened without `start`, nothing is
        // written, so the unfinished run is still the one a later run resumes.
        let (j, resume) = Journal::open(&path, changes_cluster).unwrap();
        assert!(resume.is_some() && !j.started());
        drop(j);
        let records = read_records(&path).unwrap();
        assert_eq!(records.iter().filter(|r| r["t"] == "run").count(), 1);
        let (_, resume) = start(&path);
        assert_eq!(resume.expect("still resumable").calls_done, 1);
    }

    #[test]
    fn a_journal_in_which_nothing_changed_is_removed_when_its_run_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let (j, _) = start(&path);
        let Begin::Live(s) = j.begin("check", "", READS, &Output::default()).unwrap() else { panic!() };
        j.done(s, json!("healthy")).unwrap();
        j.end("finished", None).unwrap();
        assert!(!j.kept());
        // Another process opened the file meanwhile and waits for its lock: once the holder
        // removed it, its handle is to no journal, which `open` sees and opens the path again.
        let waiting = OpenOptions::new().append(true).open(&path).unwrap();
        drop(j);
        assert!(!path.exists());
        assert!(!is_at(&waiting, &path));
        // A change keeps it; a later run that changed nothing leaves it as it found it.
        let (j, resume) = start(&path);
        assert!(resume.is_none() && is_at(&j.file.lock().unwrap(), &path));
        let Begin::Live(s) = j.begin("del_node", "6397", CHANGES, &Output::default()).unwrap() else { panic!() };
        j.done(s, json!({})).unwrap();
        j.end("finished", None).unwrap();
        drop(j);
        let before = std::fs::read(&path).unwrap();
        let (j, _) = start(&path);
        j.end("failed", Some("no node matches `6379`")).unwrap();
        assert!(j.kept());
        drop(j);
        assert_eq!(std::fs::read(&path).unwrap(), before);
        // Its unfinished run stays the one the next run resumes.
        let (j, _) = start(&path);
        let Begin::Live(s) = j.begin("del_node", "6398", CHANGES, &Output::default()).unwrap() else { panic!() };
        j.done(s, json!({})).unwrap();
        drop(j);
        let (j, _) = start(&path);
        j.end("failed", Some("refused")).unwrap();
        drop(j);
        assert!(start(&path).1.is_some(), "the run that did not end is still resumable");
        // So does a file with lines that are no record: not ours to delete.
        let other = dir.path().join("other.jsonl");
        std::fs::write(&other, "not a record\n").unwrap();
        drop(Journal::open(&other, changes_cluster).unwrap().0);
        assert!(other.exists());
    }

    #[test]
    fn damaged_lines_are_named_and_the_records_around_them_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        std::fs::write(&path, b"{\"t\":\"run\"}\nnot json\n\xff\xfe\n[1]\n{\"t\":\"end\"}\n{\"t\":\"ca").unwrap();
        let (records, damage) = read_records_noting(&path).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(damage.len(), 4, "{damage:?}");
        assert_eq!(damage[0], "line 2 is not a journal record: `not json`");
        assert!(damage[3].starts_with("line 6 is not a journal record (cut short"), "{damage:?}");
    }

    #[test]
    fn an_unfinished_run_is_resumed_with_its_completed_calls() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let (j, resume) = start(&path);
        assert!(resume.is_none());
        let Begin::Live(s0) = j.begin("del_node", "6397", CHANGES, &Output::default()).unwrap() else { panic!() };
        j.done(s0, json!({"x": 1})).unwrap();
        // A read before the interrupted change is one of the decisions behind it: replayed.
        let Begin::Live(r) = j.begin("check", "", READS, &Output::default()).unwrap() else { panic!() };
        j.done(r, json!("unhealthy")).unwrap();
        let Begin::Live(s1) = j.begin("apply", "plan", CHANGES, &Output::default()).unwrap() else { panic!() };
        let id = j.intent(json!({"op": "move", "from": "a", "to": "b", "slots": "0-2"})).unwrap();
        let _ = (s1, id);
        drop(j);
        // A torn last line, as a crash mid-write leaves.
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"t\":\"do").unwrap();

        let (j, resume) = start(&path);
        let resume = resume.expect("resumes");
        assert_eq!(resume.calls_done, 2);
        assert_eq!(resume.in_flight.len(), 1);
        assert_eq!(
            resume.in_flight[0].1,
            Intent { from: "a".into(), to: "b".into(), slots: vec![0, 1, 2], ..Intent::default() }
        );
        assert!(
            matches!(j.begin("del_node", "6397", CHANGES, &Output::default()).unwrap(), Begin::Replayed(v) if v == json!({"x": 1}))
        );
        assert!(
            matches!(j.begin("check", "", READS, &Output::default()).unwrap(), Begin::Replayed(v) if v == json!("unhealthy"))
        );
        let Begin::Live(a) = j.begin("apply", "plan", CHANGES, &Output::default()).unwrap() else {
            panic!("the interrupted change runs live")
        };
        j.done(a, json!({"slots": 3})).unwrap();
        // A read after the last completed change is not replayed: it runs again, live.
        let Begin::Live(f) = j.begin("check", "", READS, &Output::default()).unwrap() else { panic!() };
        j.done(f, json!("still unhealthy")).unwrap();
        drop(j);
        let (j, resume) = start(&path);
        assert_eq!(resume.expect("resumes").calls_done, 3);
        for name in ["del_node", "check", "apply"] {
            assert!(
                matches!(j.begin(name, "", changes_cluster(name), &Output::default()).unwrap(), Begin::Replayed(_)),
                "{name} is replayed"
            );
        }
        assert!(matches!(j.begin("check", "", READS, &Output::default()).unwrap(), Begin::Live(_)));
        drop(j);
        // Died again before finishing the carried-over move: it is still in flight.
        let (j, resume) = start(&path);
        let resume = resume.expect("resumes again");
        assert_eq!(resume.in_flight.len(), 1);
        j.outcome(resume.in_flight[0].0, None).unwrap();
        j.end("finished", None).unwrap();
        drop(j);
        let (j, resume) = start(&path);
        assert!(resume.is_none(), "a finished run is not resumed");
        // A run that failed before changing anything is run afresh, not resumed.
        let Begin::Live(r) = j.begin("check", "", READS, &Output::default()).unwrap() else { panic!() };
        j.done(r, json!("unhealthy")).unwrap();
        j.end("failed", Some("unhealthy")).unwrap();
        drop(j);
        let (_, resume) = start(&path);
        assert!(resume.is_none(), "nothing was changed, so nothing to resume");
    }

    #[test]
    fn a_journal_of_an_earlier_version_resumes_as_before() {
        // Written before `call` records said whether the call changes the cluster.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        let lines = [
            json!({"t": "run", "run": "old-1", "runbook": "rb", "params": {}, "cluster": "c", "ts": 1.0}),
            json!({"t": "call", "seq": 0, "fn": "check", "args": "", "ts": 1.0}),
            json!({"t": "done", "seq": 0, "result": "healthy", "ts": 1.0}),
            json!({"t": "call", "seq": 1, "fn": "del_node", "args": "6397", "ts": 1.0}),
            json!({"t": "done", "seq": 1, "result": {"removed": []}, "ts": 1.0}),
            json!({"t": "call", "seq": 2, "fn": "check", "args": "", "ts": 1.0}),
            json!({"t": "done", "seq": 2, "result": "healthy", "ts": 1.0}),
        ];
        let text: String = lines.iter().map(|l| l.to_string() + "\n").collect();
        std::fs::write(&path, text).unwrap();
        let (j, resume) = start(&path);
        let resume = resume.expect("a run that changed the cluster and did not end is resumed");
        assert_eq!((resume.run_id.as_str(), resume.calls_done), ("old-1", 2));
        assert!(
            matches!(j.begin("check", "", READS, &Output::default()).unwrap(), Begin::Replayed(v) if v == json!("healthy"))
        );
        assert!(matches!(j.begin("del_node", "6397", CHANGES, &Output::default()).unwrap(), Begin::Replayed(_)));
        assert!(
            matches!(j.begin("check", "", READS, &Output::default()).unwrap(), Begin::Live(_)),
            "the read after the change runs again"
        );
    }
}

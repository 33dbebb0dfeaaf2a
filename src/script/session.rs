//! What a runbook run shares between its primitives: how to reach the cluster, `--yes`, the
//! cancel flag, and the connection made by the first `cluster()`.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::runtime::Runtime;

use super::types::ClusterHandle;
use crate::config::ClusterConfig;
use crate::error::{Error, Result};
use crate::guarded::Guarded;
use crate::journal::{Begin, Journal};
use crate::live::{self, Holder, LiveCluster};
use crate::model::Addr;
use crate::ops::Cluster;
use crate::output::Output;
use crate::sim::SimCluster;

pub struct Session {
    /// The cluster named by `--cluster`, and how to log in to it and to any other one named.
    pub cluster: ClusterConfig,
    pub yes: bool,
    pub dry_run: AtomicBool,
    /// Where progress lines and `--json` events go; every cluster this session connects shares it.
    pub out: Arc<Output>,
    /// In the REPL every Ctrl-C cancels the running primitive; elsewhere a second one exits.
    pub interactive: bool,
    pub cancel: Arc<AtomicBool>,
    pub journal: Option<Arc<Journal>>,
    pub holder: Holder,
    pub rate_limit: Option<u64>,
    pub max_pause: Option<std::time::Duration>,
    /// `--settle`: how long the preflight gates wait for a state that settles by itself.
    pub settle: Option<u64>,
    /// Take the cluster's lease when connecting, before anything is read (a run whose runbook
    /// can change the cluster), rather than at the first change (the REPL).
    pub lease_first: bool,
    /// Some `confirm()` of this run was answered yes: destructive raw commands may follow.
    confirmed: AtomicBool,
    rt: OnceLock<Arc<Runtime>>,
    /// The cluster connected by `take_lease`, holding the lease, for the first `cluster()`.
    leased: Mutex<Option<LiveCluster>>,
    default: Mutex<Option<ClusterHandle>>,
    sims: Mutex<Vec<Arc<SimCluster>>>,
    /// Set once a primitive of this command changed the cluster (shared with its handles).
    pub changed: Arc<AtomicBool>,
    /// The run's decisions, recorded for a plan file or replayed from one.
    pub decisions: Option<Arc<super::plan_file::Decisions>>,
    /// The cluster's fingerprint and outcome summary when the run first read it.
    read_at_start: Mutex<Option<(String, serde_json::Value)>>,
}

impl Session {
    pub fn new(cluster: ClusterConfig, yes: bool, out: Arc<Output>) -> Self {
        Self {
            cluster,
            out,
            yes,
            dry_run: AtomicBool::new(false),
            interactive: false,
            cancel: Arc::new(AtomicBool::new(false)),
            journal: None,
            holder: Holder::me("runbook", "interactive"),
            rate_limit: None,
            max_pause: None,
            settle: None,
            lease_first: false,
            confirmed: AtomicBool::new(false),
            rt: OnceLock::new(),
            leased: Mutex::new(None),
            default: Mutex::new(None),
            sims: Mutex::new(Vec::new()),
            decisions: None,
            changed: Arc::new(AtomicBool::new(false)),
            read_at_start: Mutex::new(None),
        }
    }

    /// What each simulated cluster of a dry run would have done (and forgets them).
    pub fn dry_run_reports(&self, colour: bool) -> Vec<String> {
        self.sims.lock().expect("not poisoned").drain(..).map(|s| s.report(colour)).collect()
    }

    /// A simulation of `live`, for the REPL's `:dry-run on`; its report comes with the others.
    pub fn simulate(&self, live: &ClusterHandle) -> Result<ClusterHandle> {
        let sim = Arc::new(SimCluster::from_live(live.0.clone())?);
        self.sims.lock().expect("not poisoned").push(sim.clone());
        Ok(ClusterHandle(sim, None, self.changed.clone()))
    }

    /// Forgets the cluster made by the first `cluster()`, so the next one connects again.
    pub fn reset_default(&self) {
        *self.default.lock().expect("not poisoned") = None;
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// `--yes`, or a `confirm()` answered yes earlier in this run.
    pub fn confirmed(&self) -> bool {
        self.yes || self.confirmed.load(Ordering::Relaxed)
    }

    pub fn is_dry_run(&self) -> bool {
        self.dry_run.load(Ordering::Relaxed)
    }

    pub fn runtime(&self) -> Result<Arc<Runtime>> {
        if let Some(rt) = self.rt.get() {
            return Ok(rt.clone());
        }
        let rt = live::runtime()?;
        crate::interrupt::cancel_on_ctrl_c(&rt, self.cancel.clone(), !self.interactive);
        Ok(self.rt.get_or_init(|| rt).clone())
    }

    /// The cluster named by `--cluster`/`RUNBOOK_CLUSTER` (once, then shared), or another one.
    pub fn cluster(&self, addr: Option<&str>) -> Result<ClusterHandle> {
        if addr.is_none()
            && let Some(c) = self.default.lock().expect("not poisoned").clone()
        {
            return Ok(c);
        }
        let leased = if addr.is_none() { self.leased.lock().expect("not poisoned").take() } else { None };
        let live = if let Some(live) = leased {
            live
        } else {
            let live = match addr {
                Some(a) => self.connect(&crate::config::parse_seed(a)?)?,
                None => self.cluster.reach(|seed| self.connect(seed))?,
            };
            if addr.is_none() && self.lease_first && !self.is_dry_run() {
                live.acquire_lease()?;
            }
            live
        };
        if addr.is_none()
            && let Some(journal) = &self.journal
        {
            let ids: Vec<String> = live.topology()?.nodes().iter().map(|n| n.id.clone()).collect();
            journal.cluster(&ids)?;
        }
        let handle = if self.is_dry_run() {
            eprintln!("dry run: reading {} once; nothing will be changed", live.name());
            let sim = Arc::new(SimCluster::from_live(Arc::new(live))?);
            self.sims.lock().expect("not poisoned").push(sim.clone());
            if addr.is_none() {
                let t = sim.topology()?;
                *self.read_at_start.lock().expect("not poisoned") = Some((t.fingerprint(), t.outcome()));
            }
            ClusterHandle(Arc::new(Guarded::new(sim, None)), None, self.changed.clone())
        } else {
            let live = Arc::new(Guarded::new(Arc::new(live), self.journal.clone()));
            ClusterHandle(live, self.journal.clone(), self.changed.clone())
        };
        if addr.is_none() {
            *self.default.lock().expect("not poisoned") = Some(handle.clone());
        }
        Ok(handle)
    }

    fn connect(&self, seed: &Addr) -> Result<LiveCluster> {
        Ok(LiveCluster::connect(
            self.runtime()?,
            seed.clone(),
            self.cluster.creds.clone(),
            self.cancel.clone(),
            self.out.clone(),
        )?
        .with_holder(self.holder.clone(), self.journal.as_ref().map(|j| j.run_id().to_string()))
        .with_pacing(self.rate_limit, self.max_pause))
    }

    /// Connects to the cluster named by `--cluster` and takes its lease, before the run reads
    /// anything of it; the first `cluster()` then uses this connection. Refuses (exit 3, the
    /// holder named) while another run holds the lease.
    pub fn take_lease(&self) -> Result<()> {
        let live = self.cluster.reach(|seed| self.connect(seed))?;
        live.acquire_lease()?;
        *self.leased.lock().expect("not poisoned") = Some(live);
        Ok(())
    }

    /// Whether this command changed the cluster (a primitive succeeded, was replayed, or sent a
    /// change before failing).
    pub fn changed(&self) -> bool {
        self.changed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A new command begins (a REPL line, a `:run`): what an earlier one changed is not its doing.
    pub fn begin_command(&self) {
        self.changed.store(false, std::sync::atomic::Ordering::Relaxed);
        // A bar an interrupted command left behind is not this one's to print around.
        self.out.show_bar(None);
    }

    /// The cluster's fingerprint and outcome summary when a dry run first read it.
    pub fn read_at_start(&self) -> Option<(String, serde_json::Value)> {
        self.read_at_start.lock().expect("not poisoned").clone()
    }

    /// The cluster as the run left it (in a dry run, as it predicts it), when the run connected.
    pub fn outcome(&self) -> Option<Result<crate::model::Topology>> {
        let handle = self.default.lock().expect("not poisoned").clone()?;
        Some(handle.0.topology())
    }

    /// Asks `question` on the terminal; `--yes` answers yes; with no terminal and no `--yes`
    /// it refuses rather than hang (a cron job must never wait on a prompt).
    pub fn confirm(&self, question: &str) -> Result<bool> {
        let answer = self.confirm_inner(question);
        if matches!(answer, Ok(true)) {
            self.confirmed.store(true, Ordering::Relaxed);
        }
        answer
    }

    fn confirm_inner(&self, question: &str) -> Result<bool> {
        if self.is_dry_run() {
            eprintln!("(dry run) {question} [y/N] yes");
            return Ok(true);
        }
        let Some(journal) = &self.journal else { return self.ask(question) };
        match journal.begin("confirm", question, false, &self.out)? {
            Begin::Replayed(_) => {
                eprintln!("{question} [y/N] yes (answered in the run this one resumes)");
                Ok(true)
            }
            Begin::Live(seq) => {
                let answer = self.ask(question);
                match &answer {
                    Ok(a) => journal.done(seq, serde_json::json!(a))?,
                    Err(e) => journal.fail(seq, &e.to_string())?,
                }
                answer
            }
        }
    }

    fn ask(&self, question: &str) -> Result<bool> {
        if self.yes {
            eprintln!("{question} [y/N] yes (--yes)");
            return Ok(true);
        }
        if !std::io::stdin().is_terminal() {
            return Err(Error::NoTty { question: question.to_string() });
        }
        eprint!("{question} [y/N] ");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(|e| Error::io("reading the answer", &e))?;
        match line.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" => Ok(true),
            _ => Err(Error::Declined { question: question.to_string() }),
        }
    }
}

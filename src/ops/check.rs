//! `CheckReport`: everything `redis-cli --cluster check` says and more, assembled from a topology
//! and per-node statistics. Pure: the backends gather the inputs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::bytes::human_bytes;
use crate::holder::Holder;
use crate::model::{NodeInfo, OpenSlot, SLOTS, SlotSet, Topology, describe};

/// What one node reports about itself beside `CLUSTER NODES`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NodeStats {
    pub keys: Option<u64>,
    pub used_memory: Option<u64>,
    pub maxmemory: Option<u64>,
    pub total_system_memory: Option<u64>,
    pub cluster_state: Option<String>,
    pub master_link_up: Option<bool>,
    /// Why keys or memory could not be read (a refused `INFO`, an unanswered node): a gate that
    /// needs them fails with this rather than judging nothing.
    pub unreadable: Option<String>,
}

impl NodeStats {
    /// Used memory per key: the estimate of what moving a key takes from this node (0 unknown).
    pub fn bytes_per_key(&self) -> u64 {
        match (self.used_memory, self.keys) {
            (Some(m), Some(k)) if k > 0 => m / k,
            _ => 0,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MasterSummary {
    pub node: String,
    pub id: String,
    pub addr: String,
    pub slots: usize,
    pub ranges: String,
    pub keys: Option<u64>,
    pub used_memory: Option<u64>,
    pub replicas: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckReport {
    pub healthy: bool,
    pub fingerprint: String,
    pub nodes: usize,
    pub masters: Vec<MasterSummary>,
    pub covered: usize,
    pub open_slots: Vec<OpenSlot>,
    /// One sentence per problem, naming nodes by address.
    pub problems: Vec<String>,
    /// Nodes that cannot be reached or are flagged as failing, by address.
    #[serde(default)]
    pub failing: Vec<String>,
    /// Removed nodes (by the registry of removed nodes) that some node knows again.
    #[serde(default)]
    pub known_again: Vec<KnownAgain>,
    /// The run that holds the cluster's lease, if any; the open slots it accounts for are not
    /// among the problems.
    #[serde(default)]
    pub run: Option<RunSummary>,
}

/// A node removed by a run (see `crate::removed`) that some node lists again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KnownAgain {
    pub id: String,
    pub addr: String,
    pub run: String,
    pub removed_at: String,
    /// The nodes that list it, by address.
    pub known_by: Vec<String>,
}

impl KnownAgain {
    pub fn sentence(&self) -> String {
        format!(
            "{}, removed by run {} at {}, is known again by {}",
            self.addr,
            self.run,
            self.removed_at,
            self.known_by.join(", ")
        )
    }
}

/// The removed nodes that a node other than themselves lists in its view. Any listing counts,
/// `noaddr` and `fail` included: a node that knows the id gossips about it.
pub fn known_again(topo: &Topology, removed: &[crate::removed::Removal]) -> Vec<KnownAgain> {
    removed
        .iter()
        .filter_map(|r| {
            let by: Vec<String> = topo
                .views()
                .iter()
                .filter(|(viewer, view)| **viewer != r.id && view.iter().any(|n| n.id == r.id))
                .map(|(viewer, _)| topo.name(viewer))
                .collect();
            (!by.is_empty()).then(|| KnownAgain {
                id: r.id.clone(),
                addr: r.addr.clone(),
                run: r.run.clone(),
                removed_at: crate::holder::unix_time(r.ts as u64),
                known_by: by,
            })
        })
        .collect()
}

/// What is wrong with a cluster, by kind, one sentence per problem naming nodes by address. The
/// one place that decides "healthy": `check`, the preflight gates and `wait_converged` all read it.
#[derive(Clone, Debug, Default)]
pub struct Findings {
    /// Uncovered slots, or slots claimed twice.
    pub coverage: Vec<String>,
    pub open_slots: Vec<String>,
    /// Unreachable nodes, and nodes flagged `fail`/`fail?`.
    pub failed: Vec<String>,
    /// Nodes that disagree on slots or membership, or are still in a handshake.
    pub agreement: Vec<String>,
    /// Nodes that do not report `cluster_state:ok`.
    pub cluster_state: Vec<String>,
}

impl Findings {
    pub fn of(topo: &Topology, stats: &BTreeMap<String, NodeStats>) -> Self {
        let name = |id: &str| topo.name(id);
        let mut f =
            Findings { agreement: agreement(topo), cluster_state: cluster_state(topo, stats), ..Findings::default() };
        f.coverage = coverage_lines(topo);
        f.open_slots = open_slot_lines(topo);
        for (id, reason) in topo.unreachable() {
            f.failed.push(format!("{} cannot be reached: {reason}", name(id)));
        }
        for (id, witnesses) in topo.failed() {
            let w: Vec<String> = witnesses.iter().map(|w| name(w)).collect();
            f.failed.push(format!("{} is flagged as failing by {}", name(&id), w.join(", ")));
        }
        f
    }

    /// Every problem, in the order an operator should look at them.
    pub fn all(&self) -> Vec<String> {
        [&self.coverage, &self.open_slots, &self.failed, &self.agreement, &self.cluster_state]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }
}

/// Slots no master covers, or more than one claims (the first such slot).
fn coverage_lines(topo: &Topology) -> Vec<String> {
    let mut out = Vec::new();
    let uncovered = topo.uncovered();
    if !uncovered.is_empty() {
        out.push(format!("{} of {SLOTS} slots are not covered by any master: {uncovered}", uncovered.len()));
    }
    if let Some((slot, owners)) = (0..SLOTS).map(|s| (s, topo.owners(s))).find(|(_, o)| o.len() > 1) {
        let names: Vec<String> = owners.iter().map(|n| n.addr.to_string()).collect();
        out.push(format!("slot {slot} is claimed by more than one master: {}", names.join(", ")));
    }
    out
}

/// The nodes whose slot map differs from the others': `… thinks slots 0-9 belong to …`.
fn slot_disagreement_lines(topo: &Topology) -> Vec<String> {
    let name = |id: &str| if id.is_empty() { "no owner".to_string() } else { topo.name(id) };
    topo.disagreements()
        .iter()
        .flat_map(|d| {
            d.slots.iter().map(|(slots, believed, claimed)| {
                format!(
                    "{} thinks slots {slots} belong to {}, but the owner is {}",
                    name(&d.node),
                    name(believed),
                    name(claimed)
                )
            })
        })
        .collect()
}

/// One line per (node, state, peer), the slots as ranges: a drain leaves hundreds open.
fn open_slot_lines(topo: &Topology) -> Vec<String> {
    let name = |id: &str| topo.name(id);
    let mut open: BTreeMap<(String, String, String), crate::model::SlotSet> = BTreeMap::new();
    for o in topo.open_slots() {
        open.entry((o.node, o.state, o.peer)).or_default().insert(o.slot);
    }
    open.into_iter()
        .map(|((node, state, peer), slots)| {
            let dir = if state == "migrating" { "to" } else { "from" };
            let what = match slots.len() {
                1 => format!("slot {slots} is open"),
                n => format!("{n} slots are open ({slots})"),
            };
            format!("{what}: {state} on {} {dir} {}", name(&node), name(&peer))
        })
        .collect()
}

/// Open slots by the move they belong to: `migrating 12288-12543 A → B`. Slots only the target
/// imports (its source already closed them) are said apart, as `importing`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenRange {
    pub state: String,
    pub slots: SlotSet,
    pub from: String,
    pub to: String,
}

impl std::fmt::Display for OpenRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {} → {}", self.state, self.slots, self.from, self.to)
    }
}

/// The cluster's open slots as ranges, one per (source, target) and side; nodes by address.
pub fn open_ranges(topo: &Topology) -> Vec<OpenRange> {
    let mut moves: BTreeMap<(String, String), (SlotSet, SlotSet)> = BTreeMap::new();
    for o in topo.open_slots() {
        if o.state == "migrating" {
            moves.entry((topo.name(&o.node), topo.name(&o.peer))).or_default().0.insert(o.slot);
        } else {
            moves.entry((topo.name(&o.peer), topo.name(&o.node))).or_default().1.insert(o.slot);
        }
    }
    let mut out = Vec::new();
    for ((from, to), (migrating, importing)) in moves {
        let only_imported: SlotSet = importing.iter().filter(|s| !migrating.contains(*s)).collect();
        for (state, slots) in [("migrating", migrating), ("importing", only_imported)] {
            if !slots.is_empty() {
                out.push(OpenRange { state: state.into(), slots, from: from.clone(), to: to.clone() });
            }
        }
    }
    out
}

/// The run that holds the cluster's lease, as `check` and `status` name it, with the open slots
/// taken to be its own: a run's preflight refuses to start with slots open, and no other run
/// can open any while it holds the lease.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunSummary {
    pub run: String,
    pub runbook: String,
    pub host: String,
    pub pid: u32,
    pub started: String,
    pub open: Vec<OpenRange>,
    /// Differences between the nodes' views (a slot with no owner or two, a node that has not
    /// learned a new owner, or a node some have forgotten and others not yet), taken as the
    /// run's changes still spreading (`check` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spreading: Vec<String>,
}

impl RunSummary {
    pub fn of(holder: &Holder, open: Vec<OpenRange>) -> Self {
        RunSummary {
            run: holder.run.clone(),
            runbook: holder.runbook.clone(),
            host: holder.host.clone(),
            pid: holder.pid,
            started: crate::holder::unix_time(holder.started),
            open,
            spreading: Vec::new(),
        }
    }

    /// Who: `run R of `decommission` (pid 4242 on ops-1, started …)`.
    pub fn who(&self) -> String {
        format!("run {} of `{}` (pid {} on {}, started {})", self.run, self.runbook, self.pid, self.host, self.started)
    }

    /// The one line that stands for all of the run's open slots.
    pub fn sentence(&self) -> String {
        if self.open.is_empty() {
            return format!("{} holds the lease; no slot is open right now", self.who());
        }
        let mut all = SlotSet::new();
        for o in &self.open {
            all.union_with(&o.slots);
        }
        let moving = match self.open.as_slice() {
            [one] => format!("{} → {}", one.from, one.to),
            many => many.iter().map(|o| format!("{} {} → {}", o.slots, o.from, o.to)).collect::<Vec<_>>().join(", "),
        };
        format!("slots {all} are open by {}, moving {moving}", self.who())
    }
}

/// Which nodes disagree on slots or membership, and how; nodes still in a handshake.
pub fn agreement(topo: &Topology) -> Vec<String> {
    let name = |id: &str| topo.name(id);
    let mut out = Vec::new();
    for d in topo.disagreements() {
        let who = name(&d.node);
        for m in &d.missing {
            out.push(format!("{who} does not know node {}", name(m)));
        }
        for e in &d.extra {
            out.push(format!("{who} still knows node {} that the others have forgotten", name(e)));
        }
    }
    out.extend(slot_disagreement_lines(topo));
    // Right after a MEET the new node is listed under a temporary id in `handshake`: it is not a
    // member yet, whatever the slot maps say.
    for (viewer, view) in topo.views() {
        for n in view.iter().filter(|n| n.flags.handshake) {
            out.push(format!("{} is still in handshake with {}", name(viewer), n.addr));
        }
    }
    out
}

/// Nodes that do not report `cluster_state:ok`.
pub fn cluster_state(topo: &Topology, stats: &BTreeMap<String, NodeStats>) -> Vec<String> {
    stats
        .iter()
        .filter_map(|(id, s)| s.cluster_state.as_deref().filter(|s| *s != "ok").map(|state| (id, state)))
        .map(|(id, state)| format!("{} reports cluster_state:{state}", topo.name(id)))
        .collect()
}

impl CheckReport {
    pub fn build(topo: &Topology, stats: &BTreeMap<String, NodeStats>) -> Self {
        let problems = Findings::of(topo, stats).all();
        let open = topo.open_slots();
        let masters = topo
            .masters()
            .filter(|m| !m.slots.is_empty() || topo.is_reachable(&m.id))
            .map(|m| summary(topo, m, stats.get(&m.id)))
            .collect();
        CheckReport {
            healthy: problems.is_empty(),
            fingerprint: topo.fingerprint(),
            nodes: topo.nodes().len(),
            masters,
            covered: usize::from(SLOTS) - topo.uncovered().len(),
            open_slots: open,
            problems,
            failing: topo
                .unreachable()
                .keys()
                .cloned()
                .chain(topo.failed().into_keys())
                .map(|id| topo.name(&id))
                .collect(),
            known_again: Vec::new(),
            run: None,
        }
    }

    /// Names the run that holds the lease, and takes the open slots out of the problems: they
    /// are its own (see `RunSummary`), said in one line instead of one error per slot. Not
    /// healthy still: the cluster is being changed.
    #[must_use]
    pub fn with_run(mut self, topo: &Topology, holder: Option<&Holder>) -> Self {
        let Some(holder) = holder else { return self };
        let open = open_slot_lines(topo);
        // Membership too: a forget (or a meet) reaches the nodes one after the other, so a check
        // during a run's forget step sees some nodes that no longer know the removed node (1 in
        // about 150 reads during a decommission, measured). Only the lease holder changes
        // membership; a removed node coming back is `known_again`, which stays a problem.
        let spreading: Vec<String> = coverage_lines(topo).into_iter().chain(agreement(topo)).collect();
        self.problems.retain(|p| !open.contains(p) && !spreading.contains(p));
        self.run = Some(RunSummary { spreading, ..RunSummary::of(holder, open_ranges(topo)) });
        self.healthy = false;
        self
    }

    /// `check`'s exit code: 3 for any problem that is not the run's own, else 1 while a run
    /// holds the lease, else 0.
    pub fn exit_code(&self) -> u8 {
        use crate::error::exit;
        if !self.problems.is_empty() {
            exit::REFUSED
        } else if self.run.is_some() {
            exit::FAILED
        } else {
            exit::OK
        }
    }

    /// Adds the removed nodes that some node knows again, first among the problems (the
    /// "still knows node … that the others have forgotten" lines they cause come later).
    #[must_use]
    pub fn with_removed(mut self, topo: &Topology, removed: &[crate::removed::Removal]) -> Self {
        self.known_again = known_again(topo, removed);
        let lines = self.known_again.iter().map(|k| format!("{} (`runbook fix` forgets it)", k.sentence()));
        self.problems = lines.chain(self.problems).collect();
        self.healthy &= self.known_again.is_empty();
        self
    }

    /// The problems `before` does not account for: neither reported then, nor about a node that
    /// was already failing (its failure may only have been detected since, by more nodes).
    pub fn new_since(&self, before: &CheckReport) -> Vec<String> {
        self.problems
            .iter()
            .filter(|p| !before.problems.contains(p))
            .filter(|p| !before.failing.iter().any(|addr| p.starts_with(&format!("{addr} "))))
            .cloned()
            .collect()
    }

    /// The human report, as `runbook check` prints it, without colour.
    pub fn render(&self) -> String {
        self.render_in(false)
    }

    /// The human report; `colour`: the slot map's bars in one colour per master.
    pub fn render_in(&self, colour: bool) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{:<24} {:>6}  {:<22} {:>10} {:>10}  replicas\n",
            "master", "slots", "ranges", "keys", "memory"
        ));
        for m in &self.masters {
            let ranges = if m.ranges.len() > 22 { format!("{}…", &m.ranges[..21]) } else { m.ranges.clone() };
            out.push_str(&format!(
                "{:<24} {:>6}  {:<22} {:>10} {:>10}  {}\n",
                m.addr,
                m.slots,
                ranges,
                m.keys.map_or("?".into(), |k| k.to_string()),
                m.used_memory.map_or("?".into(), human_bytes),
                if m.replicas.is_empty() { "-".to_string() } else { m.replicas.join(", ") }
            ));
        }
        out.push('\n');
        out.push_str(&self.slot_map(colour));
        out.push_str(&format!(
            "\n{} nodes, {} masters, {}/{SLOTS} slots covered\n",
            self.nodes,
            self.masters.len(),
            self.covered
        ));
        if let Some(run) = &self.run {
            out.push_str(&format!("[RUN] {}\n", run.sentence()));
            if !run.spreading.is_empty() {
                out.push_str(&format!(
                    "[RUN] {} difference(s) between the nodes' views: the run's moves and forgets, still spreading (`--json` lists them)\n",
                    run.spreading.len()
                ));
            }
        }
        if self.problems.is_empty() && self.run.is_some() {
            out.push_str("[OK] no problem besides the run's own: no node failed or unreachable, none known again\n");
        } else if self.healthy {
            out.push_str(
                "[OK] all slots covered, all nodes agree on slots and membership, no open slots, no failed nodes\n",
            );
        } else {
            for p in &self.problems {
                out.push_str(&format!("[ERR] {p}\n"));
            }
        }
        out
    }

    /// The masters' bars (see `slot_map`).
    pub fn slot_map(&self, colour: bool) -> String {
        let sets: Vec<SlotSet> = self.masters.iter().map(|m| SlotSet::parse(&m.ranges).unwrap_or_default()).collect();
        let rows: Vec<super::slot_map::Row> = self
            .masters
            .iter()
            .zip(&sets)
            .map(|(m, slots)| super::slot_map::Row { addr: &m.addr, slots, keys: m.keys, memory: m.used_memory })
            .collect();
        super::slot_map::render(&rows, colour)
    }
}

fn summary(topo: &Topology, m: &NodeInfo, stats: Option<&NodeStats>) -> MasterSummary {
    MasterSummary {
        node: describe(m),
        id: m.id.clone(),
        addr: m.addr.to_string(),
        slots: m.slots.len(),
        ranges: m.slots.to_string(),
        keys: stats.and_then(|s| s.keys),
        used_memory: stats.and_then(|s| s.used_memory),
        replicas: topo.replicas_of(&m.id).map(|r| r.addr.to_string()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(problems: &[&str], failing: &[&str]) -> CheckReport {
        CheckReport {
            healthy: problems.is_empty(),
            fingerprint: String::new(),
            nodes: 0,
            masters: Vec::new(),
            covered: usize::from(SLOTS),
            open_slots: Vec::new(),
            problems: problems.iter().map(|p| (*p).to_string()).collect(),
            failing: failing.iter().map(|f| (*f).to_string()).collect(),
            known_again: Vec::new(),
            run: None,
        }
    }

    #[test]
    fn a_removed_node_that_a_node_lists_again_is_named_with_who_lists_it() {
        use crate::model::parse_nodes;
        use crate::removed::Removal;
        // 27901's view, and the ghost a node keeps of a removed node that answered its PING with
        // another id: `noaddr`, no address.
        let mut text = include_str!("../../tests/fixtures/redis7-healthy-4m4r.txt").to_string();
        text.push_str("04f1059581a3f82c2350dd534496dba31c31cc97 :0@0 master,fail?,noaddr - 1795617228000 1795617228000 0 disconnected\n");
        let topo = Topology::from_single_view(parse_nodes(&text).unwrap());
        let removal = |id: &str| Removal {
            id: id.into(),
            addr: "127.0.0.1:27909".into(),
            run: "6752b1c3-4242".into(),
            ts: 1_795_600_000.0,
            missed: vec!["127.0.0.1:27901".into()],
            event: "removed".into(),
        };
        let removed =
            [removal("04f1059581a3f82c2350dd534496dba31c31cc97"), removal("0000000000000000000000000000000000000000")];
        let report = CheckReport::build(&topo, &BTreeMap::new()).with_removed(&topo, &removed);
        assert!(!report.healthy);
        assert_eq!(report.known_again.len(), 1, "a removed node nobody lists is not named");
        assert_eq!(
            report.problems[0],
            "127.0.0.1:27909, removed by run 6752b1c3-4242 at 2026-11-25 09:46:40 UTC, is known again by 127.0.0.1:27901 (`runbook fix` forgets it)"
        );
    }

    #[test]
    fn the_open_slots_of_the_run_that_holds_the_lease_are_one_line_not_errors() {
        use crate::model::parse_nodes;
        let text = include_str!("../../tests/fixtures/redis7-open-slot-source-view.txt");
        let topo = Topology::from_single_view(parse_nodes(text).unwrap());
        let alone = CheckReport::build(&topo, &BTreeMap::new()).with_run(&topo, None);
        assert_eq!(alone.exit_code(), crate::error::exit::REFUSED);
        assert!(alone.render().contains("[ERR] slot 12288 is open"), "{}", alone.render());
        let holder = Holder {
            host: "ops-1".into(),
            pid: 4242,
            runbook: "decommission".into(),
            started: 1_795_600_000,
            run: "6752b1c3-4242".into(),
        };
        let report = CheckReport::build(&topo, &BTreeMap::new()).with_run(&topo, Some(&holder));
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert!(!report.healthy, "a cluster being changed is not called healthy");
        assert_eq!(report.exit_code(), crate::error::exit::FAILED);
        let text = report.render();
        assert!(!text.contains("[ERR]"), "{text}");
        assert!(
            text.contains("[RUN] slots 12288 are open by run 6752b1c3-4242 of `decommission` (pid 4242 on ops-1, started 2026-11-25 09:46:40 UTC), moving 127.0.0.1:27904 → 127.0.0.1:27901\n"),
            "{text}"
        );
        assert_eq!(
            report.run.as_ref().unwrap().open[0].to_string(),
            "migrating 12288 127.0.0.1:27904 → 127.0.0.1:27901"
        );
        assert!(text.contains("slot map: 64 cells"), "{text}");
    }

    #[test]
    fn during_a_run_a_forget_half_done_is_the_runs_but_a_node_known_again_is_not() {
        use crate::model::parse_nodes;
        // Captured during a decommission's forget step (one CLUSTER NODES per member, read one
        // after the other): 7601 still knows the drained 7607, the other five have forgotten it.
        // A check that read views like these while the run held the lease exited 3.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mid-forget");
        let mut views = BTreeMap::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let view = parse_nodes(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
            views.insert(view.iter().find(|n| n.flags.myself).unwrap().id.clone(), view);
        }
        let topo = Topology::new(views, BTreeMap::new());
        let holder = Holder { host: "h".into(), pid: 1, runbook: "decommission".into(), started: 0, run: "r".into() };
        let alone = CheckReport::build(&topo, &BTreeMap::new());
        assert_eq!(alone.exit_code(), crate::error::exit::REFUSED, "{:?}", alone.problems);
        assert!(alone.problems.iter().any(|p| p.contains("127.0.0.1:7607")), "{:?}", alone.problems);
        let report = alone.with_run(&topo, Some(&holder));
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(report.exit_code(), crate::error::exit::FAILED);
        let shown = report.render();
        assert!(
            shown.lines().any(|l| l.starts_with("[RUN] ") && l.contains("difference(s) between the nodes' views")),
            "{shown}"
        );

        // Once recorded as removed, a node that a node lists again is a problem, run or not.
        let removal = crate::removed::Removal {
            id: "f569c52248fa80b7feaa97e7a7249cdb09417320".into(),
            addr: "127.0.0.1:7607".into(),
            run: "r".into(),
            ts: 0.0,
            missed: vec![],
            event: "removed".into(),
        };
        let report =
            CheckReport::build(&topo, &BTreeMap::new()).with_removed(&topo, &[removal]).with_run(&topo, Some(&holder));
        assert_eq!(report.exit_code(), crate::error::exit::REFUSED);
        assert!(report.problems[0].contains("is known again by 127.0.0.1:7601"), "{:?}", report.problems);
    }

    #[test]
    fn during_a_run_a_slot_map_still_spreading_is_the_runs_but_a_failed_node_is_not() {
        use crate::model::parse_nodes;
        let text = include_str!("../../tests/fixtures/redis7-healthy-4m4r.txt");
        // 27902 has not yet learned that slots 0-3 moved from 27901 to 27903.
        let lagging = text.replace("connected 0-4095", "connected 4-4095").replace(
            "master - 0 1795617228000 3 connected 8192-12287",
            "master - 0 1795617228000 3 connected 0-3 8192-12287",
        );
        let nodes = parse_nodes(text).unwrap();
        let id = |port: &str| nodes.iter().find(|n| n.addr.to_string().ends_with(port)).unwrap().id.clone();
        let views = BTreeMap::from([
            (id(":27901"), nodes.clone()),
            (id(":27903"), nodes.clone()),
            (id(":27902"), parse_nodes(&lagging).unwrap()),
        ]);
        let topo = Topology::new(views, BTreeMap::from([(id(":27905"), "connection refused".to_string())]));
        let holder = Holder { host: "h".into(), pid: 1, runbook: "rebalance".into(), started: 0, run: "r".into() };
        let alone = CheckReport::build(&topo, &BTreeMap::new());
        assert!(alone.problems.iter().any(|p| p.contains("thinks slots")), "{:?}", alone.problems);
        let report = alone.with_run(&topo, Some(&holder));
        assert_eq!(report.problems, ["127.0.0.1:27905 cannot be reached: connection refused"]);
        assert_eq!(report.exit_code(), crate::error::exit::REFUSED);
        let run = report.run.as_ref().unwrap();
        assert_eq!(run.spreading.len(), 1, "{:?}", run.spreading);
        assert!(report.render().contains("[RUN] 1 difference(s) between the nodes' views"), "{}", report.render());
    }

    #[test]
    fn new_since_leaves_out_what_was_known() {
        let before = report(&["10.0.0.6:6379 cannot be reached: refused"], &["10.0.0.6:6379"]);
        let after = report(
            &[
                "10.0.0.6:6379 cannot be reached: refused",
                // The same dead node, now also detected by gossip: known.
                "10.0.0.6:6379 is flagged as failing by 10.0.0.1:6379",
                // A node that shares a prefix with the dead one is another node: new.
                "10.0.0.6:63790 cannot be reached: refused",
                "slot 42 is open: migrating on 10.0.0.1:6379 to 10.0.0.2:6379",
            ],
            &["10.0.0.6:6379", "10.0.0.6:63790"],
        );
        assert_eq!(
            after.new_since(&before),
            vec![
                "10.0.0.6:63790 cannot be reached: refused",
                "slot 42 is open: migrating on 10.0.0.1:6379 to 10.0.0.2:6379"
            ]
        );
        assert!(before.new_since(&before).is_empty());
    }
}

//! The slot-move protocol, written once for both backends: IMPORTING on the target, MIGRATING on
//! the source, keys until the source holds none, then SETSLOT NODE on the target, the source and
//! the other masters, with the replies each step tolerates. The live backend sends its steps, the
//! simulated one applies them to its model of each node's view, so a dry run takes the very same
//! decisions as the run it rehearses.
//!
//! Order matters and is the documented one: IMPORTING before MIGRATING (so the target is ready
//! for ASK), the target's NODE first (it bumps its epoch, so its claim wins by gossip; once per
//! batch, the other slots claimed after it), the source next, other masters last.

use std::time::{Duration, Instant};

use super::cluster::{MoveOpts, MoveStats, SetSlot};
use crate::error::{Error, Result, ServerKind, ServerReply};
use crate::model::{NodeInfo, SlotSet, Topology};
use crate::plan::Batch;

/// The per-node steps a slot move is made of. They are not journaled one by one: the move they
/// make up is one journal record, so a crash anywhere in it is resumed as one unit.
pub trait SlotSteps {
    /// `CLUSTER SETSLOT s <how>` for each of `slots` on `node`: per slot, the server's refusal.
    fn setslot(&self, node: &NodeInfo, slots: &[u16], how: &SetSlot) -> Result<Vec<Option<ServerReply>>>;

    /// The same on several nodes (at once where the backend can); the outcome per node, in order.
    fn setslot_on(&self, nodes: &[&NodeInfo], slots: &[u16], how: &SetSlot) -> Vec<Result<Vec<Option<ServerReply>>>> {
        nodes.iter().map(|n| self.setslot(n, slots, how)).collect()
    }

    /// Keys `node` holds in each of `slots` (`CLUSTER COUNTKEYSINSLOT`).
    fn count_keys(&self, node: &NodeInfo, slots: &[u16]) -> Result<Vec<u64>>;

    /// MIGRATEs every key `src` holds in `slots` to `dst`: the keys moved, their estimated
    /// bytes, and how long the source was held (`slots` left 0: the protocol counts those).
    fn migrate_keys(&self, src: &NodeInfo, dst: &NodeInfo, slots: &[u16], opts: &MoveOpts) -> Result<MoveStats>;

    /// A crash point for tests (`crate::failpoint`), where the backend has one armed.
    fn failpoint(&self, _name: &str) {}

    /// A progress line for the operator.
    fn say(&self, _msg: &str) {}
}

/// Replies a source may give to SETSLOT NODE once it lost its last slot and turned itself into a
/// replica (Redis ≥ 7), or from Valkey's replicated SETSLOT; the target already owns the slot.
pub fn tolerated_on_source(reply: &ServerReply) -> bool {
    matches!(reply.kind, ServerKind::Unblocked | ServerKind::NoReplicas)
        || reply.text.contains("only with masters")
        || reply.text.contains("only with primaries")
}

/// Moves `batch.slots` from `batch.from` to `batch.to`, keys and ownership; `phase` is told each
/// step as it starts (for the journal).
pub fn move_slots(
    steps: &dyn SlotSteps,
    topo: &Topology,
    batch: &Batch,
    opts: &MoveOpts,
    phase: &dyn Fn(&str),
) -> Result<MoveStats> {
    let src =
        topo.node(&batch.from).ok_or_else(|| Error::refused(format!("unknown source node {}", batch.from), None))?;
    let dst = topo.node(&batch.to).ok_or_else(|| Error::refused(format!("unknown target node {}", batch.to), None))?;

    // Slots the target already owns were handed over by an earlier run (which may have died
    // before telling the source): only the source's and the others' views need closing. The
    // rest go through the whole protocol.
    let (done, todo): (Vec<u16>, Vec<u16>) = batch.slots.iter().partition(|&&s| dst.slots.contains(s));
    if let Some(s) = todo.iter().find(|&&s| !src.slots.contains(s)) {
        return Err(Error::refused(
            format!(
                "slot {s} is not owned by {} (nor yet by {}), so it cannot be moved between them",
                src.addr, dst.addr
            ),
            Some("re-read the cluster (the plan may be stale) and plan again"),
        ));
    }

    let mut stats = MoveStats::default();
    if !todo.is_empty() {
        let open = format!(
            "slots {} may be left MIGRATING on {} and IMPORTING on {}; every key is on one of the two and still served",
            todo.iter().copied().collect::<SlotSet>(),
            src.addr,
            dst.addr
        );
        let open_state = |e: Error| with_state(e, open.clone());
        phase("importing");
        let importing: Vec<u16> = todo.iter().copied().filter(|s| dst.importing.get(s) != Some(&src.id)).collect();
        require(steps, dst, &importing, &SetSlot::Importing(src.id.clone()), |_| false).map_err(open_state)?;
        phase("migrating");
        let migrating: Vec<u16> = todo.iter().copied().filter(|s| src.migrating.get(s) != Some(&dst.id)).collect();
        require(steps, src, &migrating, &SetSlot::Migrating(dst.id.clone()), |_| false).map_err(open_state)?;

        phase("keys");
        stats += steps.migrate_keys(src, dst, &todo, opts).map_err(open_state)?;

        // The invariant: never hand a slot over while the source still holds keys of it.
        let counts = steps.count_keys(src, &todo).map_err(open_state)?;
        if let Some((slot, n)) = todo.iter().zip(&counts).find(|(_, n)| **n > 0) {
            return Err(Error::Command {
                node: src.addr.to_string(),
                command: "MIGRATE".into(),
                reason: format!("slot {slot} still holds {n} keys after migrating; ownership was not changed"),
                state: Some(open),
            });
        }
        phase("node-target");
        // Two PONGs to every node per batch, not one per slot. A target's SETSLOT NODE of a slot
        // it imports bumps its epoch and sends every node a PONG, and each node reading one walks
        // all 16,384 slots (`clusterProcessPacket`, `clusterUpdateSlotsConfigWith`): 256 of them
        // cost every node of a 4+4 cluster 10-14 ms of CPU at once, which its clients wait
        // through (measured: 2,700-4,100 PONGs received per node while 4,096 empty slots moved).
        // So the first slot's NODE makes the bump; the slots between are claimed plainly; the
        // last one's NODE sends every claim in one PONG.
        // The bump comes first because a claimed slot is no longer importing, and a node gives
        // up a slot it owns, deleting its keys there, to a sender claiming it with a greater
        // epoch: after the bump no epoch is greater than the target's, the source's included
        // (a node moves in one batch at a time). Claimed before the bump, Valkey (whose
        // replicated SETSLOTs stretch the claims over tens of ms) lost claimed slots to the
        // source's gossip.
        let (first, rest) = todo.split_first().expect("todo is not empty");
        require(steps, dst, &[*first], &SetSlot::Node(dst.id.clone()), |_| false).map_err(open_state)?;
        if let Some((last, between)) = rest.split_last() {
            require(steps, dst, between, &SetSlot::Claim(dst.id.clone()), |_| false).map_err(open_state)?;
            require(steps, dst, &[*last], &SetSlot::Node(dst.id.clone()), |_| false).map_err(open_state)?;
        }
        stats.slots += todo.len();
        steps.failpoint("between-node");
    }

    // The target owns the slots now; the source and the other masters only need telling. Their
    // failures are not fatal: the target's epoch bump propagates by gossip anyway.
    let all = &batch.slots;
    phase("node-source");
    require(steps, src, all, &SetSlot::Node(dst.id.clone()), tolerated_on_source).map_err(|e| {
        with_state(
            e,
            format!("the target {} owns the slots; the source {} will learn it by gossip", dst.addr, src.addr),
        )
    })?;
    let others: Vec<&NodeInfo> = topo
        .masters()
        .filter(|m| m.id != src.id && m.id != dst.id && topo.is_reachable(&m.id) && !m.is_failed())
        .collect();
    phase("node-others");
    let _ = steps.setslot_on(&others, all, &SetSlot::Node(dst.id.clone()));
    stats.slots += done.len();
    Ok(stats)
}

/// How long a SETSLOT is retried while a replica does not acknowledge it. Valkey carries out a
/// primary's SETSLOT only once every replica with a live link has acknowledged it, and answers
/// `NOREPLICAS` (the SETSLOT not carried out) after 2 s; a replica that is frozen keeps its link
/// until the primary drops it after `repl-timeout` (60 s by default), so within this time it
/// either wakes up or stops counting.
const REPLICA_ACK_PATIENCE: Duration = Duration::from_secs(90);

/// `CLUSTER SETSLOT` of each slot on one node, every refusal fatal (as `fix` sends it), with the
/// same patience for a replica that does not acknowledge as a move has.
pub fn setslot_all(steps: &dyn SlotSteps, node: &NodeInfo, slots: &[u16], how: &SetSlot) -> Result<()> {
    require(steps, node, slots, how, |_| false)
}

/// The SETSLOT, failing on the first refusal that is not `tolerated`; the slots a replica did not
/// acknowledge are sent again, for up to `REPLICA_ACK_PATIENCE`.
fn require(
    steps: &dyn SlotSteps,
    node: &NodeInfo,
    slots: &[u16],
    how: &SetSlot,
    tolerated: impl Fn(&ServerReply) -> bool,
) -> Result<()> {
    let started = Instant::now();
    let mut said: Option<Instant> = None;
    let mut pending = slots.to_vec();
    while !pending.is_empty() {
        let replies = steps.setslot(node, &pending, how)?;
        let mut unacknowledged = Vec::new();
        for (&slot, reply) in pending.iter().zip(replies) {
            match reply.filter(|r| !tolerated(r)) {
                Some(r) if r.kind == ServerKind::NoReplicas && started.elapsed() < REPLICA_ACK_PATIENCE => {
                    unacknowledged.push(slot);
                }
                Some(r) => {
                    let reason = if r.kind == ServerKind::NoReplicas {
                        format!(
                            "{}: a replica of {} has not acknowledged SETSLOT for {}s (frozen, or too far behind); the SETSLOT was not carried out",
                            r.text,
                            node.addr,
                            started.elapsed().as_secs()
                        )
                    } else {
                        r.text
                    };
                    return Err(Error::Command {
                        node: node.addr.to_string(),
                        command: format!("CLUSTER SETSLOT {slot} {}", how.word()),
                        reason,
                        state: None,
                    });
                }
                None => {}
            }
        }
        if !unacknowledged.is_empty() && said.is_none_or(|t| t.elapsed() >= Duration::from_secs(5)) {
            steps.say(&format!(
                "{}: a replica does not acknowledge SETSLOT {} (Valkey waits for every replica): {} slot(s) waiting, {}s of at most {}s; is a replica frozen?",
                node.addr,
                how.word(),
                unacknowledged.len(),
                started.elapsed().as_secs(),
                REPLICA_ACK_PATIENCE.as_secs()
            ));
            said = Some(Instant::now());
        }
        pending = unacknowledged;
    }
    Ok(())
}

/// Says in the error what the failed step leaves open, unless it already says.
fn with_state(e: Error, state: String) -> Error {
    match e {
        Error::Command { node, command, reason, state: None } => {
            Error::Command { node, command, reason, state: Some(state) }
        }
        Error::Timeout { what, detail } => {
            Error::Command { node: String::new(), command: what, reason: detail, state: Some(state) }
        }
        other => other,
    }
}

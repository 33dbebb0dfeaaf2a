//! `fix`: close slots left open by another tool, or by a failover, and move stranded keys home,
//! with no intent to go by. The decisions are `plan::reconcile`'s, as for a resumed run: a move
//! both ends agree on (or whose target, or the replica that took its place, already holds keys)
//! is finished; anything else goes back to the owner. A run of `runbook` that died is better
//! finished by running the same command again: its journal knows the intended owner.

use super::cluster::{Cluster, MoveOpts};
use super::reconcile::{failover_wait, repair};
use crate::error::Result;

/// Repairs every open slot and stranded key; returns one sentence per decision. Fails, after
/// repairing what it can, when some slot is in a state it will not guess about.
pub fn fix_open_slots(c: &dyn Cluster, opts: &MoveOpts) -> Result<Vec<String>> {
    let topo = c.topology()?;
    let r = repair(c, &[], opts, failover_wait(c, &topo))?;
    if r.is_empty() {
        c.out().say("no open slots and no stranded keys: nothing to fix");
    } else {
        // Done when every node has heard: replicas and other masters learn by gossip.
        super::membership::wait_converged(c, std::time::Duration::from_secs(30))?;
    }
    Ok(r.sentences())
}

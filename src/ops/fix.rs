//! Closing slots left open (MIGRATING/IMPORTING) by a tool that died, as redis-cli's `fix`
//! does, but saying what it decided and why for each slot. A run of `runbook` that died is
//! better finished by running the same command again: its journal knows the intended owner.

use std::collections::BTreeMap;

use super::cluster::{Cluster, MoveOpts, SetSlot};
use super::say::say;
use crate::error::{Error, Result};
use crate::model::OpenSlot;
use crate::plan::Batch;

/// Closes every open slot; returns one sentence per decision. Fails, after fixing what it can,
/// when some slot is in a state it will not guess about.
pub fn fix_open_slots(c: &dyn Cluster, opts: &MoveOpts) -> Result<Vec<String>> {
    let first = c.topology()?;
    let mut by_slot: BTreeMap<u16, Vec<OpenSlot>> = BTreeMap::new();
    for o in first.open_slots() {
        by_slot.entry(o.slot).or_default().push(o);
    }
    if by_slot.is_empty() {
        say("no open slots: nothing to fix");
        return Ok(Vec::new());
    }
    let mut decisions = Vec::new();
    let mut unfixed = Vec::new();
    for (slot, states) in by_slot {
        let topo = c.topology()?;
        let name = |id: &str| topo.node(id).map_or_else(|| id.chars().take(8).collect(), |n| n.addr.to_string());
        let owners = topo.owners(slot);
        let migrating: Vec<&OpenSlot> = states.iter().filter(|o| o.state == "migrating").collect();
        let importing: Vec<&OpenSlot> = states.iter().filter(|o| o.state == "importing").collect();
        let decision = match (owners.as_slice(), migrating.as_slice(), importing.as_slice()) {
            ([owner], [m], [i]) if m.node == owner.id && i.node == m.peer && i.peer == m.node => {
                let batch = Batch { from: m.node.clone(), to: m.peer.clone(), slots: vec![slot] };
                c.move_slots(&topo, &batch, opts)?;
                format!(
                    "slot {slot}: MIGRATING on {} and IMPORTING on {}: both ends agree, so the move was finished to {}",
                    name(&m.node),
                    name(&m.peer),
                    name(&m.peer)
                )
            }
            ([owner], [m], []) if owner.id == m.peer => {
                let batch = Batch { from: m.node.clone(), to: m.peer.clone(), slots: vec![slot] };
                c.move_slots(&topo, &batch, opts)?;
                format!(
                    "slot {slot}: {} already owns it; closed the leftover MIGRATING state on {}",
                    name(&m.peer),
                    name(&m.node)
                )
            }
            ([owner], [m], []) if owner.id == m.node => {
                let target = topo
                    .node(&m.peer)
                    .ok_or_else(|| Error::refused(format!("slot {slot} migrates to an unknown node"), None))?;
                let on_target = c.count_keys(target, &[slot])?.first().copied().unwrap_or(0);
                if on_target == 0 {
                    c.setslot(owner, &[slot], &SetSlot::Stable)?;
                    format!(
                        "slot {slot}: MIGRATING on its owner {} but {} is not importing it and holds none of its keys: set STABLE",
                        name(&m.node),
                        name(&m.peer)
                    )
                } else {
                    let batch = Batch { from: m.node.clone(), to: m.peer.clone(), slots: vec![slot] };
                    c.move_slots(&topo, &batch, opts)?;
                    format!(
                        "slot {slot}: {} already holds {on_target} of its keys, so the move was finished to it",
                        name(&m.peer)
                    )
                }
            }
            ([owner], [], [i]) => {
                let node = topo.node(&i.node).expect("open slots come from known nodes");
                let keys = c.count_keys(node, &[slot])?.first().copied().unwrap_or(0);
                if keys > 0 {
                    c.move_keys(node, owner, slot, opts)?;
                }
                c.setslot(node, &[slot], &SetSlot::Stable)?;
                if keys > 0 {
                    format!(
                        "slot {slot}: IMPORTING on {} with no migration on {}: its {keys} keys went back to the owner {}, then STABLE",
                        name(&i.node),
                        name(&i.peer),
                        name(&owner.id)
                    )
                } else {
                    format!(
                        "slot {slot}: IMPORTING on {} but nothing arrived and nothing migrates: set STABLE",
                        name(&i.node)
                    )
                }
            }
            _ => {
                let owners: Vec<String> = owners.iter().map(|o| o.addr.to_string()).collect();
                let states: Vec<String> = states.iter().map(|o| format!("{} on {}", o.state, name(&o.node))).collect();
                unfixed.push(slot);
                format!(
                    "slot {slot}: not fixed: owners [{}], {}; fix it by hand (CLUSTER SETSLOT … STABLE / NODE)",
                    owners.join(", "),
                    states.join(", ")
                )
            }
        };
        say(&decision);
        decisions.push(decision);
    }
    if unfixed.is_empty() {
        Ok(decisions)
    } else {
        Err(Error::refused(
            format!("{} slot(s) were left as they are: {unfixed:?}", unfixed.len()),
            Some("see the decisions above; the other open slots were closed"),
        ))
    }
}

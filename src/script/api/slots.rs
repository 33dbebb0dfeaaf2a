//! Moving slots: planning a drain or a rebalance, carrying out a plan, migrating slots by hand,
//! rebalancing, and closing the open slots an interrupted move leaves.

use std::sync::Arc;

use rhai::{Array, Dynamic, Map};

use super::{err, resolve};
use crate::error::Error;
use crate::model::Topology;
use crate::ops::{self, Cluster, MoveOpts};
use crate::plan::{self, Move, Plan};
use crate::script::journaled::{decide, j, show};
use crate::script::options::{MOVE_KEYS, check_keys, move_opts, rebalance_opts};
use crate::script::primitive::{Primitive, Registrar};
use crate::script::session::Session;
use crate::script::types::{ClusterHandle, PlanValue, RhaiResult, rhai_err};

const PLAN_DRAIN: Primitive = Primitive::reads("plan_drain");
const PLAN_REBALANCE: Primitive = Primitive::reads("plan_rebalance");
const MIGRATE_SLOT: Primitive = Primitive::changes("migrate_slot");
const MIGRATE_SLOTS: Primitive = Primitive::changes("migrate_slots");
const APPLY: Primitive = Primitive::changes("apply");
const REBALANCE: Primitive = Primitive::changes("rebalance");
const FIX: Primitive = Primitive::changes("fix");

pub(super) fn register(r: &mut Registrar<'_>, session: &Arc<Session>) {
    r.primitive(
        MIGRATE_SLOT,
        ["c", "slot", "to"],
        "Moves one slot, keys and ownership, to the master `to`.",
        |c: &mut ClusterHandle, slot: i64, to: Dynamic| -> RhaiResult<Map> {
            j(c, MIGRATE_SLOT, &format!("{slot} to {}", show(&to)), |cl| migrate(cl, &[slot], &to, &Map::new()))
        },
    );
    r.primitive(
        MIGRATE_SLOT,
        ["c", "slot", "to", "opts"],
        "Moves one slot to `to`; opts: pipeline, timeout (ms), replace, batch.",
        |c: &mut ClusterHandle, slot: i64, to: Dynamic, opts: Map| -> RhaiResult<Map> {
            j(c, MIGRATE_SLOT, &format!("{slot} to {}", show(&to)), |cl| migrate(cl, &[slot], &to, &opts))
        },
    );
    r.primitive(
        MIGRATE_SLOTS,
        ["c", "slots", "to"],
        "Moves several slots to `to`, batched per source.",
        |c: &mut ClusterHandle, slots: Array, to: Dynamic| -> RhaiResult<Map> {
            let slots = slot_list(&slots)?;
            j(c, MIGRATE_SLOTS, &format!("{} slots to {}", slots.len(), show(&to)), |cl| {
                migrate(cl, &slots, &to, &Map::new())
            })
        },
    );
    r.primitive(
        MIGRATE_SLOTS,
        ["c", "slots", "to", "opts"],
        "Moves several slots to `to`; opts: pipeline, timeout (ms), replace, batch.",
        |c: &mut ClusterHandle, slots: Array, to: Dynamic, opts: Map| -> RhaiResult<Map> {
            let slots = slot_list(&slots)?;
            j(c, MIGRATE_SLOTS, &format!("{} slots to {}", slots.len(), show(&to)), |cl| {
                migrate(cl, &slots, &to, &opts)
            })
        },
    );
    let (s1, s2, s3) = (session.clone(), session.clone(), session.clone());
    let (s4, s5) = (session.clone(), session.clone());
    r.primitive(
        PLAN_DRAIN,
        ["c", "nodes"],
        "A plan spreading the slots of a master (or an array of masters) evenly over the others.",
        move |c: &mut ClusterHandle, who: Dynamic| -> RhaiResult<PlanValue> {
            decide(&s1, c, PLAN_DRAIN, &show(&who), |cl| {
                let topo = cl.topology().map_err(rhai_err)?;
                let list: Array = who.clone().try_cast::<Array>().unwrap_or_else(|| vec![who.clone()]);
                let ids: Vec<String> =
                    list.iter().map(|w| resolve(&topo, w).map(|n| n.id)).collect::<Result<_, _>>().map_err(rhai_err)?;
                let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                let plan = plan::plan_drain(&topo, &ids).map_err(|e| rhai_err(e.into()))?;
                Ok(PlanValue(Arc::new(with_keys(cl, &topo, plan).map_err(rhai_err)?)))
            })
        },
    );
    r.primitive(
        PLAN_REBALANCE,
        ["c"],
        "A rebalance plan with default options (threshold 2%).",
        move |c: &mut ClusterHandle| -> RhaiResult<PlanValue> {
            decide(&s2, c, PLAN_REBALANCE, "", |cl| plan_rebalance(cl, &Map::new()))
        },
    );
    r.primitive(
        PLAN_REBALANCE,
        ["c", "opts"],
        "A rebalance plan; opts: weights, auto_weights, use_empty_masters, threshold.",
        move |c: &mut ClusterHandle, opts: Map| -> RhaiResult<PlanValue> {
            decide(&s3, c, PLAN_REBALANCE, "", |cl| plan_rebalance(cl, &opts))
        },
    );
    r.primitive(
        APPLY,
        ["c", "plan"],
        "Carries out a plan, batch by batch; returns #{slots, keys, seconds}.",
        |c: &mut ClusterHandle, p: PlanValue| -> RhaiResult<Map> {
            j(c, APPLY, &show(&Dynamic::from(p.clone())), |cl| apply_plan(cl, &p.0, &MoveOpts::default()))
        },
    );
    r.primitive(
        APPLY,
        ["c", "plan", "opts"],
        "Carries out a plan; opts: pipeline, timeout (ms), replace, batch.",
        |c: &mut ClusterHandle, p: PlanValue, opts: Map| -> RhaiResult<Map> {
            check_keys(&opts, MOVE_KEYS, "apply").map_err(rhai_err)?;
            let mopts = move_opts(&opts).map_err(rhai_err)?;
            j(c, APPLY, &show(&Dynamic::from(p.clone())), |cl| apply_plan(cl, &p.0, &mopts))
        },
    );
    r.primitive(
        REBALANCE,
        ["c"],
        "Evens out slots across masters (threshold 2%); returns #{slots, keys, seconds}.",
        move |c: &mut ClusterHandle| -> RhaiResult<Map> {
            let decided = decided_rebalance(&s4, c, &Map::new())?;
            j(c, REBALANCE, "", |cl| rebalance(cl, &Map::new(), decided.as_ref().map(|p| p.0.as_ref())))
        },
    );
    r.primitive(
        REBALANCE,
        ["c", "opts"],
        "Rebalance; opts: weights, auto_weights, use_empty_masters, threshold, simulate, pipeline, timeout, replace.",
        move |c: &mut ClusterHandle, opts: Map| -> RhaiResult<Map> {
            let decided = decided_rebalance(&s5, c, &opts)?;
            j(c, REBALANCE, "", |cl| rebalance(cl, &opts, decided.as_ref().map(|p| p.0.as_ref())))
        },
    );
    r.primitive(
        FIX,
        ["c"],
        "Closes every open slot (MIGRATING/IMPORTING) as redis-cli's fix does, printing each decision.",
        |c: &mut ClusterHandle| -> RhaiResult<Array> {
            j(c, FIX, "", |cl| {
                Ok(ops::fix_open_slots(cl, &MoveOpts::default())
                    .map_err(rhai_err)?
                    .into_iter()
                    .map(Dynamic::from)
                    .collect())
            })
        },
    );
}

fn report_map(r: &ops::ApplyReport) -> Map {
    let mut m = Map::new();
    m.insert("slots".into(), Dynamic::from(r.stats.slots as i64));
    m.insert("keys".into(), Dynamic::from(r.stats.keys as i64));
    m.insert("seconds".into(), Dynamic::from(r.seconds));
    m.insert("most_open".into(), Dynamic::from(r.most_open as i64));
    m.insert("longest_hold_ms".into(), Dynamic::from(r.stats.longest_hold_ms as i64));
    m.insert("over_budget".into(), Dynamic::from(r.stats.over_budget as i64));
    m
}

/// Adds the key count of every planned slot, so the plan shows what it will move.
fn with_keys(c: &dyn Cluster, topo: &Topology, mut plan: Plan) -> Result<Plan, Error> {
    let mut keys = vec![0u64; plan.moves.len()];
    let mut by_source: std::collections::BTreeMap<&str, Vec<usize>> = std::collections::BTreeMap::new();
    for (i, m) in plan.moves.iter().enumerate() {
        by_source.entry(m.from.as_str()).or_default().push(i);
    }
    for (src, idx) in by_source {
        let Some(node) = topo.node(src) else { continue };
        let slots: Vec<u16> = idx.iter().map(|&i| plan.moves[i].slot).collect();
        for (i, n) in idx.iter().zip(c.count_keys(node, &slots)?) {
            keys[*i] = n;
        }
    }
    plan.keys = Some(keys);
    Ok(plan)
}

fn apply_plan(c: &dyn Cluster, plan: &Plan, mopts: &MoveOpts) -> RhaiResult<Map> {
    ops::apply(c, plan, mopts).map(|r| report_map(&r)).map_err(rhai_err)
}

fn migrate(c: &dyn Cluster, slots: &[i64], to: &Dynamic, opts: &Map) -> RhaiResult<Map> {
    check_keys(opts, MOVE_KEYS, "migrate_slot").map_err(rhai_err)?;
    let mopts = move_opts(opts).map_err(rhai_err)?;
    let topo = c.topology().map_err(rhai_err)?;
    let target = resolve(&topo, to).map_err(rhai_err)?;
    if !target.is_master() {
        return err(Error::usage(format!("{} is a replica: slots can only go to a master", target.addr), None));
    }
    let mut moves = Vec::new();
    for &s in slots {
        let slot = u16::try_from(s)
            .ok()
            .filter(|s| *s < crate::model::SLOTS)
            .ok_or_else(|| rhai_err(Error::usage(format!("{s} is not a slot (0-16383)"), None)))?;
        let owner = topo.owner(slot).ok_or_else(|| {
            rhai_err(Error::refused(format!("slot {slot} has no owner"), Some("run `runbook check`")))
        })?;
        if owner.id != target.id {
            moves.push(Move { slot, from: owner.id.clone(), to: target.id.clone() });
        }
    }
    moves.sort_by(|a, b| (&a.from, a.slot).cmp(&(&b.from, b.slot)));
    apply_plan(c, &Plan::new("moves", &topo, moves), &mopts)
}

/// When the run records or replays a plan, `rebalance` moves by a decision like `plan_rebalance`.
fn decided_rebalance(s: &Session, c: &ClusterHandle, opts: &Map) -> RhaiResult<Option<PlanValue>> {
    if s.decisions.is_none() {
        return Ok(None);
    }
    decide(s, c, PLAN_REBALANCE, "", |cl| plan_rebalance(cl, opts)).map(Some)
}

fn slot_list(slots: &Array) -> RhaiResult<Vec<i64>> {
    slots
        .iter()
        .map(|s| s.as_int().map_err(|t| rhai_err(Error::usage(format!("slots are integers, not {t}"), None))))
        .collect()
}

fn plan_rebalance(c: &dyn Cluster, opts: &Map) -> RhaiResult<PlanValue> {
    let topo = c.topology().map_err(rhai_err)?;
    let (r, _, _) = rebalance_opts(c, &topo, opts).map_err(rhai_err)?;
    let plan = plan::plan_rebalance(&topo, &r).map_err(|e| rhai_err(e.into()))?;
    Ok(PlanValue(Arc::new(with_keys(c, &topo, plan).map_err(rhai_err)?)))
}

/// Rebalances by `decided` (a plan's decision) or by a plan computed now.
fn rebalance(c: &dyn Cluster, opts: &Map, decided: Option<&Plan>) -> RhaiResult<Map> {
    let topo = c.topology().map_err(rhai_err)?;
    let (r, mopts, simulate) = rebalance_opts(c, &topo, opts).map_err(rhai_err)?;
    let plan = match decided {
        Some(p) => p.clone(),
        None => plan::plan_rebalance(&topo, &r).map_err(|e| rhai_err(e.into()))?,
    };
    let mut out = if plan.is_empty() {
        c.out().say(&format!("no rebalancing needed: {}", plan.note.clone().unwrap_or_default()));
        report_map(&ops::ApplyReport::default())
    } else if simulate {
        c.out().say(&format!("simulate: would move {} slots", plan.moves.len()));
        report_map(&ops::ApplyReport::default())
    } else {
        apply_plan(c, &plan, &mopts)?
    };
    out.insert("plan".into(), Dynamic::from(PlanValue(Arc::new(plan))));
    Ok(out)
}

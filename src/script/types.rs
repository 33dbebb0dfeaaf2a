//! The values runbooks handle: `Cluster`, `Node`, `Plan`, `Check`, `Error`, registered with
//! getters and `to_string` so `print` and `${}` show them readably.

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, FuncRegistration, Map, Position};

use crate::error::Error;
use crate::model::{NodeInfo, describe};
use crate::ops::{CheckReport, Cluster};
use crate::plan::Plan;

/// A cluster handle: the live cluster, or its simulation in a dry run, and the journal its
/// calls are recorded in (none in a dry run or the REPL).
#[derive(Clone)]
pub struct ClusterHandle(pub Arc<dyn Cluster>, pub Option<Arc<crate::journal::Journal>>);

/// A node, as read when the value was made. Primitives re-read the cluster before acting.
#[derive(Clone)]
pub struct Node(pub NodeInfo);

#[derive(Clone)]
pub struct PlanValue(pub Arc<Plan>);

#[derive(Clone)]
pub struct CheckValue(pub Arc<CheckReport>);

#[derive(Clone)]
pub struct GatesValue(pub Arc<crate::ops::gates::GateReport>);

/// Turns our error into a rhai error that keeps the data, so the top level can render it (and
/// `catch (e)` in a runbook gets it as a value).
pub fn rhai_err(e: Error) -> Box<EvalAltResult> {
    if matches!(e, Error::Cancelled) {
        return EvalAltResult::ErrorTerminated(Dynamic::from(e), Position::NONE).into();
    }
    EvalAltResult::ErrorRuntime(Dynamic::from(e), Position::NONE).into()
}

pub type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

pub fn register_types(engine: &mut Engine) {
    engine
        .register_type_with_name::<ClusterHandle>("Cluster")
        .register_fn("to_string", |c: &mut ClusterHandle| format!("cluster {}", c.0.name()))
        .register_fn("to_debug", |c: &mut ClusterHandle| format!("cluster {}", c.0.name()));

    engine
        .register_type_with_name::<Node>("Node")
        .register_get("id", |n: &mut Node| n.0.id.clone())
        .register_get("addr", |n: &mut Node| n.0.addr.to_string())
        .register_get("host", |n: &mut Node| n.0.addr.host.clone())
        .register_get("port", |n: &mut Node| i64::from(n.0.addr.port))
        .register_get("role", |n: &mut Node| if n.0.is_master() { "master".to_string() } else { "replica".to_string() })
        .register_get("is_master", |n: &mut Node| n.0.is_master())
        .register_get("is_replica", |n: &mut Node| !n.0.is_master())
        .register_get("master_id", |n: &mut Node| n.0.master_id.clone().map_or(Dynamic::UNIT, Dynamic::from))
        .register_get("slots", |n: &mut Node| n.0.slots.len() as i64)
        .register_get("failed", |n: &mut Node| n.0.is_failed())
        .register_fn("to_string", |n: &mut Node| describe(&n.0))
        .register_fn("to_debug", |n: &mut Node| describe(&n.0))
        .register_fn("==", |a: &mut Node, b: Node| a.0.id == b.0.id)
        .register_fn("!=", |a: &mut Node, b: Node| a.0.id != b.0.id);

    engine
        .register_type_with_name::<PlanValue>("Plan")
        .register_get("kind", |p: &mut PlanValue| p.0.kind.clone())
        .register_get("slots", |p: &mut PlanValue| p.0.moves.len() as i64)
        .register_get("keys", |p: &mut PlanValue| p.0.keys.as_ref().map_or(-1, |k| k.iter().sum::<u64>() as i64))
        .register_get("is_empty", |p: &mut PlanValue| p.0.is_empty())
        .register_get("note", |p: &mut PlanValue| p.0.note.clone().unwrap_or_default())
        .register_get("moves", |p: &mut PlanValue| -> Array {
            p.0.moves
                .iter()
                .map(|m| {
                    let mut map = Map::new();
                    map.insert("slot".into(), Dynamic::from(i64::from(m.slot)));
                    map.insert("from".into(), Dynamic::from(p.0.name(&m.from)));
                    map.insert("to".into(), Dynamic::from(p.0.name(&m.to)));
                    Dynamic::from(map)
                })
                .collect()
        })
        .register_fn("to_string", |p: &mut PlanValue| p.0.to_string())
        .register_fn("to_debug", |p: &mut PlanValue| p.0.to_string());

    engine
        .register_type_with_name::<CheckValue>("Check")
        .register_get("healthy", |c: &mut CheckValue| c.0.healthy)
        .register_get("problems", |c: &mut CheckValue| -> Array {
            c.0.problems.iter().cloned().map(Dynamic::from).collect()
        })
        .register_get("fingerprint", |c: &mut CheckValue| c.0.fingerprint.clone())
        .register_get("masters", |c: &mut CheckValue| -> Array {
            c.0.masters.iter().map(|m| rhai::serde::to_dynamic(m).unwrap_or(Dynamic::UNIT)).collect()
        })
        .register_fn("to_string", |c: &mut CheckValue| c.0.render())
        .register_fn("to_debug", |c: &mut CheckValue| c.0.render());
    // Methods with doc comments, listed by `runbook functions` and `:help` beside the primitives.
    FuncRegistration::new("new_since")
        .with_comments(["/// The problems an earlier check does not account for: not reported then, nor about a node that was already failing."])
        .register_into_engine(engine, |c: &mut CheckValue, before: CheckValue| -> Array {
            c.0.new_since(&before.0).into_iter().map(Dynamic::from).collect()
        });
    FuncRegistration::new("assert_healthy")
        .with_comments(["/// Stops the runbook unless the check found nothing wrong: exit 3 while the run has changed nothing, exit 1 after."])
        .register_into_engine(engine, |c: &mut CheckValue| -> RhaiResult<()> {
            if c.0.healthy {
                return Ok(());
            }
            let after_changes = super::api::changed_by_this_run();
            Err(rhai_err(Error::Unhealthy { problems: c.0.problems.clone(), after_changes }))
        });

    engine
        .register_type_with_name::<GatesValue>("Gates")
        .register_get("passed", |g: &mut GatesValue| g.0.passed())
        .register_get("failed", |g: &mut GatesValue| -> Array {
            g.0.gates
                .iter()
                .filter(|x| x.outcome == crate::ops::gates::Outcome::Fail)
                .map(|x| Dynamic::from(x.name.clone()))
                .collect()
        })
        .register_fn("to_string", |g: &mut GatesValue| g.0.to_string())
        .register_fn("to_debug", |g: &mut GatesValue| g.0.to_string());
    FuncRegistration::new("assert_passed")
        .with_comments(["/// Stops the runbook, nothing changed, when a preflight gate failed; names each failure and the --skip-gates that would pass it."])
        .register_into_engine(engine, |g: &mut GatesValue| -> RhaiResult<()> {
            match g.0.to_error() {
                Some(e) => Err(rhai_err(e)),
                None => Ok(()),
            }
        });

    engine
        .register_type_with_name::<Error>("Error")
        .register_get("message", |e: &mut Error| e.to_string())
        .register_get("code", |e: &mut Error| i64::from(e.code()))
        .register_fn("to_string", |e: &mut Error| e.to_string())
        .register_fn("to_debug", |e: &mut Error| e.to_string());
}

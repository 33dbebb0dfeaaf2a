//! The values runbooks handle: `Cluster`, `Node`, `Plan`, `Check`, `Error`, registered with
//! getters and `to_string` so `print` and `${}` show them readably.

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, FuncRegistration, Map, Position};

use super::primitive::documented;
use crate::error::Error;
use crate::model::{NodeInfo, describe};
use crate::ops::{CheckReport, Cluster};
use crate::plan::Plan;

/// A cluster handle: the live cluster, or its simulation in a dry run, and the journal its
/// calls are recorded in (none in a dry run or the REPL).
///
/// The third part is set once a primitive changed the cluster (or was replayed as having
/// changed it): shared by every handle of one command, so no failure after it may claim that
/// nothing was changed.
#[derive(Clone)]
pub struct ClusterHandle(
    pub Arc<dyn Cluster>,
    pub Option<Arc<crate::journal::Journal>>,
    pub Arc<std::sync::atomic::AtomicBool>,
);

/// A node, as read when the value was made. Primitives re-read the cluster before acting.
#[derive(Clone)]
pub struct Node(pub NodeInfo);

#[derive(Clone)]
pub struct PlanValue(pub Arc<Plan>);

#[derive(Clone)]
pub struct CheckValue(pub Arc<CheckReport>);

#[derive(Clone)]
pub struct GatesValue(pub Arc<crate::ops::gates::GateReport>);

/// The slots a node owns, printed as operators write them (`0-5460,10923`); indexed and
/// iterated as `[start, end]` ranges, as the arrays it replaces were.
#[derive(Clone)]
pub struct SlotRanges(pub crate::model::SlotSet);

impl SlotRanges {
    fn range(&self, i: usize) -> Option<Array> {
        self.0.ranges().get(i).map(|(a, b)| vec![Dynamic::from(i64::from(*a)), Dynamic::from(i64::from(*b))])
    }
}

impl IntoIterator for SlotRanges {
    type Item = Dynamic;
    type IntoIter = std::vec::IntoIter<Dynamic>;

    fn into_iter(self) -> Self::IntoIter {
        (0..self.0.ranges().len()).filter_map(|i| self.range(i)).map(Dynamic::from).collect::<Vec<_>>().into_iter()
    }
}

/// Turns our error into a rhai error that keeps the data, so the top level can render it (and
/// `catch (e)` in a runbook gets it as a value).
pub fn rhai_err(e: Error) -> Box<EvalAltResult> {
    if matches!(e, Error::Cancelled) {
        return EvalAltResult::ErrorTerminated(Dynamic::from(e), Position::NONE).into();
    }
    EvalAltResult::ErrorRuntime(Dynamic::from(e), Position::NONE).into()
}

pub type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

/// A property with its doc, listed by `runbook functions` and `:help` as `node.addr -> string`.
macro_rules! getter {
    ($engine:expr, $name:literal, $doc:literal, $f:expr) => {
        FuncRegistration::new_getter($name).with_comments([concat!("/// ", $doc)]).register_into_engine($engine, $f);
    };
}

/// A cluster drawn: its name and its slot map, as `runbook check` draws it (just the name when
/// the cluster cannot be read: a print or an echo is no place for the error).
pub fn drawn(c: &dyn Cluster) -> String {
    let map = c.topology().and_then(|t| Ok(CheckReport::build(&t, &c.stats(&t)?)));
    match map {
        Ok(report) => {
            format!("cluster {}\n{}", c.name(), report.slot_map(c.out().colour_prints()).trim_end())
        }
        Err(_) => format!("cluster {}", c.name()),
    }
}

pub fn register_types(engine: &mut Engine) {
    engine
        .register_type_with_name::<ClusterHandle>("Cluster")
        .register_fn("to_string", |c: &mut ClusterHandle| format!("cluster {}", c.0.name()))
        // `print(c)` draws the slot map, as the REPL's echo does; `${c}` stays the name, since
        // runbooks interpolate it into their messages.
        .register_fn("print", |c: &mut ClusterHandle| drawn(c.0.as_ref()))
        .register_fn("to_debug", |c: &mut ClusterHandle| format!("cluster {}", c.0.name()));

    engine
        .register_type_with_name::<Node>("Node")
        .register_fn("to_string", |n: &mut Node| describe(&n.0))
        .register_fn("to_debug", |n: &mut Node| describe(&n.0))
        .register_fn("==", |a: &mut Node, b: Node| a.0.id == b.0.id)
        .register_fn("!=", |a: &mut Node, b: Node| a.0.id != b.0.id);
    getter!(engine, "id", "The node id (40 hex characters).", |n: &mut Node| n.0.id.clone());
    getter!(engine, "addr", "host:port, as clients reach it.", |n: &mut Node| n.0.addr.to_string());
    getter!(engine, "host", "The host, as the cluster announces it.", |n: &mut Node| n.0.addr.host.clone());
    getter!(engine, "port", "The port.", |n: &mut Node| i64::from(n.0.addr.port));
    getter!(engine, "role", "\"master\" or \"replica\".", |n: &mut Node| if n.0.is_master() {
        "master".to_string()
    } else {
        "replica".to_string()
    });
    getter!(engine, "is_master", "true for a master.", |n: &mut Node| n.0.is_master());
    getter!(engine, "is_replica", "true for a replica.", |n: &mut Node| !n.0.is_master());
    getter!(engine, "master_id", "A replica's master id; () for a master.", |n: &mut Node| n
        .0
        .master_id
        .clone()
        .map_or(Dynamic::UNIT, Dynamic::from));
    getter!(
        engine,
        "slots",
        "How many slots it owns (c.slots_of(n) gives the ranges).",
        |n: &mut Node| n.0.slots.len() as i64
    );
    getter!(engine, "failed", "true when some node flags it as failing (fail or fail?).", |n: &mut Node| n
        .0
        .is_failed());

    engine
        .register_type_with_name::<SlotRanges>("Slots")
        .register_fn("to_string", |s: &mut SlotRanges| s.0.to_string())
        .register_fn("to_debug", |s: &mut SlotRanges| s.0.to_string())
        .register_fn("len", |s: &mut SlotRanges| s.0.ranges().len() as i64)
        .register_fn("contains", |s: &mut SlotRanges, slot: i64| u16::try_from(slot).is_ok_and(|x| s.0.contains(x)))
        .register_indexer_get(|s: &mut SlotRanges, i: i64| -> RhaiResult<Array> {
            usize::try_from(i).ok().and_then(|i| s.range(i)).ok_or_else(|| {
                rhai_err(Error::usage(format!("range {i} does not exist: there are {}", s.0.ranges().len()), None))
            })
        })
        .register_iterator::<SlotRanges>();
    getter!(engine, "count", "How many slots (not ranges) it holds.", |s: &mut SlotRanges| s.0.len() as i64);
    getter!(engine, "ranges", "The ranges as [[start, end], ...].", |s: &mut SlotRanges| -> Array {
        (0..s.0.ranges().len()).filter_map(|i| s.range(i)).map(Dynamic::from).collect()
    });

    engine
        .register_type_with_name::<PlanValue>("Plan")
        .register_fn("to_string", |p: &mut PlanValue| p.0.to_string())
        .register_fn("to_debug", |p: &mut PlanValue| p.0.to_string());
    getter!(engine, "kind", "\"drain\" or \"rebalance\".", |p: &mut PlanValue| p.0.kind.clone());
    getter!(engine, "slots", "How many slots it moves.", |p: &mut PlanValue| p.0.moves.len() as i64);
    getter!(engine, "keys", "How many keys those slots hold (-1: not counted).", |p: &mut PlanValue| p
        .0
        .keys
        .as_ref()
        .map_or(-1, |k| k.iter().sum::<u64>() as i64));
    getter!(engine, "is_empty", "true when it moves nothing.", |p: &mut PlanValue| p.0.is_empty());
    getter!(engine, "note", "Why it moves nothing, when it does not; \"\" otherwise.", |p: &mut PlanValue| p
        .0
        .note
        .clone()
        .unwrap_or_default());
    getter!(engine, "moves", "Each move: [#{slot, from, to}, ...], nodes by address.", |p: &mut PlanValue| -> Array {
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
    });

    engine
        .register_type_with_name::<CheckValue>("Check")
        .register_fn("to_string", |c: &mut CheckValue| c.0.render())
        .register_fn("to_debug", |c: &mut CheckValue| c.0.render());
    getter!(engine, "healthy", "true when the check found nothing wrong.", |c: &mut CheckValue| c.0.healthy);
    getter!(engine, "problems", "What is wrong, one sentence each, nodes by address.", |c: &mut CheckValue| -> Array {
        c.0.problems.iter().cloned().map(Dynamic::from).collect()
    });
    getter!(engine, "fingerprint", "A short hash of the slot map and membership.", |c: &mut CheckValue| c
        .0
        .fingerprint
        .clone());
    getter!(
        engine,
        "masters",
        "Per master: #{addr, id, slots, keys, used_memory, maxmemory, ...}.",
        |c: &mut CheckValue| -> Array {
            c.0.masters.iter().map(|m| rhai::serde::to_dynamic(m).unwrap_or(Dynamic::UNIT)).collect()
        }
    );
    // Methods with doc comments, listed by `runbook functions` and `:help` beside the primitives.
    documented(
        engine,
        "new_since",
        ["check", "before"],
        "The problems an earlier check does not account for: not reported then, nor about a node that was already failing.",
        |c: &mut CheckValue, before: CheckValue| -> Array {
            c.0.new_since(&before.0).into_iter().map(Dynamic::from).collect()
        },
    );
    documented(
        engine,
        "assert_healthy",
        ["check"],
        "Stops the runbook unless the check found nothing wrong: exit 3 while the run has changed nothing, exit 1 after.",
        |c: &mut CheckValue| -> RhaiResult<()> {
            if c.0.healthy {
                return Ok(());
            }
            // Exit 3 here; the run's end makes it exit 1 when the run had changed the cluster.
            Err(rhai_err(Error::Unhealthy { problems: c.0.problems.clone(), after_changes: false }))
        },
    );

    engine
        .register_type_with_name::<GatesValue>("Gates")
        .register_fn("to_string", |g: &mut GatesValue| g.0.to_string())
        .register_fn("to_debug", |g: &mut GatesValue| g.0.to_string());
    getter!(engine, "passed", "true when no gate failed.", |g: &mut GatesValue| g.0.passed());
    getter!(engine, "failed", "The names of the gates that failed.", |g: &mut GatesValue| -> Array {
        g.0.gates
            .iter()
            .filter(|x| x.outcome == crate::ops::gates::Outcome::Fail)
            .map(|x| Dynamic::from(x.name.clone()))
            .collect()
    });
    documented(
        engine,
        "assert_passed",
        ["gates"],
        "Stops the runbook, nothing changed, when a preflight gate failed; names each failure and the --skip-gates that would pass it.",
        |g: &mut GatesValue| -> RhaiResult<()> {
            match g.0.to_error() {
                Some(e) => Err(rhai_err(e)),
                None => Ok(()),
            }
        },
    );

    // What `catch (e)` gets from a primitive: used as the message string it prints as, with its
    // exit code beside (`e.code`).
    engine
        .register_type_with_name::<Error>("Error")
        .register_fn("to_string", |e: &mut Error| e.to_string())
        .register_fn("to_debug", |e: &mut Error| e.to_string())
        .register_fn("contains", |e: &mut Error, text: &str| e.to_string().contains(text))
        .register_fn("starts_with", |e: &mut Error, text: &str| e.to_string().starts_with(text))
        .register_fn("==", |e: &mut Error, text: &str| e.to_string() == text)
        .register_fn("+", |text: &str, e: Error| format!("{text}{e}"))
        .register_fn("+", |e: &mut Error, text: &str| format!("{e}{text}"));
    getter!(engine, "message", "The message, as printed.", |e: &mut Error| e.to_string());
    getter!(engine, "code", "The exit code it would end the run with.", |e: &mut Error| i64::from(e.code()));
}

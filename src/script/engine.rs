//! Building the rhai engine for runbooks, and turning its errors into ours with file:line:col.

use std::sync::Arc;

use rhai::{Engine, EvalAltResult, Position};

use super::session::Session;
use super::{api, types};
use crate::error::{Error, Location};

/// An engine with runbook's API, limits that catch runaway scripts, `print` to stdout and
/// cancellation through `on_progress` (a script cannot `catch` it).
pub fn build(session: &Arc<Session>) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_call_levels(64)
        .set_max_expr_depths(128, 64)
        .set_max_string_size(1 << 24)
        .set_max_array_size(1 << 20)
        .set_max_map_size(1 << 20)
        .set_strict_variables(true);
    // With --json, stdout carries only events: a runbook's prints go to stderr with the rest.
    engine.on_print(|s| if crate::ops::events::json() { eprintln!("{s}") } else { println!("{s}") });
    engine
        .on_debug(|s, _, pos| eprintln!("debug{}: {s}", if pos.is_none() { String::new() } else { format!(" {pos}") }));
    let s = session.clone();
    engine.on_progress(move |_| s.cancelled().then(|| rhai::Dynamic::from(Error::Cancelled)));
    types::register_types(&mut engine);
    api::register(&mut engine, session);
    engine
}

/// Our error for a rhai error, pointing at the innermost position in `source`.
pub fn to_error(err: EvalAltResult, path: &str, source: &str) -> Error {
    // Errors inside script-defined functions are wrapped once per call level; the innermost one
    // is where the operator needs to look.
    let mut err = err;
    let mut outer = Position::NONE;
    loop {
        match err {
            EvalAltResult::ErrorInFunctionCall(_, _, inner, pos) | EvalAltResult::ErrorInModule(_, inner, pos) => {
                if !pos.is_none() {
                    outer = pos;
                }
                err = *inner;
            }
            other => {
                err = other;
                break;
            }
        }
    }
    let pos = if err.position().is_none() { outer } else { err.take_position() };
    let location = location(pos, path, source);
    match err {
        EvalAltResult::ErrorTerminated(..) => Error::Cancelled,
        EvalAltResult::ErrorRuntime(d, _) if d.is::<Error>() => {
            let e = d.cast::<Error>();
            if matches!(e, Error::Cancelled) {
                return e;
            }
            Error::Script { message: String::new(), location, syntax: false, inner: Some(Box::new(e)) }
        }
        EvalAltResult::ErrorParsing(p, _) => {
            Error::Script { message: format!("syntax error: {p}"), location, syntax: true, inner: None }
        }
        EvalAltResult::ErrorRuntime(d, _) => {
            Error::Script { message: d.to_string(), location, syntax: false, inner: None }
        }
        other => Error::Script { message: other.to_string(), location, syntax: false, inner: None },
    }
}

fn location(pos: Position, path: &str, source: &str) -> Option<Location> {
    let line = pos.line()?;
    Some(Location {
        path: path.to_string(),
        line,
        col: pos.position().unwrap_or(1),
        source_line: source.lines().nth(line - 1).map(str::to_string),
    })
}

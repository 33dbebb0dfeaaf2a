//! Building the rhai engine for runbooks (its API, its sandbox: size limits, a memory ceiling,
//! Ctrl-C at any point, imports confined to the runbook's directory), and turning its errors into
//! ours with file:line:col.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use rhai::module_resolvers::FileModuleResolver;
use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position};

use super::session::Session;
use super::{api, types};
use crate::error::{Error, Location};

/// Per value: a string of 4 MiB holds a `CLIENT LIST` of thousands of clients.
pub const MAX_STRING: usize = 1 << 22;
/// Items in an array, nested ones included: every slot eight times over.
pub const MAX_ARRAY: usize = 1 << 17;
/// Entries in a map, nested ones included.
pub const MAX_MAP: usize = 1 << 16;
/// Nested function calls: deeper is an endless recursion.
pub const MAX_CALL_DEPTH: usize = 64;
/// The size limits bound each value, not how many a runbook keeps (closures capturing strings,
/// many variables): above this resident size the run stops. A decommission needs about 20 MiB.
pub const MAX_RESIDENT: u64 = 512 << 20;
/// How often (in rhai operations) the resident size is read.
const RESIDENT_EVERY: u64 = 4096;

/// An engine with runbook's API, limits that catch runaway scripts, `print` to stdout and
/// cancellation through `on_progress` (a script cannot `catch` it). Imports resolve from the
/// current directory until `confine_imports` names the runbook's.
pub fn build(session: &Arc<Session>) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_max_call_levels(MAX_CALL_DEPTH)
        .set_max_expr_depths(128, 64)
        .set_max_string_size(MAX_STRING)
        .set_max_array_size(MAX_ARRAY)
        .set_max_map_size(MAX_MAP)
        .set_max_modules(256)
        .set_strict_variables(true);
    // With --json, stdout carries only events: a runbook's prints go to stderr with the rest.
    let out = session.out.clone();
    engine.on_print(move |s| if out.json() { eprintln!("{s}") } else { println!("{s}") });
    engine
        .on_debug(|s, _, pos| eprintln!("debug{}: {s}", if pos.is_none() { String::new() } else { format!(" {pos}") }));
    let s = session.clone();
    engine.on_progress(move |ops| {
        if s.cancelled() {
            return Some(rhai::Dynamic::from(Error::Cancelled));
        }
        if ops % RESIDENT_EVERY == 0
            && let Some(rss) = resident_bytes()
            && rss > MAX_RESIDENT
        {
            return Some(rhai::Dynamic::from(Error::usage(
                format!("the runbook uses {} MiB of memory, over the limit of {} MiB", rss >> 20, MAX_RESIDENT >> 20),
                Some("a runbook keeps what it decides with (nodes, slot lists, plans), not millions of values"),
            )));
        }
        None
    });
    // rhai checks a map's size when it is passed around, not when `m[k] = v` adds a key, so a
    // map grown in a loop would grow until the memory ceiling: every variable read checks it.
    // (`on_var` is marked volatile, not deprecated.)
    #[allow(deprecated)]
    engine.on_var(|name, _, ctx| {
        if let Some(v) = ctx.scope().get(name) {
            too_large(v)?;
        }
        Ok(None)
    });
    let cwd = std::env::current_dir().ok();
    confine_imports(&mut engine, cwd.as_deref());
    types::register_types(&mut engine);
    api::register(&mut engine, session);
    engine
}

/// `import "name"` loads `name.rhai` from `dir` (the runbook's directory) or below it, and
/// nothing else: no absolute path, no `..`, no symlink out of it. With no directory (a runbook
/// shipped inside the binary) nothing can be imported.
pub fn confine_imports(engine: &mut Engine, dir: Option<&Path>) {
    engine.set_module_resolver(Confined {
        root: dir.map(Path::to_path_buf),
        files: dir.map(FileModuleResolver::new_with_path),
    });
}

/// The directory a runbook named `name` imports from: its file's, made absolute; `None` for a
/// runbook shipped inside the binary.
pub fn runbook_dir(name: &str) -> Option<PathBuf> {
    let file = Path::new(name);
    if !file.is_file() {
        return None;
    }
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    Some(std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()))
}

/// A module name that stays inside the runbook's directory: relative, without `..` or `.`.
pub fn is_confined(path: &str) -> bool {
    let rel = Path::new(path);
    !path.is_empty() && !rel.is_absolute() && rel.components().all(|c| matches!(c, Component::Normal(_)))
}

struct Confined {
    root: Option<PathBuf>,
    files: Option<FileModuleResolver>,
}

impl Confined {
    fn check(&self, path: &str, pos: Position) -> Result<&FileModuleResolver, Box<EvalAltResult>> {
        let refuse = |why: String, hint: &str| {
            Box::new(EvalAltResult::ErrorRuntime(rhai::Dynamic::from(Error::usage(why, Some(hint))), pos))
        };
        let (Some(root), Some(files)) = (&self.root, &self.files) else {
            return Err(refuse(
                format!("cannot import \"{path}\": this runbook is built in and has no directory to import from"),
                "copy it to a file next to the modules it imports, and run that file",
            ));
        };
        let rel = Path::new(path);
        if !is_confined(path) {
            return Err(refuse(
                format!(
                    "cannot import \"{path}\": modules are named relative to the runbook's directory ({})",
                    root.display()
                ),
                "write import \"lib/helpers\" for lib/helpers.rhai next to the runbook; absolute paths and .. are refused",
            ));
        }
        let mut file = root.join(rel);
        file.set_extension("rhai");
        if !file.is_file() {
            return Err(refuse(
                format!("cannot import \"{path}\": there is no {}", file.display()),
                "modules are .rhai files in the runbook's directory or below it",
            ));
        }
        // A symlink may point anywhere: what it resolves to must still be inside.
        let inside = match (file.canonicalize(), root.canonicalize()) {
            (Ok(f), Ok(r)) => f.starts_with(r),
            _ => false,
        };
        if !inside {
            return Err(refuse(
                format!("cannot import \"{path}\": {} leads out of the runbook's directory", file.display()),
                "keep modules inside the runbook's directory, as files rather than links out of it",
            ));
        }
        Ok(files)
    }
}

impl ModuleResolver for Confined {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Arc<Module>, Box<EvalAltResult>> {
        self.check(path, pos)?.resolve(engine, source, path, pos)
    }
}

/// The size limits, on the top level of a value (cheap enough for every variable read).
fn too_large(v: &rhai::Dynamic) -> Result<(), Box<EvalAltResult>> {
    let what = if v.read_lock::<rhai::Map>().is_some_and(|m| m.len() > MAX_MAP) {
        "Size of object map"
    } else if v.read_lock::<rhai::Array>().is_some_and(|a| a.len() > MAX_ARRAY) {
        "Size of array"
    } else if v.read_lock::<rhai::ImmutableString>().is_some_and(|s| s.len() > MAX_STRING) {
        "Length of string"
    } else {
        return Ok(());
    };
    Err(Box::new(EvalAltResult::ErrorDataTooLarge(what.to_string(), Position::NONE)))
}

/// This process's resident memory, from /proc (Linux); `None` elsewhere.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb << 10)
}

/// What a rhai limit means to an operator, and what to do about it.
fn limit_error(err: &EvalAltResult) -> Option<(String, &'static str)> {
    let hint = "the limits keep a runaway runbook from taking the machine's memory; keep less data, or in parts";
    Some(match err {
        EvalAltResult::ErrorDataTooLarge(what, _) => {
            let limit = match what.as_str() {
                w if w.starts_with("Length of string") => format!("strings are limited to {} MiB", MAX_STRING >> 20),
                w if w.starts_with("Size of array") => {
                    format!("arrays are limited to {MAX_ARRAY} items, nested ones included")
                }
                w if w.starts_with("Size of object map") => {
                    format!("maps are limited to {MAX_MAP} entries, nested ones included")
                }
                _ => "over runbook's limit".to_string(),
            };
            (format!("{what} is too large: {limit}"), hint)
        }
        EvalAltResult::ErrorStackOverflow(_) => (
            format!("functions nested more than {MAX_CALL_DEPTH} deep"),
            "an endless recursion? a function that calls itself needs a case that stops",
        ),
        EvalAltResult::ErrorTooManyModules(_) => ("too many modules imported".to_string(), "import each module once"),
        _ => return None,
    })
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
    if let Some((message, hint)) = limit_error(&err) {
        // Bad input (exit 2); once the run has changed something, its end makes it a failed
        // step (exit 1).
        return Error::Script {
            message: String::new(),
            location,
            bad_runbook: false,
            inner: Some(Box::new(Error::usage(message, Some(hint)))),
        };
    }
    match err {
        EvalAltResult::ErrorTerminated(token, _) if token.is::<Error>() => match token.cast::<Error>() {
            Error::Cancelled => Error::Cancelled,
            e => Error::Script { message: String::new(), location, bad_runbook: false, inner: Some(Box::new(e)) },
        },
        EvalAltResult::ErrorTerminated(..) => Error::Cancelled,
        EvalAltResult::ErrorRuntime(d, _) if d.is::<Error>() => {
            let e = d.cast::<Error>();
            if matches!(e, Error::Cancelled) {
                return e;
            }
            Error::Script { message: String::new(), location, bad_runbook: false, inner: Some(Box::new(e)) }
        }
        EvalAltResult::ErrorParsing(p, _) => {
            Error::Script { message: format!("syntax error: {p}"), location, bad_runbook: true, inner: None }
        }
        EvalAltResult::ErrorRuntime(d, _) => {
            Error::Script { message: d.to_string(), location, bad_runbook: false, inner: None }
        }
        other => Error::Script { message: other.to_string(), location, bad_runbook: false, inner: None },
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

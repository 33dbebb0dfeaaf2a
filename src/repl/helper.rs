//! The line editor's helper: rhai's parser decides whether input is complete (so multi-line
//! input needs no backslashes), tab completes functions, methods, variables and nodes, and
//! history hints show in grey.

use std::borrow::Cow;
use std::sync::{Arc, RwLock};

use rhai::{Engine, LexError, ParseErrorType};
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::{Hinter, HistoryHinter};
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Context, Helper};

/// Words to complete, refreshed after every input.
#[derive(Default, Clone)]
pub struct Words {
    /// Functions and methods (ours and rhai's).
    pub functions: Vec<String>,
    /// Getters of nodes, plans and checks (`addr`, `slots`, …).
    pub properties: Vec<String>,
    pub variables: Vec<String>,
    /// `127.0.0.1:6391`, `6391`, id prefixes.
    pub nodes: Vec<String>,
}

pub const META: &[&str] = &[":help", ":load", ":dry-run on", ":dry-run off", ":quit"];

pub struct RbHelper {
    parser: Engine,
    pub words: Arc<RwLock<Words>>,
    hinter: HistoryHinter,
}

impl RbHelper {
    pub fn new(words: Arc<RwLock<Words>>) -> Self {
        Self { parser: Engine::new_raw(), words, hinter: HistoryHinter::new() }
    }
}

/// Whether `input` is a whole statement or rhai is still waiting for more.
pub fn is_incomplete(parser: &Engine, input: &str) -> bool {
    if input.trim_start().starts_with(':') || input.trim().is_empty() {
        return false;
    }
    let Err(e) = parser.compile(input) else { return false };
    let (kind, pos) = (e.err_type(), e.position());
    let lines: Vec<&str> = input.lines().collect();
    let at_end = pos.is_none()
        || pos.line().is_some_and(|l| {
            l > lines.len()
                || (l == lines.len() && pos.position().unwrap_or(0) > lines.last().map_or(0, |x| x.chars().count()))
        });
    match kind {
        ParseErrorType::UnexpectedEOF | ParseErrorType::BadInput(LexError::UnterminatedString) => true,
        ParseErrorType::MissingToken(..) => at_end,
        _ => false,
    }
}

impl Validator for RbHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if is_incomplete(&self.parser, ctx.input()) {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Valid(None)
        })
    }
}

/// Candidates for the word that ends at `pos`: returns where the word starts.
pub fn complete(words: &Words, line: &str, pos: usize) -> (usize, Vec<String>) {
    let before = &line[..pos];
    if before.starts_with(':') && !before.contains(' ') || before.starts_with(":dry-run") {
        return (0, META.iter().filter(|m| m.starts_with(before)).map(|m| (*m).to_string()).collect());
    }
    let start = before
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '.' || *c == ':'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let word = &before[start..];
    // A node: an address, a port or an id prefix.
    if word.contains(':') || word.starts_with(|c: char| c.is_ascii_digit()) {
        let mut out: Vec<String> = words.nodes.iter().filter(|n| n.starts_with(word)).cloned().collect();
        out.dedup();
        return (start, out);
    }
    // After a dot: a method or a property; else a function or a variable.
    if let Some(dot) = word.rfind('.') {
        let part = &word[dot + 1..];
        let mut out: Vec<String> =
            words.functions.iter().chain(&words.properties).filter(|f| f.starts_with(part)).cloned().collect();
        out.sort();
        out.dedup();
        return (start + dot + 1, out);
    }
    let mut out: Vec<String> = words
        .functions
        .iter()
        .chain(&words.variables)
        .chain(words.nodes.iter().filter(|n| n.chars().all(|c| c.is_ascii_hexdigit()) && n.len() == 8))
        .filter(|f| f.starts_with(word))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    (start, out)
}

impl Completer for RbHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let words = self.words.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (start, found) = complete(&words, line, pos);
        Ok((start, found.into_iter().map(|w| Pair { display: w.clone(), replacement: w }).collect()))
    }
}

impl Hinter for RbHelper {
    type Hint = String;

    fn hint(&self, line: &str, pos: usize, ctx: &Context<'_>) -> Option<String> {
        self.hinter.hint(line, pos, ctx)
    }
}

impl Highlighter for RbHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
    }

    fn highlight_char(&self, _line: &str, _pos: usize, _kind: CmdKind) -> bool {
        false
    }
}

impl Helper for RbHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_input_waits_for_more() {
        let p = Engine::new_raw();
        assert!(is_incomplete(&p, "fn f() {"));
        assert!(is_incomplete(&p, "foo(1, 2"));
        assert!(is_incomplete(&p, "let x = 1 +"));
        assert!(is_incomplete(&p, "let s = \"abc"));
        assert!(is_incomplete(&p, "fn f() {\n  let a = [1,\n"));
        assert!(!is_incomplete(&p, "let x = ;"), "a real error is complete: report it");
        assert!(!is_incomplete(&p, "fn f() { 1 }"));
        assert!(!is_incomplete(&p, ":help node"));
    }

    #[test]
    fn completes_methods_functions_and_nodes() {
        let w = Words {
            functions: vec!["nodes".into(), "node".into(), "masters".into(), "migrate_slot".into()],
            properties: vec!["addr".into()],
            variables: vec!["victim".into()],
            nodes: vec!["127.0.0.1:6391".into(), "6391".into(), "1a2b3c4d".into()],
        };
        assert_eq!(complete(&w, "c.nod", 5), (2, vec!["node".to_string(), "nodes".to_string()]));
        assert_eq!(complete(&w, "victim.ad", 9), (7, vec!["addr".to_string()]));
        assert_eq!(complete(&w, "vic", 3), (0, vec!["victim".to_string()]));
        assert_eq!(complete(&w, "c.node(\"127.0", 13), (8, vec!["127.0.0.1:6391".to_string()]));
        assert_eq!(complete(&w, "c.node(63", 9), (7, vec!["6391".to_string()]));
        assert_eq!(complete(&w, ":dry", 4).1, vec![":dry-run on".to_string(), ":dry-run off".to_string()]);
    }
}

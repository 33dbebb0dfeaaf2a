//! `runbook lint`: a runbook checked without running it or connecting anywhere — its header, its
//! syntax, the parameters it uses against those it declares, and calls to unknown functions.

use std::collections::BTreeSet;

use rhai::{Dynamic, Map, Scope};

use super::params::Header;
use super::{engine, primitives, reference_engine, shipped};
use crate::error::{Error, Result, exit};

/// Words that look like calls but are the language's own.
const KEYWORDS: &[&str] = &[
    "if",
    "while",
    "for",
    "loop",
    "switch",
    "return",
    "throw",
    "fn",
    "let",
    "const",
    "try",
    "catch",
    "in",
    "do",
    "until",
    "import",
    "export",
    "as",
    "private",
    "Fn",
    "call",
    "curry",
    "is_def_fn",
    "is_def_var",
    "type_of",
    "print",
    "debug",
    "eval",
    "this",
    "global",
    "is_shared",
    "timestamp",
];

/// One line of the source with its 1-based number, strings and comments blanked, so a word in a
/// string or a comment is never taken for code.
fn code_lines(source: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_str: Option<char> = None;
    // Open `${…}` of template strings: each holds code, and the brace depth inside it.
    let mut interpolations: Vec<u32> = Vec::new();
    for (i, line) in source.lines().enumerate() {
        let mut code = String::new();
        let mut chars = line.chars().peekable();
        while let Some(ch) = chars.next() {
            match in_str {
                Some('`') if ch == '$' && chars.peek() == Some(&'{') => {
                    chars.next();
                    interpolations.push(0);
                    in_str = None;
                    code.push_str("  ");
                }
                Some(q) => {
                    if ch == '\\' {
                        chars.next();
                    } else if ch == q {
                        in_str = None;
                    }
                    code.push(' ');
                }
                None if ch == '/' && chars.peek() == Some(&'/') => break,
                None if ch == '"' || ch == '`' => {
                    in_str = Some(ch);
                    code.push(' ');
                }
                None if ch == '{' && !interpolations.is_empty() => {
                    *interpolations.last_mut().unwrap_or(&mut 0) += 1;
                    code.push(ch);
                }
                None if ch == '}' && interpolations.last() == Some(&0) => {
                    interpolations.pop();
                    in_str = Some('`');
                    code.push(' ');
                }
                None if ch == '}' && !interpolations.is_empty() => {
                    *interpolations.last_mut().unwrap_or(&mut 0) -= 1;
                    code.push(ch);
                }
                None => code.push(ch),
            }
        }
        out.push((i + 1, code));
    }
    out
}

/// `name(` occurrences that are calls (not `fn name(` definitions), with their line.
fn calls(lines: &[(usize, String)]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in lines {
        let bytes = line.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i].is_ascii_alphabetic() || bytes[i] == b'_' {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let word = &line[start..i];
                let next = line[i..].trim_start();
                let before = line[..start].trim_end();
                // `h::double(` calls a function of an imported module, which lint does not load.
                if next.starts_with('(') && !before.ends_with("fn") && !before.ends_with('!') && !before.ends_with("::")
                {
                    out.push((*n, word.to_string()));
                }
            } else {
                i += 1;
            }
        }
    }
    out
}

/// Whether a runbook can change the cluster: its code calls a primitive that does
/// (as its registration declares). One that cannot takes no lease, so it runs beside a changing run.
pub fn mutates(source: &str) -> bool {
    let changing: BTreeSet<&str> = primitives().into_iter().filter(|p| p.changes_cluster()).map(|p| p.name).collect();
    calls(&code_lines(source)).iter().any(|(_, name)| changing.contains(name.as_str()))
}

/// The problems of a runbook, each a sentence; empty when it is fine.
pub fn lint(name: &str, source: &str) -> Result<Vec<String>> {
    let header = Header::parse(source).map_err(|e| Error::usage(format!("{name}: {e}"), None))?;
    let engine = reference_engine();
    let mut params = Map::new();
    for p in &header.params {
        params.insert(p.name.as_str().into(), Dynamic::UNIT);
    }
    let mut scope = Scope::new();
    scope.push_constant("params", params);
    let ast = engine.compile_with_scope(&scope, source).map_err(|e| engine::to_error(e.into(), name, source))?;

    let lines = code_lines(source);
    let mut problems = Vec::new();
    let declared: BTreeSet<&str> = header.params.iter().map(|p| p.name.as_str()).collect();
    let mut used = BTreeSet::new();
    for (n, line) in &lines {
        for (i, _) in line.match_indices("params.") {
            let rest: String = line[i + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !declared.contains(rest.as_str()) {
                problems.push(format!(
                    "line {n}: `params.{rest}` is not declared (add `//! @param {rest} …` to the header)"
                ));
            }
            used.insert(rest);
        }
    }
    for p in &declared {
        if !used.contains(*p) {
            problems.push(format!("parameter `{p}` is declared but never used"));
        }
    }
    let known: BTreeSet<String> = super::docs::function_names(&engine, &ast).into_iter().collect();
    for (n, call) in calls(&lines) {
        if !known.contains(&call) && !KEYWORDS.contains(&call.as_str()) {
            problems.push(format!("line {n}: `{call}` is not a known function (see `runbook functions`)"));
        }
    }
    // An import that a run would refuse, or whose module is not there, is found without running.
    for (n, line) in source.lines().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix("import ") else { continue };
        let Some(module) = rest.trim_start().strip_prefix('"').and_then(|r| r.split('"').next()) else { continue };
        if !engine::is_confined(module) {
            problems.push(format!(
                "line {}: import \"{module}\" is refused: modules are named relative to the runbook's directory, without .. or an absolute path",
                n + 1
            ));
        } else if let Some(dir) = std::path::Path::new(name).parent().filter(|_| std::path::Path::new(name).is_file()) {
            let file = dir.join(module).with_extension("rhai");
            if !file.is_file() {
                problems.push(format!("line {}: import \"{module}\": there is no {}", n + 1, file.display()));
            }
        }
    }
    // `x.call(...)` is rhai's function-pointer call: on a cluster it fails at run time with
    // "Data type incorrect: Node (expecting Fn)", so say what was meant before anything runs.
    for (n, line) in &lines {
        if line.contains(".call(") {
            problems.push(format!(
                "line {n}: `.call(` is rhai's call of a function pointer; a raw command is `c.command(node, \"CLUSTER INFO\")`"
            ));
        }
    }
    Ok(problems)
}

/// `runbook lint RUNBOOK`: exit 0 when clean, 2 with the problems listed.
pub fn lint_command(name: &str) -> Result<u8> {
    let (path, source) = shipped::load(name)?;
    let problems = lint(&path, &source)?;
    if problems.is_empty() {
        println!("{path}: ok");
        return Ok(exit::OK);
    }
    for p in &problems {
        println!("{path}: {p}");
    }
    Err(Error::usage(format!("{path} has {} problem(s)", problems.len()), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_undeclared_params_and_unknown_functions() {
        let src = "//! t\n//! @param node required n\n//! @param unused 1 u\nlet c = cluster();\nlet x = params.nod;\nfoo(1); // bar(2)\nprint(\"baz(3)\");\nfn helper(a) { a }\nhelper(c.node(params.node));\n";
        let problems = lint("t.rhai", src).unwrap();
        assert!(problems.iter().any(|p| p.contains("`params.nod` is not declared")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("`unused` is declared but never used")), "{problems:?}");
        assert!(problems.iter().any(|p| p.contains("line 6: `foo` is not a known function")), "{problems:?}");
        assert!(
            !problems.iter().any(|p| p.contains("bar") || p.contains("baz") || p.contains("helper")),
            "{problems:?}"
        );
    }

    #[test]
    fn mutating_runbooks_are_told_from_reading_ones() {
        assert!(!mutates("let c = cluster();\nprint(c.check()); // c.apply(plan)\nprint(\"c.del_node(x)\");\n"));
        assert!(mutates("let c = cluster();\nc.apply(c.plan_drain(c.node(1)));\n"));
        assert!(mutates("let c = cluster();\nlet r = c.rebalance (#{});\n"));
        assert!(mutates("let c = cluster();\nc.command(c.node(1), \"FLUSHALL\");\n"));
        for (name, src) in shipped::SHIPPED {
            assert!(mutates(src), "{name} changes the cluster");
        }
    }

    #[test]
    fn imports_outside_the_runbooks_directory_are_problems() {
        let src = "import \"/etc/x\" as a;\nimport \"../up\" as b;\nimport \"lib/ok\" as c;\nprint(1);\n";
        let problems = lint("t.rhai", src).unwrap();
        assert!(problems.iter().any(|p| p.starts_with("line 1: import \"/etc/x\" is refused")), "{problems:?}");
        assert!(problems.iter().any(|p| p.starts_with("line 2: import \"../up\" is refused")), "{problems:?}");
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn the_raw_command_is_command_not_call() {
        let problems = lint("t.rhai", "let c = cluster();\nc.call(6391, \"CLUSTER INFO\");\n").unwrap();
        assert!(problems.iter().any(|p| p.contains("line 2: `.call(`") && p.contains("c.command(")), "{problems:?}");
        let ok = lint("t.rhai", "let c = cluster();\nc.command(6391, \"CLUSTER INFO\");\n").unwrap();
        assert_eq!(ok, Vec::<String>::new());
    }

    #[test]
    fn template_interpolations_are_code() {
        let src = "//! t\n//! @param top int 3 n\nprint(`a ${params.top} b ${ #{x: 1}.x } \"${params.tops}\"`);\n";
        let problems = lint("t.rhai", src).unwrap();
        assert_eq!(problems, vec!["line 3: `params.tops` is not declared (add `//! @param tops …` to the header)"]);
    }

    #[test]
    fn shipped_runbooks_are_clean() {
        for (name, src) in shipped::SHIPPED {
            assert_eq!(lint(name, src).unwrap(), Vec::<String>::new(), "{name}");
        }
    }
}

//! The API reference, generated from the registered functions' metadata (their doc comments and
//! types): one source for `runbook functions`, the REPL's `:help` and the guide.

use rhai::Engine;
use serde_json::Value;

/// One registered overload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FnDoc {
    pub name: String,
    /// As a runbook writes it: `c.migrate_slot(slot: int, to: node, opts: map) -> map`.
    pub signature: String,
    pub doc: String,
}

/// Values whose documented methods are shown as `check.assert_healthy()`.
const VALUES: &[&str] = &["check", "gates", "plan", "slots"];

/// How a parameter or result type reads in a runbook: `core::result::Result<alloc::vec::Vec<…>, …>`
/// is an `array`, `&mut ClusterHandle` a `cluster`.
fn plain(ty: &str) -> String {
    let mut t = ty.trim().trim_start_matches('&').trim_start_matches("mut ").trim();
    if let Some(inner) = t.strip_prefix("core::result::Result<").or_else(|| t.strip_prefix("Result<")) {
        let mut depth = 0;
        let end = inner
            .char_indices()
            .find(|(_, c)| {
                match c {
                    '<' => depth += 1,
                    '>' => depth -= 1,
                    ',' if depth == 0 => return true,
                    _ => {}
                }
                false
            })
            .map_or(inner.len(), |(i, _)| i);
        t = &inner[..end];
    }
    let base = t.split('<').next().unwrap_or(t);
    let last = base.rsplit("::").next().unwrap_or(base);
    match last {
        "Dynamic" => "node",
        "Map" | "BTreeMap" => "map",
        "Array" | "Vec" => "array",
        "i64" | "INT" => "int",
        "f64" | "FLOAT" => "float",
        "str" | "ImmutableString" | "String" => "string",
        "PlanValue" | "Plan" => "plan",
        "CheckValue" | "Check" => "check",
        "GatesValue" | "Gates" => "gates",
        "ClusterHandle" | "Cluster" => "cluster",
        "Node" => "Node",
        "SlotRanges" | "Slots" => "slots",
        other => other,
    }
    .to_string()
}

/// Every documented function of `engine`, sorted by name (overloads by arity, then signature).
pub fn api(engine: &Engine) -> Vec<FnDoc> {
    let json: Value =
        engine.gen_fn_metadata_to_json(false).ok().and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default();
    let mut out: Vec<(String, usize, FnDoc)> = json["functions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| {
            let doc: Vec<&str> = f["docComments"].as_array()?.iter().filter_map(Value::as_str).collect();
            if doc.is_empty() {
                return None;
            }
            let name = f["name"].as_str()?.to_string();
            // Each parameter as registered (`Registrar`): its name and its type.
            let params: Vec<(&str, &str)> = f["params"]
                .as_array()?
                .iter()
                .map(|p| (p["name"].as_str().unwrap_or("arg"), p["type"].as_str().unwrap_or("?")))
                .collect();
            let types: Vec<&str> = params.iter().map(|(_, t)| *t).collect();
            let doc = doc.iter().map(|d| d.trim_start_matches("///").trim()).collect::<Vec<_>>().join(" ");
            if let Some(prop) = name.strip_prefix("get$") {
                // A property: `node.addr -> string`, listed after the functions (`~` sorts last).
                let of = types.first().map(|t| plain(t).to_ascii_lowercase()).unwrap_or_default();
                let ret =
                    f["returnType"].as_str().map(plain).map(|r| if r == "node" { "value".to_string() } else { r });
                let signature = format!("{of}.{prop}{}", ret.map(|r| format!(" -> {r}")).unwrap_or_default());
                return Some((format!("~{of}.{prop}"), 0, FnDoc { name: prop.to_string(), signature, doc }));
            }
            let (receiver, args) = match params.split_first() {
                Some(((_, first), rest)) if plain(first) == "cluster" => ("c.".to_string(), rest),
                Some(((_, first), rest)) if VALUES.contains(&plain(first).as_str()) => {
                    (format!("{}.", plain(first)), rest)
                }
                _ => (String::new(), params.as_slice()),
            };
            let args: Vec<String> = args.iter().map(|(n, t)| format!("{n}: {}", plain(t))).collect();
            let ret = f["returnType"]
                .as_str()
                .map(plain)
                .map(|r| if r == "node" { "value".to_string() } else { r })
                .filter(|r| !r.is_empty() && r != "()");
            let signature =
                format!("{receiver}{name}({}){}", args.join(", "), ret.map(|r| format!(" -> {r}")).unwrap_or_default());
            Some((name.clone(), types.len(), FnDoc { name, signature, doc }))
        })
        .collect();
    // The signature last: rhai's tables are hashed per process, and overloads of one arity
    // (`sleep(int)`, `sleep(float)`) would come out in a different order on each run.
    out.sort_by(|a, b| (&a.0, a.1, &a.2.signature).cmp(&(&b.0, b.1, &b.2.signature)));
    out.dedup_by(|a, b| a.2.signature == b.2.signature);
    out.into_iter().map(|(_, _, d)| d).collect()
}

/// Every function a runbook can call: the engine's (ours and rhai's own packages) and those the
/// script `ast` defines, sorted, once each.
pub fn function_names(engine: &Engine, ast: &rhai::AST) -> Vec<String> {
    let mut names: Vec<String> = engine
        .gen_fn_signatures(true)
        .iter()
        .filter_map(|s| s.split('(').next())
        .map(|n| n.rsplit(' ').next().unwrap_or(n).to_string())
        .chain(ast.iter_functions().map(|f| f.name.to_string()))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The reference as text: one block per function, every overload with its doc.
pub fn render(docs: &[FnDoc], only: Option<&str>) -> String {
    let mut out = String::new();
    for d in docs.iter().filter(|d| only.is_none_or(|n| n == d.name)) {
        out.push_str(&format!("{}\n    {}\n", d.signature, d.doc));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_parameter_is_named_as_registered() {
        let docs = api(&super::super::reference_engine());
        let signatures: Vec<&str> = docs.iter().map(|d| d.signature.as_str()).collect();
        for s in [
            "c.preflight(plan: plan, opts: map) -> gates",
            "c.migrate_slots(slots: array, to: node, opts: map) -> map",
            "c.replicate(replica: node, master: node)",
            "check.new_since(before: check) -> array",
            "sleep(secs: float)",
        ] {
            assert!(signatures.contains(&s), "{s} in {signatures:#?}");
        }
        assert!(signatures.iter().all(|s| !s.contains("arg:")), "{signatures:#?}");
    }
}

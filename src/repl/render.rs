//! Results shown readably: nodes as a table, plans and checks as their reports.

use rhai::{Array, Dynamic, Map};

use crate::model::describe;
use crate::script::types::{CheckValue, ClusterHandle, Node, PlanValue};

pub fn render(v: &Dynamic) -> Option<String> {
    if v.is_unit() {
        return None;
    }
    Some(show(v))
}

fn show(v: &Dynamic) -> String {
    if let Some(n) = v.clone().try_cast::<Node>() {
        return describe(&n.0);
    }
    if let Some(p) = v.clone().try_cast::<PlanValue>() {
        return p.0.to_string().trim_end().to_string();
    }
    if let Some(c) = v.clone().try_cast::<CheckValue>() {
        return c.0.render().trim_end().to_string();
    }
    if let Some(c) = v.clone().try_cast::<ClusterHandle>() {
        return crate::script::types::drawn(c.0.as_ref());
    }
    if let Some(e) = v.clone().try_cast::<crate::error::Error>() {
        return format!("error: {e}");
    }
    if let Some(a) = v.clone().try_cast::<Array>() {
        if !a.is_empty() && a.iter().all(Dynamic::is::<Node>) {
            return node_table(&a);
        }
        return format!("[{}]", a.iter().map(show).collect::<Vec<_>>().join(", "));
    }
    if let Some(m) = v.clone().try_cast::<Map>() {
        return format!("#{{{}}}", m.iter().map(|(k, v)| format!("{k}: {}", show(v))).collect::<Vec<_>>().join(", "));
    }
    if v.is_string() {
        return format!("{:?}", v.clone().into_string().unwrap_or_default());
    }
    v.to_string()
}

fn node_table(nodes: &Array) -> String {
    let mut out = format!("{:<22} {:<8} {:>6}  {:<10} master", "node", "role", "slots", "id");
    for n in nodes.iter().filter_map(|x| x.clone().try_cast::<Node>()) {
        let n = n.0;
        out.push_str(&format!(
            "\n{:<22} {:<8} {:>6}  {:<10} {}",
            n.addr.to_string(),
            if n.is_master() { "master" } else { "replica" },
            n.slots.len(),
            &n.id[..8.min(n.id.len())],
            n.master_id.as_deref().map_or("-", |m| &m[..8.min(m.len())])
        ));
    }
    out
}

//! Runbook values to JSON and back, so the journal can record a primitive's result and a
//! resumed run can be handed the same value again.

use std::sync::Arc;

use rhai::{Array, Dynamic, Map};
use serde_json::{Value, json};

use super::types::{CheckValue, GatesValue, Node, PlanValue, SlotRanges};

pub fn encode(d: &Dynamic) -> Value {
    if let Some(n) = d.clone().try_cast::<Node>() {
        return json!({ "$node": n.0 });
    }
    if let Some(p) = d.clone().try_cast::<PlanValue>() {
        return json!({ "$plan": *p.0 });
    }
    if let Some(c) = d.clone().try_cast::<CheckValue>() {
        return json!({ "$check": *c.0 });
    }
    if let Some(g) = d.clone().try_cast::<GatesValue>() {
        return json!({ "$gates": *g.0 });
    }
    if let Some(s) = d.clone().try_cast::<SlotRanges>() {
        return json!({ "$slots": s.0 });
    }
    if d.is_array() {
        return Value::Array(d.clone().into_array().unwrap_or_default().iter().map(encode).collect());
    }
    if let Some(m) = d.clone().try_cast::<Map>() {
        return Value::Object(m.iter().map(|(k, v)| (k.to_string(), encode(v))).collect());
    }
    if d.is_unit() {
        return Value::Null;
    }
    if let Ok(b) = d.as_bool() {
        return json!(b);
    }
    if let Ok(i) = d.as_int() {
        return json!(i);
    }
    if let Ok(f) = d.as_float() {
        return json!(f);
    }
    if d.is_string() {
        return json!(d.clone().into_string().unwrap_or_default());
    }
    json!({ "$opaque": d.type_name() })
}

/// The value back, or `None` for what cannot be rebuilt (then the call runs live instead).
pub fn decode(v: &Value) -> Option<Dynamic> {
    Some(match v {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from(*b),
        Value::Number(n) => n.as_i64().map_or_else(|| Dynamic::from(n.as_f64().unwrap_or_default()), Dynamic::from),
        Value::String(s) => Dynamic::from(s.clone()),
        Value::Array(a) => Dynamic::from(a.iter().map(decode).collect::<Option<Array>>()?),
        Value::Object(o) => {
            if let Some(s) = o.get("$slots") {
                return serde_json::from_value(s.clone()).ok().map(|s| Dynamic::from(SlotRanges(s)));
            }
            if let Some(n) = o.get("$node") {
                return serde_json::from_value(n.clone()).ok().map(|n| Dynamic::from(Node(n)));
            }
            if let Some(p) = o.get("$plan") {
                return serde_json::from_value(p.clone()).ok().map(|p| Dynamic::from(PlanValue(Arc::new(p))));
            }
            if let Some(c) = o.get("$check") {
                return serde_json::from_value(c.clone()).ok().map(|c| Dynamic::from(CheckValue(Arc::new(c))));
            }
            if let Some(g) = o.get("$gates") {
                return serde_json::from_value(g.clone()).ok().map(|g| Dynamic::from(GatesValue(Arc::new(g))));
            }
            if o.contains_key("$opaque") {
                return None;
            }
            let mut m = Map::new();
            for (k, v) in o {
                m.insert(k.as_str().into(), decode(v)?);
            }
            Dynamic::from(m)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse_nodes;

    #[test]
    fn values_round_trip() {
        let nodes = parse_nodes(include_str!("../../tests/fixtures/redis7-open-slot-source-view.txt")).unwrap();
        let node = Dynamic::from(Node(nodes[1].clone()));
        let mut m = Map::new();
        m.insert("n".into(), node);
        m.insert("list".into(), Dynamic::from(vec![Dynamic::from(1_i64), Dynamic::from(2.5_f64), Dynamic::from("x")]));
        m.insert("ok".into(), Dynamic::from(true));
        let json = encode(&Dynamic::from(m));
        let back = decode(&json).unwrap().try_cast::<Map>().unwrap();
        let n = back["n"].clone().try_cast::<Node>().unwrap();
        assert_eq!(n.0, nodes[1], "open slots and all");
        assert_eq!(encode(&back["list"]), json!([1, 2.5, "x"]));
        assert!(decode(&json!({"$opaque": "Instant"})).is_none());
    }
}

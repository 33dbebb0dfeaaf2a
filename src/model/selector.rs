//! Node selectors as operators type them: a port (`6397`), `host:port`, or a node id: at least 8
//! hex characters of it, or any prefix written `id:…`. Nothing else is guessed.

use super::node::NodeInfo;
use super::topology::Topology;

/// The shortest id prefix taken without `id:`: shorter ones are too easily a mistyped port.
pub const MIN_ID_PREFIX: usize = 8;

/// Why a selector did not pick exactly one node. Carries the candidates so the message can list them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelectError {
    NotFound {
        selector: String,
        candidates: Vec<String>,
    },
    Ambiguous {
        selector: String,
        matches: Vec<String>,
    },
    /// Neither a port, nor host:port, nor a node id: said so rather than guessed at.
    Malformed {
        selector: String,
        reason: String,
        candidates: Vec<String>,
    },
}

/// A node as a one-line description: `127.0.0.1:6391 (master, 1a2b3c4d)`.
pub fn describe(n: &NodeInfo) -> String {
    let role = if n.is_master() { "master" } else { "replica" };
    let failed = if n.flags.fail { ", failed" } else { "" };
    format!("{} ({role}, {}{failed})", n.addr, &n.id[..8.min(n.id.len())])
}

/// What a selector names, read without looking at any cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    Port(u16),
    HostPort(String, u16),
    /// A node id prefix, lower-cased.
    Id(String),
}

/// Reads a selector's form: a bare number is a port and never an id prefix (`18` must not pick
/// the node whose id starts with 18 when port 18 is a typo). The error says why it is none.
pub fn parse(selector: &str) -> Result<Selector, String> {
    let sel = selector.trim();
    let is_hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    if sel.is_empty() {
        Err("an empty selector names no node".into())
    } else if sel.bytes().all(|b| b.is_ascii_digit()) {
        sel.parse::<u16>().ok().filter(|p| *p > 0).map(Selector::Port).ok_or_else(|| {
            format!("`{sel}` is a number but not a port (1-65535); a node id written in digits is id:{sel}")
        })
    } else if let Some(prefix) = sel.strip_prefix("id:") {
        if is_hex(prefix) {
            Ok(Selector::Id(prefix.to_ascii_lowercase()))
        } else {
            Err(format!("`{prefix}` is not a node id: ids are hex digits"))
        }
    } else if let Some((host, port)) = sel.rsplit_once(':') {
        let port = port.parse::<u16>().ok().filter(|p| *p > 0);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        match port {
            Some(port) if !host.is_empty() => Ok(Selector::HostPort(host.to_string(), port)),
            _ => Err(format!("`{sel}` is not host:port (the port is 1-65535)")),
        }
    } else if is_hex(sel) && sel.len() >= MIN_ID_PREFIX {
        Ok(Selector::Id(sel.to_ascii_lowercase()))
    } else if is_hex(sel) {
        Err(format!(
            "`{sel}` is too short for a node id prefix (at least {MIN_ID_PREFIX} hex characters, or write id:{sel})"
        ))
    } else {
        Err(format!("`{sel}` is not a port, host:port or node id"))
    }
}

/// Picks the one node that `selector` names.
pub fn select<'a>(topology: &'a Topology, selector: &str) -> Result<&'a NodeInfo, SelectError> {
    let candidates = || topology.nodes().iter().map(describe).collect::<Vec<_>>();
    let parsed = parse(selector).map_err(|reason| SelectError::Malformed {
        selector: selector.trim().to_string(),
        reason,
        candidates: candidates(),
    })?;
    let localhost = |h: &str| h == "localhost" || h == "127.0.0.1" || h == "::1";
    let matches: Vec<&NodeInfo> = topology
        .nodes()
        .iter()
        .filter(|n| match &parsed {
            Selector::Port(port) => n.addr.port == *port,
            Selector::Id(prefix) => n.id.starts_with(prefix.as_str()),
            Selector::HostPort(host, port) => {
                n.addr.port == *port
                    && (n.addr.host == *host
                        || n.addr.hostname.as_deref() == Some(host.as_str())
                        || (localhost(host) && localhost(&n.addr.host)))
            }
        })
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(SelectError::NotFound { selector: selector.trim().to_string(), candidates: candidates() }),
        many => Err(SelectError::Ambiguous {
            selector: selector.trim().to_string(),
            matches: many.iter().map(|n| describe(n)).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::node::parse_nodes;

    fn topo() -> Topology {
        Topology::from_single_view(parse_nodes(include_str!("../../tests/fixtures/redis7-healthy-4m4r.txt")).unwrap())
    }

    #[test]
    fn by_port_address_and_id() {
        let t = topo();
        assert_eq!(select(&t, "27904").unwrap().addr.port, 27904);
        assert_eq!(select(&t, "127.0.0.1:27904").unwrap().addr.port, 27904);
        assert_eq!(select(&t, "localhost:27904").unwrap().addr.port, 27904);
        assert_eq!(select(&t, "7e662d27").unwrap().addr.port, 27904);
        assert_eq!(select(&t, "7E662D274CD2A5603210EB4AA147F640A44F8690").unwrap().addr.port, 27904);
    }

    #[test]
    fn unknown_and_ambiguous_list_candidates() {
        let t = topo();
        match select(&t, "6397") {
            Err(SelectError::NotFound { candidates, .. }) => {
                assert_eq!(candidates.len(), 8);
                assert!(candidates[0].starts_with("127.0.0.1:27901 (master, 7a7e9f32"), "{candidates:?}");
            }
            other => panic!("{other:?}"),
        }
        // 7a7e… and 7c2e… and 7e66… all start with 7, asked for explicitly.
        match select(&t, "id:7") {
            Err(SelectError::Ambiguous { matches, .. }) => assert_eq!(matches.len(), 3),
            other => panic!("{other:?}"),
        }
        assert!(matches!(select(&t, "not a node!"), Err(SelectError::Malformed { .. })));
    }

    #[test]
    fn a_bare_number_is_a_port_never_an_id_prefix() {
        let t = topo();
        // 81a3f82c… and 7e662d27… exist; as numbers these are ports no node listens on.
        for sel in ["81", "7", "4"] {
            match select(&t, sel) {
                Err(SelectError::NotFound { candidates, .. }) => assert_eq!(candidates.len(), 8),
                other => panic!("{sel}: {other:?}"),
            }
        }
        // A number that is no port at all says so.
        match select(&t, "99999") {
            Err(SelectError::Malformed { reason, .. }) => assert!(reason.contains("not a port"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(select(&t, "0"), Err(SelectError::Malformed { .. })));
        // An id made only of digits is still reachable, written as an id.
        assert_eq!(select(&t, "id:81").unwrap().addr.port, 27908);
    }

    #[test]
    fn an_id_prefix_needs_eight_hex_characters_or_id() {
        let t = topo();
        match select(&t, "7e662d2") {
            Err(SelectError::Malformed { reason, candidates, .. }) => {
                assert!(reason.contains("at least 8 hex characters, or write id:7e662d2"), "{reason}");
                assert_eq!(candidates.len(), 8);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(select(&t, "7e662d27").unwrap().addr.port, 27904);
        assert_eq!(select(&t, "id:7e66").unwrap().addr.port, 27904);
        assert_eq!(select(&t, "ID:7e66").map(|n| n.addr.port).ok(), None, "id: is lower case, like ids");
        assert!(matches!(select(&t, "id:xyz"), Err(SelectError::Malformed { .. })));
        assert!(matches!(select(&t, ""), Err(SelectError::Malformed { .. })));
        assert!(matches!(select(&t, "  "), Err(SelectError::Malformed { .. })));
        assert!(matches!(select(&t, "deadbeefdeadbeef"), Err(SelectError::NotFound { .. })));
    }
}

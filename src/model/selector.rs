//! Node selectors as operators type them: a port (`6397`), `host:port`, or a node id or unique prefix.

use super::node::NodeInfo;
use super::topology::Topology;

/// Why a selector did not pick exactly one node. Carries the candidates so the message can list them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelectError {
    NotFound { selector: String, candidates: Vec<String> },
    Ambiguous { selector: String, matches: Vec<String> },
}

/// A node as a one-line description: `127.0.0.1:6391 (master, 1a2b3c4d)`.
pub fn describe(n: &NodeInfo) -> String {
    let role = if n.is_master() { "master" } else { "replica" };
    let failed = if n.flags.fail { ", failed" } else { "" };
    format!("{} ({role}, {}{failed})", n.addr, &n.id[..8.min(n.id.len())])
}

/// Picks the one node that `selector` names.
pub fn select<'a>(topology: &'a Topology, selector: &str) -> Result<&'a NodeInfo, SelectError> {
    let sel = selector.trim();
    let is_hex = !sel.is_empty() && sel.bytes().all(|b| b.is_ascii_hexdigit());
    let by_id = || -> Vec<&NodeInfo> {
        let lower = sel.to_ascii_lowercase();
        topology.nodes().iter().filter(|n| n.id.starts_with(&lower)).collect()
    };
    let matches: Vec<&NodeInfo> = if let Some(port) = sel.parse::<u16>().ok().filter(|_| sel.len() <= 5) {
        // A short number is a port first; failing that it may still be an id prefix.
        let by_port: Vec<&NodeInfo> = topology.nodes().iter().filter(|n| n.addr.port == port).collect();
        if by_port.is_empty() { by_id() } else { by_port }
    } else if let Some((host, port)) = sel.rsplit_once(':').filter(|(_, p)| p.parse::<u16>().is_ok()) {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port.parse().unwrap_or_default();
        let localhost = |h: &str| h == "localhost" || h == "127.0.0.1" || h == "::1";
        topology
            .nodes()
            .iter()
            .filter(|n| n.addr.port == port)
            .filter(|n| {
                n.addr.host == host
                    || n.addr.hostname.as_deref() == Some(host)
                    || (localhost(host) && localhost(&n.addr.host))
            })
            .collect()
    } else if is_hex {
        by_id()
    } else {
        Vec::new()
    };
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(SelectError::NotFound {
            selector: selector.to_string(),
            candidates: topology.nodes().iter().map(describe).collect(),
        }),
        many => Err(SelectError::Ambiguous {
            selector: selector.to_string(),
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
        // 7a7e… and 7c2e… and 7e66… all start with 7.
        match select(&t, "7") {
            Err(SelectError::Ambiguous { matches, .. }) => assert_eq!(matches.len(), 3),
            other => panic!("{other:?}"),
        }
        assert!(matches!(select(&t, "not a node!"), Err(SelectError::NotFound { .. })));
    }
}

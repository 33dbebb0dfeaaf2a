//! Topologies the planner tests share, from CLUSTER NODES replies captured on real clusters.

use crate::model::{Topology, parse_nodes};

/// 4 masters (27901-27904, 4096 slots each) with one replica each (27905-27908).
pub fn topo() -> Topology {
    Topology::from_single_view(parse_nodes(include_str!("../../tests/fixtures/redis7-healthy-4m4r.txt")).unwrap())
}

/// The id of the node on `port`.
pub fn id(t: &Topology, port: u16) -> String {
    t.nodes().iter().find(|n| n.addr.port == port).unwrap().id.clone()
}

//! One line of `CLUSTER NODES`: a node's identity, address, flags, role and slots as one peer sees it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::slot_set::SlotSet;

/// Where a node listens. `host` is empty for a `noaddr` node.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Addr {
    pub host: String,
    pub port: u16,
    pub cport: Option<u16>,
    pub hostname: Option<String>,
}

impl Addr {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self { host: host.into(), port, cport: None, hostname: None }
    }

    /// The same host and port, whatever each knows of the bus port or hostname (a seed typed as
    /// host:port against the node's own announcement of itself).
    pub fn same_endpoint(&self, other: &Addr) -> bool {
        self.host == other.host && self.port == other.port
    }

    pub fn is_known(&self) -> bool {
        !self.host.is_empty() && self.port != 0
    }

    /// Parses `ip:port@cport`, `ip:port@cport,hostname`, `ip:port` or `:0@0` (noaddr).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (addr, hostname) = match text.split_once(',') {
            Some((a, h)) if !h.is_empty() => (a, Some(h.to_string())),
            Some((a, _)) => (a, None),
            None => (text, None),
        };
        let (hostport, cport) = match addr.split_once('@') {
            Some((hp, c)) => (hp, Some(c.parse::<u16>().map_err(|_| format!("bad bus port in `{text}`"))?)),
            None => (addr, None),
        };
        let (host, port) = hostport.rsplit_once(':').ok_or_else(|| format!("no port in `{text}`"))?;
        let port = port.parse::<u16>().map_err(|_| format!("bad port in `{text}`"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        Ok(Self { host, port, cport, hostname })
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The flags field of a `CLUSTER NODES` line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flags {
    pub myself: bool,
    pub master: bool,
    pub replica: bool,
    pub pfail: bool,
    pub fail: bool,
    pub handshake: bool,
    pub noaddr: bool,
    pub nofailover: bool,
}

impl Flags {
    fn parse(text: &str) -> Self {
        let mut f = Flags::default();
        for flag in text.split(',') {
            match flag {
                "myself" => f.myself = true,
                "master" | "primary" => f.master = true,
                "slave" | "replica" => f.replica = true,
                "fail?" => f.pfail = true,
                "fail" => f.fail = true,
                "handshake" => f.handshake = true,
                "noaddr" => f.noaddr = true,
                "nofailover" => f.nofailover = true,
                _ => {}
            }
        }
        f
    }
}

/// One node as described by one `CLUSTER NODES` line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub id: String,
    pub addr: Addr,
    pub flags: Flags,
    pub master_id: Option<String>,
    pub ping_sent: u64,
    pub pong_recv: u64,
    pub config_epoch: u64,
    pub connected: bool,
    pub slots: SlotSet,
    /// Slot → target node id, from `[slot->-id]` (only ever on the `myself` line).
    pub migrating: BTreeMap<u16, String>,
    /// Slot → source node id, from `[slot-<-id]` (only ever on the `myself` line).
    pub importing: BTreeMap<u16, String>,
}

impl NodeInfo {
    pub fn is_master(&self) -> bool {
        self.flags.master
    }

    pub fn is_failed(&self) -> bool {
        self.flags.fail || self.flags.pfail
    }

    /// Parses one line of `CLUSTER NODES`.
    pub fn parse_line(line: &str) -> Result<Self, String> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 {
            return Err(format!("expected at least 8 fields, got {}: `{line}`", fields.len()));
        }
        let num = |i: usize| -> Result<u64, String> {
            fields[i].parse::<u64>().map_err(|_| format!("field {} is not a number in `{line}`", i + 1))
        };
        let id = fields[0].to_string();
        if id.len() != 40 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("`{id}` is not a 40-character node id"));
        }
        let mut node = NodeInfo {
            id,
            addr: Addr::parse(fields[1])?,
            flags: Flags::parse(fields[2]),
            master_id: (fields[3] != "-").then(|| fields[3].to_string()),
            ping_sent: num(4)?,
            pong_recv: num(5)?,
            config_epoch: num(6)?,
            connected: fields[7] == "connected",
            slots: SlotSet::new(),
            migrating: BTreeMap::new(),
            importing: BTreeMap::new(),
        };
        for item in &fields[8..] {
            if let Some(open) = item.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                if let Some((slot, peer)) = open.split_once("->-") {
                    node.migrating.insert(parse_slot(slot, line)?, peer.to_string());
                } else if let Some((slot, peer)) = open.split_once("-<-") {
                    node.importing.insert(parse_slot(slot, line)?, peer.to_string());
                } else {
                    return Err(format!("bad open-slot entry `{item}`"));
                }
            } else {
                let ranges = SlotSet::parse(item).map_err(|e| format!("{e} in `{line}`"))?;
                node.slots.union_with(&ranges);
            }
        }
        Ok(node)
    }
}

fn parse_slot(text: &str, line: &str) -> Result<u16, String> {
    text.parse::<u16>().map_err(|_| format!("bad slot `{text}` in `{line}`"))
}

/// Parses a whole `CLUSTER NODES` reply.
pub fn parse_nodes(text: &str) -> Result<Vec<NodeInfo>, String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(NodeInfo::parse_line).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_forms() {
        let a = Addr::parse("127.0.0.1:27914@37914,node-27914.example.internal").unwrap();
        assert_eq!((a.host.as_str(), a.port, a.cport), ("127.0.0.1", 27914, Some(37914)));
        assert_eq!(a.hostname.as_deref(), Some("node-27914.example.internal"));
        let noaddr = Addr::parse(":0@0").unwrap();
        assert!(!noaddr.is_known());
        let v6 = Addr::parse("::1:7000@17000").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 7000));
        assert_eq!(v6.to_string(), "[::1]:7000");
        assert!(Addr::parse("127.0.0.1").is_err());
    }

    #[test]
    fn noaddr_handshake_line() {
        let n = NodeInfo::parse_line(
            "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca :0@0 master,fail?,noaddr - 1348112380000 1348112379000 0 disconnected",
        )
        .unwrap();
        assert!(n.flags.noaddr && n.flags.pfail && n.flags.master);
        assert!(!n.connected && n.slots.is_empty() && !n.addr.is_known());
    }

    #[test]
    fn rejects_garbage() {
        assert!(NodeInfo::parse_line("hello world").is_err());
        assert!(NodeInfo::parse_line("zz 127.0.0.1:1@2 master - 0 0 0 connected").is_err());
    }
}

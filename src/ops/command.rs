//! What a raw command does to a node, judged from its name: read-only, a plain write, or
//! destructive (data, membership or slot ownership lost if it is a mistake).

/// How much care a raw command needs before it is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommandKind {
    /// Changes nothing: answered even in a dry run.
    Read,
    /// Changes something: journaled, takes the lease, not sent in a dry run.
    Write,
    /// Can lose data or break the cluster: a write that also needs `confirm` or `--yes`.
    Destructive,
}

/// Commands (or `COMMAND SUBCOMMAND`) that change nothing.
const READ: &[&str] = &[
    "PING",
    "ECHO",
    "INFO",
    "DBSIZE",
    "TIME",
    "ROLE",
    "LASTSAVE",
    "EXISTS",
    "GET",
    "TYPE",
    "TTL",
    "PTTL",
    "STRLEN",
    "SCAN",
    "CLUSTER INFO",
    "CLUSTER NODES",
    "CLUSTER SLOTS",
    "CLUSTER SHARDS",
    "CLUSTER MYID",
    "CLUSTER MYSHARDID",
    "CLUSTER KEYSLOT",
    "CLUSTER COUNTKEYSINSLOT",
    "CLUSTER GETKEYSINSLOT",
    "CLUSTER COUNT-FAILURE-REPORTS",
    "CLUSTER LINKS",
    "CLUSTER REPLICAS",
    "CLUSTER SLAVES",
    "CONFIG GET",
    "MEMORY USAGE",
    "MEMORY STATS",
    "MEMORY DOCTOR",
    "CLIENT LIST",
    "CLIENT INFO",
    "CLIENT GETNAME",
    "CLIENT ID",
    "SLOWLOG GET",
    "SLOWLOG LEN",
    "LATENCY LATEST",
    "LATENCY HISTORY",
    "LATENCY DOCTOR",
    "OBJECT ENCODING",
    "OBJECT FREQ",
    "OBJECT IDLETIME",
    "ACL WHOAMI",
    "COMMAND COUNT",
    "COMMAND INFO",
    "COMMAND DOCS",
];

/// Commands that lose data, stop a node, or change membership or slot ownership behind the
/// tool's back.
const DESTRUCTIVE: &[&str] = &[
    "FLUSHALL",
    "FLUSHDB",
    "SHUTDOWN",
    "DEBUG",
    "SWAPDB",
    "MIGRATE",
    "REPLICAOF",
    "SLAVEOF",
    "FAILOVER",
    "MODULE",
    "CONFIG SET",
    "CONFIG RESETSTAT",
    "CLUSTER RESET",
    "CLUSTER FAILOVER",
    "CLUSTER FORGET",
    "CLUSTER SETSLOT",
    "CLUSTER DELSLOTS",
    "CLUSTER DELSLOTSRANGE",
    "CLUSTER ADDSLOTS",
    "CLUSTER ADDSLOTSRANGE",
    "CLUSTER FLUSHSLOTS",
    "CLUSTER MEET",
    "CLUSTER REPLICATE",
    "CLUSTER BUMPEPOCH",
    "CLUSTER SET-CONFIG-EPOCH",
    "SCRIPT FLUSH",
    "FUNCTION FLUSH",
    "FUNCTION DELETE",
    "FUNCTION RESTORE",
    "ACL SETUSER",
    "ACL DELUSER",
    "ACL LOAD",
    "CLIENT KILL",
    "CLIENT PAUSE",
];

/// The command's name as the lists above spell it: `CONFIG SET`, `FLUSHALL`.
pub fn command_name(args: &[String]) -> String {
    let first = args.first().map(|a| a.to_ascii_uppercase()).unwrap_or_default();
    match args.get(1) {
        Some(sub) if is_container(&first) => format!("{first} {}", sub.to_ascii_uppercase()),
        _ => first,
    }
}

/// Commands whose first argument is a subcommand.
fn is_container(name: &str) -> bool {
    matches!(
        name,
        "CLUSTER"
            | "CONFIG"
            | "MEMORY"
            | "CLIENT"
            | "SLOWLOG"
            | "LATENCY"
            | "OBJECT"
            | "ACL"
            | "COMMAND"
            | "SCRIPT"
            | "FUNCTION"
    )
}

/// How `args` (the command and its arguments) must be treated. A command not known to be
/// read-only counts as a write.
pub fn kind(args: &[String]) -> CommandKind {
    let name = command_name(args);
    let first = name.split(' ').next().unwrap_or_default();
    if DESTRUCTIVE.contains(&name.as_str()) || DESTRUCTIVE.contains(&first) {
        CommandKind::Destructive
    } else if READ.contains(&name.as_str()) {
        CommandKind::Read
    } else {
        CommandKind::Write
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(cmd: &str) -> CommandKind {
        kind(&cmd.split_whitespace().map(str::to_string).collect::<Vec<_>>())
    }

    #[test]
    fn reads_writes_and_destructive_commands() {
        assert_eq!(k("cluster info"), CommandKind::Read);
        assert_eq!(k("CONFIG GET maxmemory"), CommandKind::Read);
        assert_eq!(k("SET a 1"), CommandKind::Write);
        assert_eq!(k("CONFIG REWRITE"), CommandKind::Write);
        assert_eq!(k("flushall"), CommandKind::Destructive);
        assert_eq!(k("Config Set maxmemory 1gb"), CommandKind::Destructive);
        assert_eq!(k("CLUSTER SETSLOT 1 STABLE"), CommandKind::Destructive);
        assert_eq!(k("DEBUG SLEEP 0"), CommandKind::Destructive);
        assert_eq!(k("CLUSTER"), CommandKind::Write, "unknown subcommand: a write, to be safe");
        assert_eq!(k(""), CommandKind::Write);
        assert_eq!(command_name(&["config".into(), "set".into(), "x".into()]), "CONFIG SET");
    }
}

//! Bad input, tried as a new user would: for each case a clear message, the documented exit
//! code, and the cluster exactly as it was. All cases run on one cluster and every mismatch is
//! reported before the test fails.

use crate::support::{TestCluster, runbook, script};

struct Case {
    name: &'static str,
    args: Vec<String>,
    code: i32,
    says: Vec<String>,
}

fn case(name: &'static str, args: &[&str], code: i32, says: &[&str]) -> Case {
    Case {
        name,
        args: args.iter().map(|s| (*s).to_string()).collect(),
        code,
        says: says.iter().map(|s| (*s).to_string()).collect(),
    }
}

#[test]
fn twenty_nine_ways_to_get_it_wrong() {
    let c = TestCluster::start(3, 1);
    c.load_keys(1000);
    let seed = c.seed();
    let (master, replica) = (c.port(0).to_string(), c.port(3).to_string());
    let (_d1, syntax) = script("let c = cluster();\nlet x = (1 + ;\n");
    let (_d2, del_owner) = script(&format!("let c = cluster();\nc.del_node({master});\n"));
    let (_d3, to_replica) = script(&format!("let c = cluster();\nc.migrate_slot(0, c.node({replica}));\n"));
    let (_d4, bad_slot) = script(&format!("let c = cluster();\nc.migrate_slot(99999, c.node({master}));\n"));
    let (_d5, reserved) = script("//! x\n//! @param cluster required x\nprint(params.cluster);\n");
    let (_d6, bad_opt) = script("let c = cluster();\nc.rebalance(#{ thresold: 5 });\n");
    let (_d7, bad_replicas) =
        script(&format!("let c = cluster();\nc.del_node({replica}, #{{ replicas: \"keep\" }});\n"));
    let weight_neg = format!("{master}=-1");
    let weight_replica = format!("{replica}=2");
    let cases = vec![
        case(
            "unknown node",
            &["run", "decommission", "--node", "6397", "-c", &seed, "-y"],
            2,
            &["no node matches `6397`", "the cluster has:"],
        ),
        case(
            "a replica where a master is needed",
            &["run", "decommission", "--node", &replica, "-c", &seed, "-y"],
            2,
            &["is a replica", "del_node"],
        ),
        case(
            "empty node selector",
            &["run", "decommission", "--node", "", "-c", &seed, "-y"],
            2,
            &["--node takes a node", "an empty selector names no node"],
        ),
        case("unreachable seed", &["check", "-c", "127.0.0.1:1"], 4, &["cannot connect to 127.0.0.1:1", "hint:"]),
        case(
            "wrong password",
            &["run", "decommission", "--node", &master, "-c", &seed, "--password", "wrong", "-y"],
            4,
            &["authentication failed", "--password"],
        ),
        case(
            "a runbook that does not exist",
            &["run", "decomission", "--node", &master],
            2,
            &["no runbook named `decomission`", "decommission"],
        ),
        case("a syntax error", &["run", &syntax, "-c", &seed], 2, &["syntax error", ":2:"]),
        case(
            "a missing parameter",
            &["run", "decommission", "-c", &seed],
            2,
            &["missing required parameter --node", "accepts"],
        ),
        case(
            "an unknown parameter",
            &["run", "decommission", "--node", &master, "--force", "-c", &seed],
            2,
            &["unknown parameter --force"],
        ),
        case(
            "a wrongly typed parameter",
            &["run", "decommission", "--node", &master, "--threshold", "lots", "-c", &seed],
            2,
            &["--threshold takes a number"],
        ),
        case(
            "an invalid weight",
            &["run", "rebalance", "--weights", &weight_neg, "-c", &seed, "-y"],
            2,
            &["--weights takes weights", "is not a number of 0 or more", "nothing was changed"],
        ),
        case(
            "a weight for a replica",
            &["run", "rebalance", "--weights", &weight_replica, "-c", &seed, "-y"],
            2,
            &["is a replica: only masters take weights"],
        ),
        case(
            "a threshold out of range",
            &["run", "rebalance", "--threshold", "150", "-c", &seed, "-y"],
            2,
            &["--threshold takes a number from 0 to 100: `150` is out of range"],
        ),
        case(
            "no terminal and no --yes",
            &["run", "decommission", "--node", &master, "-c", &seed],
            5,
            &["no terminal", "--yes"],
        ),
        case(
            "no cluster given",
            &["run", "decommission", "--node", &master, "-y"],
            2,
            &["no cluster given", "RUNBOOK_CLUSTER"],
        ),
        case("a malformed cluster address", &["check", "-c", "nowhere"], 2, &["`nowhere` is not a node address"]),
        case(
            "an option without its value",
            &["run", "decommission", "--node", &master, "--cluster"],
            2,
            &["--cluster needs a value"],
        ),
        case("an unknown short option", &["run", "decommission", "-x"], 2, &["unknown option `-x`"]),
        case(
            "a bad rate limit",
            &["run", "decommission", "--node", &master, "--rate-limit", "fast", "-c", &seed],
            2,
            &["--rate-limit takes"],
        ),
        case(
            "a pause budget out of range",
            &["run", "decommission", "--node", &master, "--max-pause", "-1", "-c", &seed],
            2,
            &["--max-pause takes milliseconds from 0 to 10000"],
        ),
        case(
            "del_node of a master that owns slots",
            &["run", &del_owner, "-c", &seed],
            3,
            &["still owns", "plan_drain"],
        ),
        case(
            "slots to a replica",
            &["run", &to_replica, "-c", &seed],
            2,
            &["is a replica: slots can only go to a master"],
        ),
        case("a slot that does not exist", &["run", &bad_slot, "-c", &seed], 2, &["99999 is not a slot"]),
        case("a reserved parameter name", &["run", &reserved, "-c", &seed], 2, &["parameter `cluster` is reserved"]),
        case(
            "a misspelt option",
            &["run", &bad_opt, "-c", &seed],
            2,
            &["unknown option `thresold` for rebalance", "accepts"],
        ),
        case(
            "an unknown replica policy",
            &["run", &bad_replicas, "-c", &seed],
            2,
            &["replicas: \"keep\" is not a policy"],
        ),
        case(
            "a value the runbook does not accept",
            &["run", "decommission", "--node", &master, "--replicas", "rehom", "-c", &seed, "-y"],
            2,
            &["--replicas takes one of \"remove\", \"rehome\": `rehom` is not one of them (did you mean \"rehome\"?)"],
        ),
        case(
            "a threshold below zero, caught before the drain",
            &["run", "decommission", "--node", &master, "--threshold", "-1", "-c", &seed, "-y"],
            2,
            &["--threshold takes a number from 0 to 100: `-1` is out of range", "nothing was changed"],
        ),
        case(
            "a wait no one means",
            &["run", "decommission", "--node", &master, "--timeout", "1e308", "-c", &seed, "-y"],
            2,
            &["--timeout takes a duration", "`1e308` is out of range"],
        ),
        case(
            "a duration in an unknown unit",
            &["run", "decommission", "--node", &master, "--timeout", "5d", "-c", &seed, "-y"],
            2,
            &["`5d` has the unit `d`: use s, m or h"],
        ),
        case(
            "a node parameter without its value",
            &["run", "decommission", "--node", "-c", &seed, "-y"],
            2,
            &["--node takes a node", "a bare flag needs a value"],
        ),
        case(
            "a node given twice",
            &["run", "decommission", "--node", &master, "--node", "6391", "-c", &seed, "-y"],
            2,
            &["--node is given twice"],
        ),
        case(
            "a headroom that is no fraction",
            &["run", "decommission", "--node", &master, "--headroom", "20", "-c", &seed, "-y"],
            2,
            &["--headroom takes a number from 0 to 1: `20` is out of range"],
        ),
        case(
            "a pipeline that is no whole number",
            &["run", "rebalance", "--pipeline", "1.5", "-c", &seed, "-y"],
            2,
            &["--pipeline takes an integer from 0 to 100000: `1.5` is not an integer"],
        ),
        case(
            "a list of nodes with a hole",
            &["run", "scale-out", "--nodes", "7001,,7002", "-c", &seed, "-y"],
            2,
            &["`7001,,7002` has an empty entry"],
        ),
        case("no runbook named", &["run"], 2, &["which runbook?"]),
        case("an unknown function asked for", &["functions", "nope"], 2, &["no function named `nope`"]),
        case("an unknown journal", &["journal", "nope"], 2, &["no journal `nope`"]),
        case(
            "a file that is no journal",
            &["journal", "/etc/passwd"],
            2,
            &["/etc/passwd is not a runbook journal", "runbook journal"],
        ),
    ];
    assert!(cases.len() >= 25);
    let before = c.topology().fingerprint();
    let mut failures = Vec::new();
    for case in &cases {
        let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        let out = runbook(&args).run();
        if out.code != case.code {
            failures.push(format!("{}: exit {} (wanted {})\n{}", case.name, out.code, case.code, out.stderr));
        }
        for text in &case.says {
            if !out.stderr.contains(text.as_str()) {
                failures.push(format!("{}: stderr lacks {text:?}\n{}", case.name, out.stderr));
            }
        }
        if out.stderr.contains("panicked") {
            failures.push(format!("{}: panicked\n{}", case.name, out.stderr));
        }
        if c.topology().fingerprint() != before {
            failures.push(format!("{}: the cluster changed", case.name));
        }
    }
    assert!(failures.is_empty(), "{} case(s) failed:\n\n{}", failures.len(), failures.join("\n\n"));
    assert_eq!(c.total_keys(), 1000);
}

/// What a user would compare before and after: every node's own `CLUSTER NODES` (without the
/// ping/pong times that change by themselves) and its key count.
fn cluster_state(c: &TestCluster) -> Vec<String> {
    c.running()
        .map(|i| {
            let mut lines: Vec<String> = c
                .cluster_nodes(i)
                .lines()
                .map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    // A node one view suspects for a moment (`fail?`, a late pong on a loaded
                    // machine) is no change any case made.
                    let flags = f[2].split(',').filter(|f| *f != "fail?").collect::<Vec<_>>().join(",");
                    [&f[..2], &[flags.as_str()], &f[3..4], &f[6..7], &f[8..]].concat().join(" ")
                })
                .collect();
            lines.sort();
            let keys: u64 = redis::cmd("DBSIZE").query(&mut c.conn(i)).unwrap();
            format!("{}: {keys} keys\n{}", c.port(i), lines.join("\n"))
        })
        .collect()
}

/// The edges of issue 12: selectors, the raw command, sleep, the engine's sandbox and the shipped
/// runbooks' own checks. A spare node (not a member) stands by for the runbooks that add nodes.
#[test]
fn refused_at_the_edges_before_any_change() {
    let mut c = TestCluster::start(3, 1);
    c.load_keys(1000);
    let spare = c.add_server();
    let seed = c.seed();
    let (master, replica) = (c.port(0).to_string(), c.port(3).to_string());
    // The leading digits of a node id: as a port no node has, it must not fall back to the id.
    let digits = (0..6)
        .map(|i| c.node_id(i).chars().take_while(char::is_ascii_digit).take(4).collect::<String>())
        .filter(|d| d.parse::<u16>().is_ok_and(|p| p > 0))
        .max_by_key(String::len)
        .unwrap_or_else(|| "18".into());
    // A prefix with a hex letter in it: one of digits only is a (bad) port, a case of its own.
    let short_id = (0..c.nodes.len())
        .map(|i| c.node_id(i)[..6].to_string())
        .find(|p| p.bytes().any(|b| b.is_ascii_alphabetic()))
        .expect("some id starts with a letter within 6 characters");
    let spare_port = c.port(spare).to_string();
    let member = c.port(1).to_string();
    let member_addr = c.nodes[1].addr();
    let abc = format!("{master}=abc");
    let sleeps: Vec<_> = ["1e308*10.0", "1e15", "-5", "0.0/0.0", "9223372036854775807"]
        .iter()
        .map(|v| (*v, script(&format!("sleep({v});\nlet c = cluster();\nc.command({master}, \"FLUSHALL\");\n"))))
        .collect();
    let (_d2, wait_forever) = script("let c = cluster();\nc.wait_converged(9223372036854775807);\n");
    // A runbook's directory with a module, and a module outside it that must stay out of reach.
    let outside = tempfile::tempdir().unwrap();
    let book = outside.path().join("book");
    std::fs::create_dir_all(book.join("lib")).unwrap();
    std::fs::write(outside.path().join("evil.rhai"), "export const X = 1;\n").unwrap();
    std::fs::write(book.join("lib/ok.rhai"), "export const X = 1;\n").unwrap();
    std::os::unix::fs::symlink(outside.path().join("evil.rhai"), book.join("link.rhai")).unwrap();
    let import = |name: &str, target: &str| {
        let path = book.join(name);
        std::fs::write(
            &path,
            format!("import \"{target}\" as m;\nlet c = cluster();\nc.command({master}, \"FLUSHALL\");\n"),
        )
        .unwrap();
        path.display().to_string()
    };
    let absolute = import("absolute.rhai", &outside.path().join("evil").display().to_string());
    let dotdot = import("dotdot.rhai", "../evil");
    let symlink = import("symlink.rhai", "link");
    let missing = import("missing.rhai", "lib/nope");
    let recursion = script("fn down(n) { down(n + 1) }\ndown(0);\nlet c = cluster();\nc.command(1, \"FLUSHALL\");\n");
    let (_d1, flush) = script(&format!("let c = cluster();\nc.command({master}, \"FLUSHALL\");\n"));
    let (_d2, throws) =
        script("let c = cluster();\nlet n = c.masters().len();\nthrow `expected 5 masters, found ${n}`;\n");
    let (_d3, typo) = script("let c = cluster();\nc.mastres();\n");
    let cases = vec![
        case(
            "a number that is no port, though an id starts with it",
            &["run", "decommission", "--node", &digits, "-c", &seed, "--dry-run"],
            2,
            &[&format!("no node matches `{digits}`"), "the cluster has:"],
        ),
        case(
            "an id prefix shorter than 8",
            &["run", "decommission", "--node", &short_id, "-c", &seed, "-y"],
            2,
            &["at least 8 hex characters", &format!("id:{short_id}")],
        ),
        case(
            "a runbook's own error before its first change",
            &["run", &throws, "-c", &seed, "-y"],
            2,
            &["expected 5 masters, found", ":3:", "nothing was changed"],
        ),
        case(
            "a runbook calling a function that does not exist",
            &["run", &typo, "-c", &seed, "-y"],
            2,
            &["mastres", ":2:", "nothing was changed"],
        ),
        case(
            "a destructive raw command nothing confirmed",
            &["run", &flush, "-c", &seed],
            3,
            &["FLUSHALL is destructive", "nothing was sent", "confirm("],
        ),
    ];
    let mut cases = cases;
    for (_, (_, path)) in &sleeps {
        cases.push(case(
            "sleep on a number that is no wait",
            &["run", path, "-c", &seed, "-y"],
            2,
            &["seconds must be a number from 0 to 86400", &format!("{path}:1:1")],
        ));
    }
    cases.push(case(
        "wait_converged for ever",
        &["run", &wait_forever, "-c", &seed],
        2,
        &["wait_converged(9223372036854775807", "from 0 to 86400"],
    ));
    cases.extend([
        case(
            "replace-node onto an existing master, by port",
            &["run", "replace-node", "--node", &master, "--replacement", &member, "-c", &seed, "-y"],
            2,
            &[&format!("--replacement {member} is already a member of the cluster"), "new, empty node"],
        ),
        case(
            "replace-node onto an existing master, by address",
            &["run", "replace-node", "--node", &master, "--replacement", &member_addr, "-c", &seed, "-y"],
            2,
            &["is already a member of the cluster", "nothing was changed"],
        ),
        case(
            "replace-node onto its own replica",
            &["run", "replace-node", "--node", &master, "--replacement", &replica, "-c", &seed, "-y"],
            2,
            &["is already a member of the cluster"],
        ),
        case(
            "replace-node of a replica",
            &["run", "replace-node", "--node", &replica, "--replacement", &spare_port, "-c", &seed, "-y"],
            2,
            &["is a replica; replace-node replaces a master"],
        ),
        case(
            "scale-out with a member",
            &["run", "scale-out", "--nodes", &member, "-c", &seed, "-y"],
            2,
            &[&format!("--nodes: 127.0.0.1:{member} is already a member of the cluster")],
        ),
        case(
            "scale-out with a member in a list",
            &["run", "scale-out", "--nodes", &format!("{spare_port},{member_addr}"), "-c", &seed, "-y"],
            2,
            &["is already a member of the cluster"],
        ),
        case(
            "scale-out with something that is no address",
            &["run", "scale-out", "--nodes", &format!("{spare_port},nowhere"), "-c", &seed, "-y"],
            2,
            &["--nodes takes nodes", "`nowhere` is not a port, host:port or node id"],
        ),
        case(
            "scale-out naming a node twice",
            &["run", "scale-out", "--nodes", &format!("{spare_port},127.0.0.1:{spare_port}"), "-c", &seed, "-y"],
            2,
            &["names 127.0.0.1:", "twice"],
        ),
        case(
            "scale-out with a malformed replica_of",
            &["run", "scale-out", "--nodes", &spare_port, "--replica-of", "nonsense", "-c", &seed, "-y"],
            2,
            &["replica_of takes \"new=master\" pairs"],
        ),
        case(
            "rebalance with a weight that is no number",
            &["run", "rebalance", "--weights", &abc, "-c", &seed, "-y"],
            2,
            &["=abc` is not a number of 0 or more", "nothing was changed"],
        ),
        case(
            "rebalance with a weight that is not finite",
            &["run", "rebalance", "--weights", &format!("{master}=inf"), "-c", &seed, "-y"],
            2,
            &["=inf` is not a number of 0 or more"],
        ),
        case(
            "rebalance with weights that are no pairs",
            &["run", "rebalance", "--weights", "nonsense", "-c", &seed, "-y"],
            2,
            &["`nonsense` is not node=number"],
        ),
    ]);
    for (what, path, says) in [
        ("an import by absolute path", &absolute, "modules are named relative to the runbook's directory"),
        ("an import escaping with ..", &dotdot, "modules are named relative to the runbook's directory"),
        ("an import through a symlink out", &symlink, "leads out of the runbook's directory"),
        ("an import of a module that is not there", &missing, "there is no"),
    ] {
        cases.push(case(what, &["run", path, "-c", &seed, "-y"], 2, &["cannot import", says]));
    }
    cases.push(case(
        "endless recursion",
        &["run", &recursion.1, "-c", &seed, "-y"],
        2,
        &["functions nested more than 64 deep", "endless recursion"],
    ));
    cases.push(case(
        "a password on the command line",
        &["check", "-c", &seed, "--password", "not-this-one"],
        4,
        &["a password given with --password shows in `ps`", "REDISCLI_AUTH"],
    ));
    let mut before = cluster_state(&c);
    let mut failures = Vec::new();
    for case in &cases {
        let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        let out = runbook(&args).run();
        if out.code != case.code {
            failures.push(format!("{}: exit {} (wanted {})\n{}", case.name, out.code, case.code, out.stderr));
        }
        for text in &case.says {
            if !out.stderr.contains(text.as_str()) {
                failures.push(format!("{}: stderr lacks {text:?}\n{}", case.name, out.stderr));
            }
        }
        if out.stderr.contains("panicked") {
            failures.push(format!("{}: panicked\n{}", case.name, out.stderr));
        }
        let after = cluster_state(&c);
        if after != before {
            // Named line by line, and taken as the new baseline, so one change is blamed on
            // the case that made it and not on every case after it.
            let changed: Vec<String> = after.iter().filter(|l| !before.contains(l)).cloned().collect();
            failures.push(format!("{}: the cluster changed:\n{}", case.name, changed.join("\n")));
            before = after;
        }
    }
    assert!(failures.is_empty(), "{} case(s) failed:\n\n{}", failures.len(), failures.join("\n\n"));
    // The same password from the environment, where redis-cli takes it too, draws no warning.
    let out = runbook(&["check", "-c", &seed]).env("REDISCLI_AUTH", "not-this-one").run();
    out.expect_code(4);
    assert!(!out.stderr.contains("shows in `ps`"), "{}", out.stderr);
}

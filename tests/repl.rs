//! `runbook repl` through a pseudo-terminal, as an operator would use it.

use crate::support::pty::Pty;
use crate::support::{TestCluster, runbook};

fn repl(c: &TestCluster, state: &std::path::Path) -> Pty {
    let mut p = Pty::spawn(
        &format!("{} repl --cluster {}", env!("CARGO_BIN_EXE_runbook"), c.seed()),
        &[("RUNBOOK_STATE_DIR", state.to_str().unwrap())],
    );
    p.expect("`c` is the cluster");
    p.expect("runbook> ");
    p
}

#[test]
fn an_operator_session() {
    let c = TestCluster::start(3, 0);
    c.load_keys(60_000);
    let state = tempfile::tempdir().unwrap();
    let mut p = repl(&c, state.path());

    // A table of nodes.
    p.send("c.masters()\r");
    p.expect(&c.nodes[0].addr());
    p.expect("master");
    p.expect("runbook> ");

    // A function over several lines, no backslashes: rhai's parser says when it is complete.
    p.send("fn share(n) {\r");
    p.send("  n.slots * 100 / 16384\r");
    p.send("}\r");
    // The prompt that follows the whole function: rustyline redraws the lines at the end, and
    // input sent before it is ready may be flushed, so wait for the "}" first.
    p.expect("}");
    p.expect("runbook> ");
    p.send(&format!("share(c.node({}))\r", c.port(0)));
    p.expect("33");
    p.expect("runbook> ");

    // Tab completes a method, then a node id.
    p.send("c.replicas_o\t");
    p.expect("c.replicas_of");
    p.send(&format!("(c.node({})).len()\r", c.port(0)));
    p.expect("0");
    p.expect("runbook> ");
    let id = c.node_id(1);
    p.send(&format!("c.node(\"{}\t", &id[..5]));
    p.expect(&id[..8]);
    p.send("\")\r");
    p.expect(&format!("{} (master, {})", c.nodes[1].addr(), &id[..8]));
    p.expect("runbook> ");

    // An error, then the session goes on.
    p.send("c.node(\"no-such-node\")\r");
    p.expect("no node matches `no-such-node`");
    p.expect("runbook> ");
    p.send("40 + 2\r");
    p.expect("42");
    p.expect("runbook> ");

    // The cluster echoed: its slot map, one bar per master.
    p.send("c\r");
    p.expect("slot map: 64 cells of 256 slots");
    p.expect(" slots ");
    p.expect("runbook> ");
    // print(c) draws it too; interpolated, the cluster is its name.
    p.send("print(c)\r");
    p.expect("slot map: 64 cells of 256 slots");
    p.expect("runbook> ");
    p.send("`on ${c}.`\r");
    p.expect(&format!("\"on cluster {}.\"", c.nodes[0].addr()));
    p.expect("runbook> ");

    // Help from the same source as `runbook functions`.
    p.send(":help del_node\r");
    p.expect("c.del_node(node: node, opts: map) -> map");
    p.expect("runbook> ");

    // Ctrl-C during a long primitive cancels it, leaves no slot open, and keeps the session.
    p.send(&format!("c.apply(c.plan_drain(c.node({})), #{{ batch: 4 }})\r", c.port(2)));
    p.expect("moving");
    p.send("\x03");
    p.expect("cancelled");
    p.expect("runbook> ");
    p.send("c.check().healthy\r");
    p.expect("true");
    p.expect("runbook> ");
    // What an earlier line changed is not this line's doing: its own refusal says nothing changed.
    p.send("fail_input(\"a typo\")\r");
    p.expect("nothing was changed");
    p.expect("runbook> ");

    // A dry run inside the session.
    p.send(":dry-run on\r");
    p.expect("dry run on");
    p.send(&format!("c.rebalance(#{{ weights: #{{ \"{}\": 0 }} }}).slots\r", c.port(0)));
    p.expect("==> moved");
    p.expect("runbook (dry run)> ");
    p.send(":dry-run off\r");
    p.expect("dry run: the cluster was not changed");
    p.expect("dry run off");

    p.send("\x04");
    assert_eq!(p.wait(), Some(0));
    assert!(std::fs::read_to_string(state.path().join("history")).unwrap().contains("share(c.node("));
    runbook(&["check", "-c", &c.seed()]).run().expect_code(0);
    c.assert_sample_keys(60_000);
}

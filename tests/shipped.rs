//! Every shipped runbook, run on a real cluster, and the authoring commands.

use crate::support::{TestCluster, runbook, script};

#[test]
fn scale_out_adds_a_master_and_a_replica() {
    let mut c = TestCluster::start(3, 0);
    c.load_keys(6000);
    let (m, r, s) = (c.add_server(), c.add_server(), c.add_server());
    // The replica is listed before its master, and named by port on both sides: a new shard
    // (master and replica) in one run, beside a replica for an existing master.
    let nodes = format!("{},{},{}", c.nodes[s].addr(), c.nodes[m].addr(), c.nodes[r].addr());
    let replica_of = format!("{}={},{}={}", c.nodes[r].addr(), c.port(0), c.port(s), c.port(m));
    runbook(&["run", "scale-out", "--nodes", &nodes, "--replica-of", &replica_of, "-c", &c.seed(), "--yes"])
        .run()
        .expect_code(0)
        .stdout_has("scaled out");
    let topo = c.topology();
    let new_master = topo.node(&c.node_id(m)).unwrap();
    assert!(new_master.is_master());
    assert_eq!(new_master.slots.len(), 4096);
    assert_eq!(topo.node(&c.node_id(r)).unwrap().master_id.as_deref(), Some(c.node_id(0).as_str()));
    assert_eq!(topo.node(&c.node_id(s)).unwrap().master_id.as_deref(), Some(c.node_id(m).as_str()));
    c.assert_sample_keys(6000);
    runbook(&["check", "-c", &c.seed()]).run().expect_code(0);
}

#[test]
fn replace_node_moves_slots_and_replicas_to_the_new_node() {
    let mut c = TestCluster::start(3, 1);
    c.load_keys(6000);
    let spare = c.add_server();
    let (old, old_replica) = (c.node_id(0), c.node_id(3));
    let before = c.topology().node(&old).unwrap().slots.clone();
    runbook(&[
        "run",
        "replace-node",
        "--node",
        &c.port(0).to_string(),
        "--replacement",
        &c.nodes[spare].addr(),
        "-c",
        &c.nodes[1].addr(),
        "-y",
    ])
    .run()
    .expect_code(0)
    .stdout_has("replaced");
    let topo = c.topology();
    let new = topo.node(&c.node_id(spare)).unwrap();
    assert_eq!(new.slots, before, "the new node holds exactly the old one's slots");
    assert_eq!(topo.node(&old_replica).unwrap().master_id.as_deref(), Some(new.id.as_str()));
    for i in [1, 2, 3, 4, 5, spare] {
        assert!(!c.knows(i, &old), "node {} still knows the replaced master", c.port(i));
    }
    c.assert_sample_keys(6000);
    runbook(&["check", "-c", &c.nodes[1].addr()]).run().expect_code(0);
}

#[test]
fn rebalance_runbook_with_weights_and_simulate() {
    let c = TestCluster::start(3, 0);
    c.load_keys(3000);
    let weights = format!("{}=2", c.port(0));
    let sim = runbook(&["run", "rebalance", "--weights", &weights, "--simulate", "-c", &c.seed()]).run();
    sim.expect_code(0).stdout_has("rebalance plan:");
    assert_eq!(c.topology().node(&c.node_id(0)).unwrap().slots.len(), 5461, "simulate moved nothing");
    runbook(&["run", "rebalance", "--weights", &weights, "--threshold", "0", "-c", &c.seed(), "-y"])
        .run()
        .expect_code(0)
        .stdout_has("rebalanced: moved");
    assert_eq!(c.topology().node(&c.node_id(0)).unwrap().slots.len(), 8192);
    c.assert_sample_keys(3000);
    runbook(&["run", "rebalance", "--weights", "nonsense", "-c", &c.seed()])
        .run()
        .expect_code(2)
        .stderr_has("--weights takes weights as node=number")
        .stderr_has("`nonsense` is not node=number")
        .stderr_has("nothing was changed");
}

#[test]
fn fix_runbook_closes_an_open_slot() {
    let c = TestCluster::start(3, 0);
    c.load_keys(1000);
    redis::cmd("CLUSTER").arg("SETSLOT").arg(77).arg("IMPORTING").arg(c.node_id(0)).exec(&mut c.conn(2)).unwrap();
    runbook(&["run", "fix", "-c", &c.seed()]).run().expect_code(0).stdout_has("slot 77: IMPORTING on");
    runbook(&["check", "-c", &c.seed()]).run().expect_code(0);
    c.assert_sample_keys(1000);
}

#[test]
fn list_describe_functions_and_lint() {
    let list = runbook(&["list"]).run();
    list.expect_code(0);
    for name in ["decommission", "scale-out", "replace-node", "rebalance", "fix"] {
        list.stdout_has(name);
        runbook(&["lint", name]).run().expect_code(0).stdout_has(": ok");
    }
    runbook(&["describe", "replace-node"])
        .run()
        .expect_code(0)
        .stdout_has("Replace a master with a new node")
        .stdout_has("--replacement")
        .stdout_has("(required)");
    let functions = runbook(&["functions"]).run();
    functions
        .expect_code(0)
        .stdout_has("c.del_node(node: node, opts: map) -> map")
        .stdout_has("c.plan_drain(nodes: node) -> plan")
        // Methods of the values primitives return are documented beside them.
        .stdout_has("check.assert_healthy()")
        .stdout_has("check.new_since(before: check) -> array")
        .stdout_has("gates.assert_passed()");
    runbook(&["functions", "migrate_slot"])
        .run()
        .expect_code(0)
        .stdout_has("c.migrate_slot(slot: int, to: node) -> map");

    let (_d, bad) = script("//! Bad.\n//! @param node required N\nlet c = cluster();\nc.nodez(params.nod);\n");
    runbook(&["lint", &bad])
        .run()
        .expect_code(2)
        .stdout_has("line 4: `params.nod` is not declared")
        .stdout_has("line 4: `nodez` is not a known function")
        .stdout_has("`node` is declared but never used");
    let (_d, syntax) = script("let x = ;\n");
    runbook(&["lint", &syntax]).run().expect_code(2).stderr_has(":1:9");
}

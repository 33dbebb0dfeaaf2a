//! Removing nodes and moving keys where things go wrong: unreachable nodes, replica re-homing,
//! keys that already exist on the target, weights from maxmemory.

use crate::support::{TestCluster, runbook, script};

#[test]
fn del_node_removes_an_unreachable_replica() {
    let mut c = TestCluster::start(3, 1);
    let gone = c.node_id(3);
    let port = c.port(3);
    c.kill(3);
    let (_d, path) = script(&format!("let c = cluster();\nlet r = c.del_node(\"{port}\");\nprint(r.removed);\n"));
    runbook(&["run", &path, "-c", &c.seed()])
        .run()
        .expect_code(0)
        .stdout_has(&format!("127.0.0.1:{port}"))
        .stderr_has("was unreachable");
    for i in c.running().collect::<Vec<_>>() {
        assert!(!c.knows(i, &gone), "node {} still knows the removed node", c.port(i));
    }
    runbook(&["check", "-c", &c.seed()]).run().expect_code(0);
}

#[test]
fn decommission_can_rehome_replicas_instead_of_removing_them() {
    let c = TestCluster::start(4, 1);
    c.load_keys(4000);
    let replica = c.node_id(7);
    runbook(&["run", "decommission", "--node", &c.port(3).to_string(), "--replicas", "rehome", "-c", &c.seed(), "-y"])
        .run()
        .expect_code(0);
    let topo = c.topology();
    let r = topo.node(&replica).expect("the replica stays in the cluster");
    let master = topo.node(r.master_id.as_deref().expect("it is a replica")).unwrap();
    assert!(master.is_master() && !master.slots.is_empty(), "its master is a remaining master");
    assert_eq!(c.cluster_nodes(0).lines().count(), 7, "the cluster keeps 7 nodes");
    c.assert_sample_keys(4000);
}

#[test]
fn busykey_names_the_key_and_replace_finishes_the_move() {
    let c = TestCluster::start(3, 0);
    c.load_keys(100);
    let slot = runbook::model::key_slot(b"key:7");
    let topo = c.topology();
    let owner = c.index_of(topo.owner(slot).unwrap().addr.port);
    let target = (owner + 1) % 3;
    let owner_id = c.node_id(owner);
    // Plant a different key:7 on the target, as an interrupted earlier move could have left it.
    let mut t = c.conn(target);
    redis::cmd("CLUSTER").arg("SETSLOT").arg(slot).arg("IMPORTING").arg(&owner_id).exec(&mut t).unwrap();
    redis::pipe().cmd("ASKING").ignore().cmd("SET").arg("key:7").arg("stale").ignore().exec(&mut t).unwrap();
    redis::cmd("CLUSTER").arg("SETSLOT").arg(slot).arg("STABLE").exec(&mut t).unwrap();

    let move_it = |opts: &str| {
        script(&format!("let c = cluster();\nc.migrate_slot({slot}, c.node({}){opts});\n", c.port(target)))
    };
    let (_d, path) = move_it("");
    runbook(&["run", &path, "-c", &c.seed()])
        .run()
        .expect_code(1)
        .stderr_has("key `key:7`")
        .stderr_has("already exists on the target")
        .stderr_has("replace: true");
    let (_d, path) = move_it(", #{ replace: true }");
    runbook(&["run", &path, "-c", &c.seed()]).run().expect_code(0);
    c.assert_sample_keys(100);
    runbook(&["check", "-c", &c.seed()]).run().expect_code(0);
}

#[test]
fn auto_weights_follow_maxmemory() {
    let c = TestCluster::start(3, 0);
    for (i, mem) in [(0, "100mb"), (1, "100mb"), (2, "200mb")] {
        redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg(mem).exec(&mut c.conn(i)).unwrap();
    }
    let (_d, path) = script("let c = cluster();\nc.rebalance(#{ auto_weights: true });\nc.wait_converged(30);\n");
    runbook(&["run", &path, "-c", &c.seed()]).run().expect_code(0);
    let counts: Vec<usize> = (0..3).map(|i| c.topology().node(&c.node_id(i)).unwrap().slots.len()).collect();
    assert_eq!(counts, vec![4096, 4096, 8192]);
    // Without maxmemory somewhere, auto_weights explains itself and changes nothing.
    redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg("0").exec(&mut c.conn(1)).unwrap();
    runbook(&["run", &path, "-c", &c.seed()])
        .run()
        .expect_code(2)
        .stderr_has(&format!("{} has none", c.nodes[1].addr()));
}

/// A node removed and added straight back (a mistaken removal undone at 3 a.m.) joins at once,
/// not after the 60 s during which the others' FORGET ban list makes them ignore gossip about it.
#[test]
fn a_removed_node_added_back_at_once_joins_inside_the_forget_ban() {
    let c = TestCluster::start(3, 1);
    let port = c.port(3);
    let (_dir, path) = script(&format!(
        "let c = cluster();\nc.del_node(c.node({port}));\n\
         let back = c.add_node(\"127.0.0.1:{port}\", #{{ timeout: 15 }});\nprint(`back: ${{back}}`);\n"
    ));
    runbook(&["run", &path, "-c", &c.seed()]).run().expect_code(0).stdout_has(&format!("back: 127.0.0.1:{port}"));
    let id = c.node_id(3);
    for i in 0..3 {
        assert!(c.knows(i, &id), "node {} does not know the node added back", c.port(i));
    }
    runbook(&["check", "-c", &c.seed()]).run().expect_code(0);
}
